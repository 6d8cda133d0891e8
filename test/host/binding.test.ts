// The native binding against the running kernel: real objects, real
// verifier, real tp_btf attachment, real ring buffers. Needs root. The test
// object (bpf/testdata/binding_test.bpf.c) reacts only to execs of processes
// this test spawned, so the counts below are exact whatever else runs.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setImmediate as nextImmediate, setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { runInNewContext } from 'node:vm';
import v8 from 'node:v8';
import { Worker } from 'node:worker_threads';

import {
  ADDON_PATH,
  BPF_EXIST,
  BPF_NOEXIST,
  isNativeError,
  native,
  type BpfMap,
  type BpfObject,
  type NativeError,
} from '../../src/bpf/native.js';
import { expectClosed, parseBatch, spawnTrue, u32, waitFor, type Rec } from './helpers.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const OBJ_PATH = path.join(ROOT, 'build/bpf/testdata/binding_test.bpf.o');
const ADDON = path.join(ROOT, ADDON_PATH);
const PIN_DIR = `/sys/fs/bpf/krsi-test-${process.pid}`;
const IS_ROOT = process.getuid?.() === 0;

// Layout of the test object's records (binding_test.bpf.c).
const EXEC_TYPE = 0x7e57;
const MARK_TYPE = 0x7e58;
import { KRSI_ABI_VERSION as KRSI_ABI } from '../../src/abi/generated.js';

const EXEC_HDR_SIZE = 128; // offsetof(struct test_exec_record, tail), after a 32-byte krsi_event_header
const SEQ_OFFSET = 40; // offsetof(struct test_exec_record, seq): the index within the burst
const EXEC_SAMPLE_SIZE = 168; // sizeof(struct test_exec_record)
const MARK_SIZE = 40; // sizeof(struct test_mark_record), sent with hdr.size = 0

function u64(n: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return b;
}

function cstr(b: Buffer): string {
  const nul = b.indexOf(0);
  return b.subarray(0, nul < 0 ? b.length : nul).toString();
}

/** Opens the test object aimed at this process; loads it unless told not to. */
function openTest(opts: { burst?: number; load?: boolean; ppid?: number } = {}): BpfObject {
  const obj = native.BpfObject.openFile(OBJ_PATH);
  obj.setGlobal('target_ppid', u32(opts.ppid ?? process.pid));
  if (opts.burst !== undefined) obj.setGlobal('burst', u32(opts.burst));
  if (opts.load ?? true) obj.load();
  return obj;
}

function expectNative(fn: () => unknown, check: Partial<Pick<NativeError, 'code' | 'op'>>): NativeError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(isNativeError(caught), `expected a NativeError, got ${String(caught)}`);
  if (check.code !== undefined) assert.equal(caught.code, check.code);
  if (check.op !== undefined) assert.equal(caught.op, check.op);
  assert.ok(caught.errno > 0);
  assert.equal(typeof caught.libbpfLog, 'string');
  return caught;
}

function possibleCpus(): number {
  // "0-3" or "0,2-5": count every id.
  const text = fs.readFileSync('/sys/devices/system/cpu/possible', 'utf8').trim();
  let n = 0;
  for (const part of text.split(',')) {
    const [lo, hi] = part.split('-').map(Number);
    n += hi === undefined ? 1 : hi - (lo ?? 0) + 1;
  }
  return n;
}

function mapOf(obj: BpfObject, name: string): BpfMap {
  return obj.map(name);
}

describe('native binding on the host kernel', { skip: IS_ROOT ? false : 'needs root (BPF)' }, () => {
  before(() => {
    assert.ok(fs.existsSync(OBJ_PATH), `${OBJ_PATH} is missing: run make build/bpf/testdata/binding_test.bpf.o`);
    const mounted = fs.readFileSync('/proc/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === '/sys/fs/bpf' && l.split(' ')[2] === 'bpf');
    if (!mounted) {
      const r = spawnSync('mount', ['-t', 'bpf', 'bpf', '/sys/fs/bpf']);
      assert.equal(r.status, 0, `mount bpffs: ${r.stderr}`);
    }
  });

  after(() => {
    fs.rmSync(PIN_DIR, { recursive: true, force: true });
  });

  test('library facts and feature probes', () => {
    assert.equal(native.libbpfVersion(), '1.1');
    assert.equal(native.numPossibleCpus(), possibleCpus());
    assert.equal(native.probeMapType('ringbuf'), true);
    assert.equal(native.probeMapType('hash'), true);
    assert.equal(native.probeProgType('tracepoint'), true);
    assert.equal(native.probeHelper('tracepoint', 1 /* BPF_FUNC_map_lookup_elem */), true);
    assert.equal(typeof native.probeProgType('lsm'), 'boolean');
    assert.throws(() => native.probeProgType('no_such_type'), TypeError);
    assert.throws(() => native.probeMapType('no_such_type'), TypeError);
  });

  test('open from a file and from a buffer: programs and maps before load', () => {
    const fromFile = native.BpfObject.openFile(OBJ_PATH);
    const elf = fs.readFileSync(OBJ_PATH);
    const fromBuf = native.BpfObject.openBuffer(elf, 'from_buffer');
    elf.fill(0); // the binding keeps its own copy
    const named = native.BpfObject.openBuffer(fs.readFileSync(OBJ_PATH), 'x', { objectName: 'renamed' });
    try {
      assert.equal(fromFile.name, 'binding_test');
      assert.equal(fromBuf.name, 'from_buffer');
      assert.equal(named.name, 'renamed');
      for (const obj of [fromFile, fromBuf]) {
        assert.equal(obj.loaded, false);
        const progs = obj.programs();
        assert.deepEqual(progs.map((p) => p.name).sort(), [
          'on_exec',
          'on_exec_inner',
          'on_exec_task_storage',
          'rejected_oob_read',
        ]);
        const onExec = obj.program('on_exec');
        assert.equal(onExec.section, 'tp_btf/sched_process_exec');
        assert.equal(onExec.type, 'tracing');
        assert.equal(onExec.attachType, 'trace_raw_tp');
        assert.equal(onExec.sleepable, false);
        assert.equal(onExec.autoload, true);
        assert.equal(onExec.fd, -1);
        assert.equal(obj.program('rejected_oob_read').autoload, false, "'?' sections are not autoloaded");

        const maps = Object.fromEntries(obj.maps().map((m) => [m.name, m]));
        for (const name of ['exec_count', 'counters', 'percpu_execs', 'ring_a', 'ring_b', 'ring_c', 'task_store', 'outer', 'inner_a']) {
          assert.ok(maps[name], name);
        }
        const h = mapOf(obj, 'exec_count');
        assert.deepEqual([h.type, h.keySize, h.valueSize, h.maxEntries, h.fd, h.perCpu], ['hash', 4, 8, 1024, -1, false]);
        const pc = mapOf(obj, 'percpu_execs');
        assert.deepEqual([pc.type, pc.valueSize, pc.perCpu], ['percpu_array', 4, true]);
        assert.equal(mapOf(obj, 'ring_a').type, 'ringbuf');
        assert.equal(mapOf(obj, 'ring_a').maxEntries, 1 << 20);
        mapOf(obj, 'ring_b').setMaxEntries(1 << 17);
        assert.equal(mapOf(obj, 'ring_b').maxEntries, 1 << 17);
      }
      fromBuf.setGlobal('target_ppid', u32(process.pid));
      fromBuf.load();
      assert.equal(fromBuf.loaded, true);
      assert.ok(fromBuf.program('on_exec').fd >= 0);
      assert.ok(fromBuf.program('on_exec').id() > 0);
      assert.equal(fromBuf.program('rejected_oob_read').fd, -1);
      assert.equal(mapOf(fromBuf, 'ring_b').maxEntries, 1 << 17);
      assert.ok(mapOf(fromBuf, 'ring_b').fd >= 0);
    } finally {
      fromFile.close();
      fromBuf.close();
      named.close();
    }
  });

  test('setGlobal checks the name, the size and that the object is not loaded', () => {
    const obj = native.BpfObject.openFile(OBJ_PATH);
    try {
      assert.throws(() => obj.setGlobal('target_ppid', Buffer.alloc(8)), /4 bytes, the value 8/);
      expectNative(() => obj.setGlobal('no_such_var', u32(1)), { code: 'ENOENT', op: 'setGlobal' });
      obj.setGlobal('mark_word', u32(1)); // .data works like .rodata
      obj.load();
      assert.throws(() => obj.setGlobal('target_ppid', u32(1)), /already loaded/);
      expectNative(() => mapOf(obj, 'ring_b').setMaxEntries(1 << 18), { code: 'EBUSY', op: 'bpf_map__set_max_entries' });
      const autoloadErr = expectNative(() => {
        obj.program('on_exec').autoload = false;
      }, { op: 'bpf_program__set_autoload' });
      assert.ok(['EINVAL', 'EBUSY'].includes(autoloadErr.code), autoloadErr.code); // libbpf 1.1: EINVAL
    } finally {
      obj.close();
    }
  });

  test('tp_btf program: exactly the test\'s execs arrive, with only hdr.size bytes', async () => {
    const obj = native.BpfObject.openFile(OBJ_PATH);
    obj.setGlobal('target_ppid', u32(process.pid));
    obj.setGlobal('mark_word', u32(0x12345678));
    obj.load();
    const link = obj.program('on_exec').attach();
    const recs: Rec[] = [];
    const rb = new native.RingBuffer([mapOf(obj, 'ring_a'), mapOf(obj, 'ring_b')], {}, (batch, count) => {
      recs.push(...parseBatch(batch, count));
    });
    const statsWas = fs.readFileSync('/proc/sys/kernel/bpf_stats_enabled', 'utf8').trim();
    try {
      fs.writeFileSync('/proc/sys/kernel/bpf_stats_enabled', '1');
      const pids = spawnTrue(3);
      await waitFor('6 records', () => recs.length >= 6);
      await sleep(200); // anything else would have arrived by now
      assert.equal(recs.length, 6);

      const execs = recs.filter((r) => r.ring === 0);
      const marks = recs.filter((r) => r.ring === 1);
      assert.equal(execs.length, 3);
      assert.equal(marks.length, 3);
      for (const { payload } of execs) {
        assert.equal(payload.length, EXEC_HDR_SIZE, 'only hdr.size bytes of the sample');
        assert.ok(EXEC_HDR_SIZE < EXEC_SAMPLE_SIZE);
        assert.equal(payload.readUInt16LE(0), EXEC_TYPE);
        assert.equal(payload.readUInt16LE(2), KRSI_ABI);
        assert.equal(payload.readUInt32LE(4), EXEC_HDR_SIZE);
        assert.ok(payload.readBigUInt64LE(8) > 0n);
        assert.equal(payload.readUInt32LE(36), process.pid);
        assert.equal(payload.readUInt32LE(SEQ_OFFSET), 0);
        assert.equal(payload.readUInt32LE(44), 1);
        assert.equal(cstr(payload.subarray(48, 64)), 'true');
        assert.equal(cstr(payload.subarray(64, 128)), '/bin/true');
        // A run of filler, not one byte: the timestamp may hold a 0xaa byte.
        assert.ok(!payload.includes(Buffer.alloc(8, 0xaa)), 'the tail filler is not delivered');
      }
      for (const { payload } of marks) {
        assert.equal(payload.length, MARK_SIZE, 'hdr.size 0: the whole sample');
        assert.equal(payload.readUInt16LE(0), MARK_TYPE);
        assert.equal(payload.readUInt32LE(36), 0x12345678, 'setGlobal reached .data');
      }
      assert.deepEqual(execs.map((r) => r.payload.readUInt32LE(32)).sort(), [...pids].sort());
      assert.deepEqual(marks.map((r) => r.payload.readUInt32LE(32)).sort(), [...pids].sort());
      assert.equal(rb.stats.records, 6);
      assert.ok(rb.stats.batches >= 1 && rb.stats.batches <= 6);

      // The counters the program keeps in three kinds of maps.
      const ctr = mapOf(obj, 'counters').lookup(u32(0));
      assert.ok(ctr);
      assert.equal(ctr.length, 24);
      assert.equal(ctr.readBigUInt64LE(0), 3n);
      assert.equal(ctr.readBigUInt64LE(8), 3n);
      assert.equal(ctr.readBigUInt64LE(16), 0n);
      for (const pid of pids) assert.deepEqual(mapOf(obj, 'exec_count').lookup(u32(pid)), u64(1n));
      const ncpu = native.numPossibleCpus();
      const pc = mapOf(obj, 'percpu_execs').lookup(u32(0));
      assert.ok(pc);
      assert.equal(pc.length, 8 * ncpu, 'per-CPU: 4-byte value rounded to 8, times the CPUs');
      let sum = 0;
      for (let cpu = 0; cpu < ncpu; cpu++) sum += pc.readUInt32LE(cpu * 8);
      assert.equal(sum, 3);

      const stats = obj.program('on_exec').runStats();
      assert.equal(typeof stats.runCount, 'bigint');
      assert.ok(stats.runCount >= 3n, `runCount ${stats.runCount}`);
      assert.ok(stats.runTimeNs > 0n);
    } finally {
      fs.writeFileSync('/proc/sys/kernel/bpf_stats_enabled', statsWas);
      rb.close();
      link.close();
      obj.close();
    }
  });

  test('map operations on Buffers', () => {
    const obj = openTest({ ppid: 0 }); // loaded, never attached
    try {
      const h = mapOf(obj, 'exec_count');
      assert.equal(h.lookup(u32(1)), null);
      h.update(u32(1), u64(10n));
      assert.deepEqual(h.lookup(u32(1)), u64(10n));
      expectNative(() => h.update(u32(1), u64(11n), BPF_NOEXIST), { code: 'EEXIST', op: 'bpf_map_update_elem' });
      const noent = expectNative(() => h.update(u32(2), u64(11n), BPF_EXIST), { code: 'ENOENT', op: 'bpf_map_update_elem' });
      assert.equal(noent.libbpfLog, '', 'only what libbpf printed during this call');
      h.update(u32(1), u64(12n), BPF_EXIST);
      assert.deepEqual(h.lookup(u32(1)), u64(12n));
      assert.equal(h.delete(u32(1)), true);
      assert.equal(h.delete(u32(1)), false);
      assert.throws(() => h.lookup(Buffer.alloc(8)), /key is 8 bytes, the map's keys are 4/);
      assert.throws(() => h.update(u32(1), u32(1)), /value is 4 bytes, the map takes 8/);
      assert.throws(() => h.lookup('nope' as unknown as Uint8Array), TypeError);

      // Batches: 10 in, all 10 back, 4 out.
      const n = 10;
      const keys = Buffer.concat(Array.from({ length: n }, (_, i) => u32(100 + i)));
      const values = Buffer.concat(Array.from({ length: n }, (_, i) => u64(BigInt(1000 + i))));
      h.updateBatch(keys, values, n);
      const all = h.lookupBatch();
      assert.equal(all.count, n);
      assert.equal(all.keys.length, n * 4);
      assert.equal(all.values.length, n * 8);
      const got = new Map<number, bigint>();
      for (let i = 0; i < all.count; i++) got.set(all.keys.readUInt32LE(i * 4), all.values.readBigUInt64LE(i * 8));
      for (let i = 0; i < n; i++) assert.equal(got.get(100 + i), BigInt(1000 + i));
      assert.deepEqual(h.keys().map((k) => k.readUInt32LE(0)).sort((a, b) => a - b), Array.from({ length: n }, (_, i) => 100 + i));
      assert.equal(h.deleteBatch(keys.subarray(0, 16), 4), 4);
      assert.equal(h.keys().length, n - 4);
      assert.equal(h.lookup(u32(100)), null);
      const deleteMissing = expectNative(() => h.deleteBatch(u32(100), 1), { code: 'ENOENT', op: 'bpf_map_delete_batch' });
      assert.match(deleteMissing.message, /0 of 1 deleted/);
      assert.throws(() => h.updateBatch(keys, values, n + 1), /needs 44 bytes of keys/);

      // An array has every key; a batch lookup returns all of them.
      const arr = mapOf(obj, 'counters');
      const a = arr.lookupBatch();
      assert.equal(a.count, 4);
      assert.equal(a.values.length, 4 * 24);
      assert.deepEqual(arr.keys().map((k) => k.readUInt32LE(0)), [0, 1, 2, 3]);
      const v = Buffer.alloc(24);
      v.writeBigUInt64LE(7n, 8);
      arr.update(u32(2), v);
      assert.deepEqual(arr.lookup(u32(2)), v);
      expectNative(() => arr.update(u32(4), v), { code: 'E2BIG' });

      // Per-CPU: one 8-byte slot per possible CPU in and out.
      const ncpu = native.numPossibleCpus();
      const pc = mapOf(obj, 'percpu_execs');
      const slots = Buffer.alloc(8 * ncpu);
      for (let cpu = 0; cpu < ncpu; cpu++) slots.writeUInt32LE(cpu + 1, cpu * 8);
      pc.update(u32(1), slots);
      assert.deepEqual(pc.lookup(u32(1)), slots);
      assert.throws(() => pc.update(u32(1), u32(1)), /the map takes/);
      const pcb = pc.lookupBatch();
      assert.equal(pcb.count, 2);
      assert.equal(pcb.values.length, 2 * 8 * ncpu);

      // Frozen: user space can no longer write.
      arr.freeze();
      expectNative(() => arr.update(u32(0), v), { code: 'EPERM', op: 'bpf_map_update_elem' });
      assert.deepEqual(arr.lookup(u32(2)), v);

      // A ring buffer has no keys to walk.
      expectNative(() => mapOf(obj, 'ring_a').keys(), { op: 'bpf_map_get_next_key' });
    } finally {
      obj.close();
    }
  });

  test('pinning maps and links, BpfMap.openPinned and BpfLink.open', async () => {
    const obj = openTest();
    const recs: Rec[] = [];
    const rb = new native.RingBuffer([mapOf(obj, 'ring_a')], {}, (b, c) => recs.push(...parseBatch(b, c)));
    const counters = mapOf(obj, 'counters');
    const mapPin = `${PIN_DIR}/counters`;
    const linkPin = `${PIN_DIR}/on_exec_link`;
    try {
      // Maps.
      assert.equal(counters.pinPath, null);
      counters.pin(mapPin);
      assert.equal(counters.pinPath, mapPin);
      assert.ok(fs.existsSync(mapPin));
      const pinned = native.BpfMap.openPinned(mapPin);
      assert.equal(pinned.name, 'counters');
      assert.deepEqual([pinned.type, pinned.keySize, pinned.valueSize, pinned.maxEntries, pinned.perCpu], ['array', 4, 24, 4, false]);
      assert.ok(pinned.fd >= 0 && pinned.fd !== counters.fd);
      assert.equal(pinned.pinPath, mapPin);
      const v = Buffer.alloc(24, 0x11);
      pinned.update(u32(3), v);
      assert.deepEqual(counters.lookup(u32(3)), v, 'one kernel map behind both handles');
      pinned.close();
      pinned.close();
      expectClosed(() => pinned.lookup(u32(0)), 'BpfMap');
      assert.throws(() => counters.close(), /belongs to its BpfObject/);
      counters.unpin();
      assert.equal(counters.pinPath, null);
      assert.ok(!fs.existsSync(mapPin));
      counters.pin(`${PIN_DIR}/counters2`); // a new path after unpin
      assert.equal(counters.pinPath, `${PIN_DIR}/counters2`);
      counters.unpin();
      expectNative(() => native.BpfMap.openPinned(mapPin), { code: 'ENOENT', op: 'bpf_obj_get' });

      // Links: a pinned link survives close() and can be adopted.
      const link = obj.program('on_exec').attach();
      const id = link.id();
      assert.equal(link.pinPath, null);
      link.pin(linkPin);
      assert.equal(link.pinPath, linkPin);
      expectNative(() => native.BpfMap.openPinned(linkPin), { code: 'EINVAL', op: 'bpf_obj_get' });
      link.close();
      spawnTrue(1);
      await waitFor('a record through the pinned link', () => recs.length === 1);

      const adopted = native.BpfLink.open(linkPin);
      assert.equal(adopted.id(), id);
      assert.equal(adopted.pinPath, linkPin);
      adopted.unpin();
      assert.equal(adopted.pinPath, null);
      assert.ok(!fs.existsSync(linkPin));
      adopted.close(); // unpinned and closed: detached
      spawnTrue(2);
      await sleep(200);
      assert.equal(recs.length, 1, 'no records after the last reference went away');
      expectNative(() => native.BpfLink.open(linkPin), { code: 'ENOENT', op: 'bpf_link__open' });

      // detach(): ends an attachment even while pinned, where the link type allows it.
      const again = obj.program('on_exec').attach();
      again.pin(linkPin);
      let detached = true;
      try {
        again.detach();
      } catch (err) {
        detached = false;
        assert.ok(isNativeError(err));
        assert.equal(err.op, 'bpf_link__detach');
        assert.ok(['ENOTSUP', 'EOPNOTSUPP'].includes(err.code), err.code);
      }
      if (detached) {
        spawnTrue(1);
        await sleep(200);
        assert.equal(recs.length, 1, 'detached while pinned');
      }
      again.unpin();
      again.close();
    } finally {
      rb.close();
      obj.close();
    }
  });

  test('errors carry code, errno, op and libbpf\'s own words', () => {
    const missing = expectNative(() => native.BpfObject.openFile('/nonexistent/x.bpf.o'), {
      code: 'ENOENT',
      op: 'bpf_object__open_file',
    });
    assert.equal(missing.errno, 2);
    assert.match(missing.message, /^bpf_object__open_file '\/nonexistent\/x\.bpf\.o': No such file or directory \(ENOENT\)/);
    assert.match(missing.message, /libbpf: elf: failed to open \/nonexistent\/x\.bpf\.o/);
    assert.match(missing.libbpfLog, /failed to open/);

    const garbage = expectNative(() => native.BpfObject.openBuffer(Buffer.from('not an ELF file at all'), 'garbage'), {
      op: 'bpf_object__open_mem',
    });
    assert.match(garbage.libbpfLog, /libbpf: /);

    const obj = native.BpfObject.openFile(OBJ_PATH);
    try {
      expectNative(() => obj.program('nope'), { code: 'ENOENT', op: 'bpf_object__find_program_by_name' });
      expectNative(() => obj.map('nope'), { code: 'ENOENT', op: 'bpf_object__find_map_by_name' });
      assert.throws(() => mapOf(obj, 'counters').lookup(u32(0)), /not created yet/);
      assert.throws(() => obj.program('on_exec').id(), /is not loaded/);
      assert.throws(
        () => new native.RingBuffer([mapOf(obj, 'ring_a')], {}, () => {}),
        /not created yet: load its BpfObject first/,
      );
      assert.throws(() => new native.RingBuffer([mapOf(obj, 'counters')], {}, () => {}), /is a array map, not a ringbuf/);
      assert.throws(() => new native.RingBuffer([], {}, () => {}), TypeError);
      assert.throws(() => new native.RingBuffer([{} as BpfMap], {}, () => {}), /expected a BpfMap/);
      // Wrappers cannot be made from script.
      const Ctor = (native as unknown as { BpfLink: new () => unknown }).BpfLink;
      assert.throws(() => new Ctor(), TypeError);
    } finally {
      obj.close();
    }
  });

  test('a verifier rejection fails load() with the verifier log', () => {
    const obj = openTest({ load: false });
    try {
      const bad = obj.program('rejected_oob_read');
      assert.equal(bad.autoload, false);
      bad.autoload = true;
      assert.equal(bad.autoload, true);
      const err = expectNative(() => obj.load(), { op: 'bpf_object__load' });
      // The verifier says EACCES for most rejections, EINVAL for this one on recent kernels.
      assert.ok(['EACCES', 'EINVAL'].includes(err.code), err.code);
      assert.equal(obj.loaded, false);
      assert.match(err.message, /^bpf_object__load 'binding_test': [^\n]+ \((EACCES|EINVAL)\)\n/);
      assert.match(err.message, /prog 'rejected_oob_read': BPF program load failed/);
      assert.match(err.message, /-- BEGIN PROG LOAD LOG --/);
      assert.match(err.message, /invalid variable-offset read from stack|invalid (indirect )?read from stack/);
      assert.match(err.libbpfLog, /-- END PROG LOAD LOG --/);
      expectNative(() => obj.load(), { code: 'EINVAL', op: 'bpf_object__load' }); // libbpf loads once
    } finally {
      obj.close();
    }
    const good = openTest(); // the same object loads when the bad program stays off
    assert.equal(good.loaded, true);
    good.close();
  });

  test('libbpf output reaches the logger registered with setLogger', () => {
    const lines: Array<[string, string]> = [];
    native.setLogger((level, msg) => lines.push([level, msg]));
    try {
      assert.throws(() => native.BpfObject.openFile('/nonexistent/y.bpf.o'));
      const obj = native.BpfObject.openFile(OBJ_PATH);
      obj.close();
    } finally {
      native.setLogger(null);
    }
    assert.ok(lines.some(([l, m]) => l === 'warn' && m === 'elf: failed to open /nonexistent/y.bpf.o: No such file or directory'));
    assert.ok(lines.some(([l, m]) => l === 'debug' && /found program 'on_exec'/.test(m)));
    const n = lines.length;
    assert.throws(() => native.BpfObject.openFile('/nonexistent/z.bpf.o'));
    assert.equal(lines.length, n, 'nothing after setLogger(null)');
  });

  test('open options: kernelLogLevel asks for the verifier log of a good load, btfCustomPath picks the BTF', () => {
    const lines: Array<[string, string]> = [];
    native.setLogger((level, msg) => lines.push([level, msg]));
    let verbose: BpfObject | undefined;
    try {
      verbose = native.BpfObject.openFile(OBJ_PATH, { kernelLogLevel: 1, btfCustomPath: '/sys/kernel/btf/vmlinux' });
      verbose.load();
    } finally {
      native.setLogger(null);
      verbose?.close();
    }
    assert.ok(
      lines.some(([l, m]) => l === 'debug' && m.includes("prog 'on_exec': -- BEGIN PROG LOAD LOG --") && m.includes('processed')),
      'the verifier log of on_exec at debug level',
    );

    const bogus = native.BpfObject.openFile(OBJ_PATH, { btfCustomPath: '/nonexistent/vmlinux' });
    try {
      const err = expectNative(() => bogus.load(), { code: 'ENOENT', op: 'bpf_object__load' });
      assert.match(err.message, /libbpf: failed to parse target BTF: -2/);
    } finally {
      bogus.close();
    }
    assert.throws(() => native.BpfObject.openFile(OBJ_PATH, { kernelLogLevel: -1 }), TypeError);
  });

  test('ring buffer budget: all records arrive in bounded batches, the loop runs in between', async () => {
    const obj = openTest({ burst: 200 });
    const link = obj.program('on_exec').attach();
    const ring = mapOf(obj, 'ring_a');
    try {
      // The loop is blocked while spawnSync runs, so all 600 records wait in the ring.
      const pids = spawnTrue(3);
      let ticks = 0;
      let ticking = true;
      const tick = (): void => {
        ticks++;
        if (ticking) setImmediate(tick);
      };
      setImmediate(tick);
      const batches: Array<{ count: number; bytes: number; tick: number }> = [];
      const recs: Rec[] = [];
      const rb = new native.RingBuffer([ring], { maxRecordsPerTick: 16 }, (b, c) => {
        batches.push({ count: c, bytes: b.length, tick: ticks });
        recs.push(...parseBatch(b, c));
      });
      await waitFor('600 records', () => recs.length >= 600);
      ticking = false;
      rb.close();
      assert.equal(recs.length, 600);
      assert.ok(batches.every((b) => b.count <= 16));
      assert.ok(batches.length >= 600 / 16, `${batches.length} batches`);
      for (let i = 1; i < batches.length; i++) {
        const prev = batches[i - 1];
        const cur = batches[i];
        assert.ok(prev && cur && cur.tick > prev.tick, `setImmediate ran between batches ${i - 1} and ${i}`);
      }
      // Nothing lost, nothing twice, ring order kept per process.
      for (const pid of pids) {
        const seqs = recs.filter((r) => r.payload.readUInt32LE(32) === pid).map((r) => r.payload.readUInt32LE(SEQ_OFFSET));
        assert.deepEqual(seqs, Array.from({ length: 200 }, (_, i) => i));
      }

      // A byte budget: a batch ends with the record that reaches it.
      spawnTrue(1);
      const small: Array<{ count: number; bytes: number }> = [];
      let total = 0;
      const rb2 = new native.RingBuffer([ring], { batchBytes: 1000 }, (b, c) => {
        parseBatch(b, c);
        small.push({ count: c, bytes: b.length });
        total += c;
      });
      await waitFor('200 more records', () => total >= 200);
      rb2.close();
      assert.equal(total, 200);
      const recBytes = 8 + EXEC_HDR_SIZE;
      assert.ok(small.every((b) => b.bytes < 1000 + recBytes), JSON.stringify(small));
      assert.ok(small.length >= Math.floor((200 * recBytes) / (1000 + recBytes)));
    } finally {
      link.close();
      obj.close();
    }
  });

  test('consume() drains synchronously; a ring that is not polled can be unref()ed', () => {
    const obj = openTest({ burst: 50 });
    const link = obj.program('on_exec').attach();
    const counts: number[] = [];
    const rb = new native.RingBuffer([mapOf(obj, 'ring_a'), mapOf(obj, 'ring_b')], { maxRecordsPerTick: 8 }, (_b, c) => {
      counts.push(c);
    });
    try {
      rb.unref();
      rb.ref();
      spawnTrue(2);
      const n = rb.consume();
      assert.equal(n, 102); // 2 × 50 on ring_a, 2 marks on ring_b
      assert.equal(counts.reduce((a, b) => a + b, 0), 102);
      assert.ok(counts.every((c) => c <= 8));
      assert.equal(rb.consume(), 0);
      assert.deepEqual(rb.stats, { batches: counts.length, records: 102 });

      // Exceptions from onBatch propagate out of consume().
      const throwing = new native.RingBuffer([mapOf(obj, 'ring_b')], {}, () => {
        throw new Error('from onBatch');
      });
      spawnTrue(1);
      assert.throws(() => throwing.consume(), /from onBatch/);
      throwing.close();
    } finally {
      rb.close();
      link.close();
      obj.close();
    }
  });

  /** Runs fn with ring_a holding the records of one exec's burst, numbered 0..burst-1. */
  function withBurst(burst: number, fn: (ring: ReturnType<typeof mapOf>) => void): void {
    const obj = openTest({ burst });
    const link = obj.program('on_exec').attach();
    try {
      spawnTrue(1);
      fn(mapOf(obj, 'ring_a'));
    } finally {
      link.close();
      obj.close();
    }
  }
  const seqOf = (r: Rec): number => r.payload.readUInt32LE(SEQ_OFFSET);

  test('a batch stays in the ring until onBatch returns: a reader killed before that leaves it to the next', () => {
    withBurst(10, (ring) => {
      // Inside onBatch, the records are still in the ring: a second reader
      // of the same ring (a successor) is handed them too.
      let inside: Rec[] = [];
      const outer: Rec[] = [];
      const first = new native.RingBuffer([ring], { maxRecordsPerTick: 4 }, (b, c) => {
        outer.push(...parseBatch(b, c));
        if (inside.length > 0) return;
        // A successor that takes one batch and goes: it is handed the batch
        // in progress, which it gives back (closed from its onBatch) as handled.
        const peek: InstanceType<typeof native.RingBuffer> = new native.RingBuffer([ring], { maxRecordsPerTick: 4 }, (b2, c2) => {
          inside = parseBatch(b2, c2);
          peek.close();
        });
        peek.consume();
      });
      try {
        assert.equal(first.consume(), 10, 'the first reader gets every record once');
      } finally {
        first.close();
      }
      assert.equal(outer.length, 10);
      assert.deepEqual(
        inside.map(seqOf),
        outer.slice(0, 4).map(seqOf),
        'the records of the batch in progress were still in the ring',
      );
      // Once onBatch returned, they are gone from the ring.
      const after = new native.RingBuffer([ring], {}, () => assert.fail('nothing is left'));
      assert.equal(after.consume(), 0);
      after.close();
    });
  });

  test('onBatch that drains its own reader again is handed the next records, not the batch in progress', () => {
    withBurst(10, (ring) => {
      const seen: number[] = [];
      let nested = 0;
      const reader: InstanceType<typeof native.RingBuffer> = new native.RingBuffer([ring], { maxRecordsPerTick: 4 }, (b, c) => {
        seen.push(...parseBatch(b, c).map(seqOf));
        // As an event handler run in the microtasks after onBatch may (the agent's shutdown).
        if (nested++ === 0) reader.consume();
      });
      try {
        reader.consume();
      } finally {
        reader.close();
      }
      assert.equal(seen.length, 10, `every record once: ${seen.join(',')}`);
      assert.equal(new Set(seen).size, 10, `no record twice: ${seen.join(',')}`);
    });
  });

  test('close() is idempotent; use after close throws a clear error', () => {
    const obj = openTest();
    const prog = obj.program('on_exec');
    const map = mapOf(obj, 'counters');
    const link = prog.attach();
    const rb = new native.RingBuffer([mapOf(obj, 'ring_a')], {}, () => {});
    rb.close();
    rb.close();
    expectClosed(() => rb.consume(), 'RingBuffer');
    expectClosed(() => rb.ref(), 'RingBuffer');
    link.close();
    link.close();
    expectClosed(() => link.fd, 'BpfLink');
    expectClosed(() => link.pin(`${PIN_DIR}/x`), 'BpfLink');
    obj.close();
    obj.close();
    assert.equal(obj.loaded, false);
    expectClosed(() => obj.name, 'BpfObject');
    expectClosed(() => obj.programs(), 'BpfObject');
    expectClosed(() => obj.load(), 'BpfObject');
    expectClosed(() => prog.name, 'BpfObject');
    expectClosed(() => prog.attach(), 'BpfObject');
    expectClosed(() => map.lookup(u32(0)), 'BpfObject');
    expectClosed(() => map.fd, 'BpfObject');
  });

  test('programs and maps keep their object alive through GC', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const { prog, map } = (() => {
      const obj = openTest();
      return { prog: obj.program('on_exec'), map: mapOf(obj, 'counters') };
    })();
    for (let i = 0; i < 3; i++) {
      gc();
      await nextImmediate();
    }
    assert.equal(prog.name, 'on_exec');
    assert.ok(prog.fd >= 0);
    assert.ok(map.lookup(u32(0)));
  });

  test('ring buffer in a worker_threads Worker', async () => {
    // Plain JS: the worker loads the addon itself and polls on its own loop.
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      const { spawnSync } = require('node:child_process');
      const native = require(workerData.addon);
      const u32 = (n) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
      const obj = native.BpfObject.openFile(workerData.obj);
      obj.setGlobal('target_ppid', u32(process.pid));
      obj.load();
      const link = obj.program('on_exec').attach();
      const pids = [];
      let records = 0;
      const rb = new native.RingBuffer([obj.map('ring_a')], {}, (batch, count) => {
        records += count;
        if (records === 3) {
          rb.close(); link.close(); obj.close();
          parentPort.postMessage({ records, pids });
        }
      });
      if (workerData.exitEarly) {
        // Leave everything open: environment teardown must close the poll handle.
        parentPort.postMessage({ records: 0, pids });
        process.exit(0);
      }
      for (let i = 0; i < 3; i++) pids.push(spawnSync('/bin/true').pid);
    `;
    const run = (exitEarly: boolean): Promise<{ msg: { records: number; pids: number[] }; code: number }> =>
      new Promise((resolve, reject) => {
        const w = new Worker(code, { eval: true, workerData: { addon: ADDON, obj: OBJ_PATH, exitEarly } });
        let msg: { records: number; pids: number[] } | undefined;
        w.on('message', (m: { records: number; pids: number[] }) => (msg = m));
        w.on('error', reject);
        w.on('exit', (code) => (msg ? resolve({ msg, code }) : reject(new Error(`worker exited (${code}) without a result`))));
      });

    const normal = await run(false);
    assert.equal(normal.code, 0);
    assert.equal(normal.msg.records, 3);
    assert.equal(normal.msg.pids.length, 3);

    const early = await run(true);
    assert.equal(early.code, 0);
  });

  test('an exception thrown by onBatch from the event loop is an uncaught exception', async () => {
    const code = `
      const { workerData } = require('node:worker_threads');
      const { spawnSync } = require('node:child_process');
      const native = require(workerData.addon);
      const b = Buffer.alloc(4); b.writeUInt32LE(process.pid);
      const obj = native.BpfObject.openFile(workerData.obj);
      obj.setGlobal('target_ppid', b);
      obj.load();
      const link = obj.program('on_exec').attach();
      new native.RingBuffer([obj.map('ring_b')], {}, () => { throw new Error('thrown by onBatch'); });
      spawnSync('/bin/true');
    `;
    const err = await new Promise<unknown>((resolve, reject) => {
      const w = new Worker(code, { eval: true, workerData: { addon: ADDON, obj: OBJ_PATH } });
      w.on('error', resolve);
      w.on('exit', (c) => reject(new Error(`worker exited (${c}) without an error`)));
    });
    assert.ok(err instanceof Error);
    assert.equal(err.message, 'thrown by onBatch');
  });
});

// The native binding's standalone maps, map-in-map, map reuse, task storage
// through pidfds, link info and Unix peer credentials, against the running
// kernel. Needs root for everything BPF; the peer-credentials tests run as
// anybody. The BPF side is bpf/testdata/binding_test.bpf.c: on_exec_inner
// and on_exec_task_storage write to ring_c, for execs of this process's
// children only.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { runInNewContext } from 'node:vm';
import v8 from 'node:v8';

import {
  BPF_EXIST,
  BPF_F_INNER_MAP,
  BPF_F_NO_PREALLOC,
  BPF_F_RDONLY,
  BPF_NOEXIST,
  isClosedError,
  isNativeError,
  native,
  type BpfLink,
  type BpfMap,
  type BpfObject,
  type MapSpec,
  type NativeError,
  type RingBuffer,
} from '../../src/bpf/native.js';
import { socketPeerCredentials } from '../../src/system/peer-credentials.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const OBJ_PATH = path.join(ROOT, 'build/bpf/testdata/binding_test.bpf.o');
const PIN_DIR = `/sys/fs/bpf/krsi-test-maps-${process.pid}`;
const IS_ROOT = process.getuid?.() === 0;

// Records on ring_c (binding_test.bpf.c).
const TASK_STORAGE_TYPE = 0x7e59;
const INNER_TYPE = 0x7e5a;
const RECORD_SIZE = 56; // both test_task_record and test_inner_record (32-byte header)
const INNER_KEY = 1; // TEST_INNER_KEY

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

function u64(n: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return b;
}

/** struct test_task_value. */
function taskValue(a: bigint, b: bigint): Buffer {
  return Buffer.concat([u64(a), u64(b)]);
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

async function waitFor(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

function openTest(opts: { load?: boolean } = {}): BpfObject {
  const obj = native.BpfObject.openFile(OBJ_PATH);
  obj.setGlobal('target_ppid', u32(process.pid));
  if (opts.load ?? true) obj.load();
  return obj;
}

function hashSpec(name: string, over: Partial<{ keySize: number; valueSize: number; maxEntries: number; flags: number }> = {}) {
  return { type: 'hash', name, keySize: 4, valueSize: 8, maxEntries: 8, ...over };
}

/** Payloads of ring_c, split from the batches (length-prefixed, padded to 8). */
class RingC {
  readonly recs: Buffer[] = [];
  private readonly rb: RingBuffer;

  constructor(obj: BpfObject) {
    this.rb = new native.RingBuffer([obj.map('ring_c')], {}, (batch, count) => {
      let off = 0;
      for (let i = 0; i < count; i++) {
        const len = batch.readUInt32LE(off);
        this.recs.push(Buffer.from(batch.subarray(off + 8, off + 8 + len)));
        off += 8 + ((len + 7) & ~7);
      }
    });
  }

  of(type: number, pid: number): Buffer[] {
    return this.recs.filter((r) => r.readUInt16LE(0) === type && r.readUInt32LE(32) === pid);
  }

  close(): void {
    this.rb.close();
  }
}

describe('native binding: maps, task storage, links', { skip: IS_ROOT ? false : 'needs root (BPF)' }, () => {
  before(() => {
    assert.ok(fs.existsSync(OBJ_PATH), `${OBJ_PATH} is missing: run make build/bpf/testdata/binding_test.bpf.o`);
    const mounted = fs
      .readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .some((l) => l.split(' ')[1] === '/sys/fs/bpf' && l.split(' ')[2] === 'bpf');
    if (!mounted) {
      const r = spawnSync('mount', ['-t', 'bpf', 'bpf', '/sys/fs/bpf']);
      assert.equal(r.status, 0, `mount bpffs: ${r.stderr}`);
    }
  });

  after(() => {
    fs.rmSync(PIN_DIR, { recursive: true, force: true });
  });

  test('BpfMap.create: a standalone hash works like a pinned handle', () => {
    const h = native.BpfMap.create(hashSpec('krsi_t_hash', { maxEntries: 16 }));
    const pinPath = `${PIN_DIR}/hash`;
    try {
      assert.deepEqual(
        [h.name, h.type, h.keySize, h.valueSize, h.maxEntries, h.perCpu, h.pinPath],
        ['krsi_t_hash', 'hash', 4, 8, 16, false, null],
      );
      assert.ok(h.fd >= 0);
      assert.ok(h.id() > 0);
      h.update(u32(1), u64(10n));
      h.update(u32(2), u64(20n), BPF_NOEXIST);
      expectNative(() => h.update(u32(1), u64(11n), BPF_NOEXIST), { code: 'EEXIST', op: 'bpf_map_update_elem' });
      expectNative(() => h.update(u32(3), u64(30n), BPF_EXIST), { code: 'ENOENT', op: 'bpf_map_update_elem' });
      assert.equal(h.lookup(u32(1))?.readBigUInt64LE(), 10n);
      assert.equal(h.lookup(u32(3)), null);
      assert.deepEqual(h.keys().map((k) => k.readUInt32LE()).sort(), [1, 2]);
      assert.equal(h.lookupBatch().count, 2);
      h.updateBatch(Buffer.concat([u32(5), u32(6)]), Buffer.concat([u64(50n), u64(60n)]), 2);
      assert.equal(h.deleteBatch(Buffer.concat([u32(5), u32(6)]), 2), 2);
      assert.equal(h.delete(u32(2)), true);
      assert.equal(h.delete(u32(2)), false);
      assert.throws(() => h.lookup(u32(1).subarray(0, 2)), /key is 2 bytes/);

      h.pin(pinPath);
      assert.equal(h.pinPath, pinPath);
      const again = native.BpfMap.openPinned(pinPath);
      assert.equal(again.id(), h.id());
      assert.equal(again.lookup(u32(1))?.readBigUInt64LE(), 10n);
      again.close();
      h.unpin();
      assert.ok(!fs.existsSync(pinPath));

      h.freeze();
      expectNative(() => h.update(u32(1), u64(1n)), { code: 'EPERM', op: 'bpf_map_update_elem' });
      assert.equal(h.lookup(u32(1))?.readBigUInt64LE(), 10n);
      expectNative(() => h.setMaxEntries(32), { code: 'EBUSY', op: 'bpf_map__set_max_entries' });
    } finally {
      h.close();
    }
    h.close();
    assert.throws(() => h.lookup(u32(1)), (err: unknown) => isClosedError(err) && err.message === 'BpfMap is closed');
    assert.throws(() => h.id(), (err: unknown) => isClosedError(err));
  });

  test('BpfMap.create: array, percpu_array, lpm_trie, flags, ringbuf', () => {
    const made: BpfMap[] = [];
    const create = (spec: MapSpec): BpfMap => {
      const m = native.BpfMap.create(spec);
      made.push(m);
      return m;
    };
    try {
      const arr = create({ type: 'array', keySize: 4, valueSize: 4, maxEntries: 4 });
      assert.equal(arr.name, '', 'no name given, none in the kernel');
      assert.deepEqual(arr.lookup(u32(3)), Buffer.alloc(4));
      assert.equal(arr.lookup(u32(4)), null);

      const pc = create({ type: 'percpu_array', name: 'pc', keySize: 4, valueSize: 4, maxEntries: 2 });
      assert.equal(pc.perCpu, true);
      assert.equal(pc.lookup(u32(0))?.length, 8 * native.numPossibleCpus());

      // lpm_trie: the kernel insists on BPF_F_NO_PREALLOC, so flags must get through.
      const lpmSpec = { type: 'lpm_trie', name: 'lpm', keySize: 8, valueSize: 4, maxEntries: 16 };
      expectNative(() => create(lpmSpec), { code: 'EINVAL', op: 'bpf_map_create' });
      const lpm = create({ ...lpmSpec, flags: BPF_F_NO_PREALLOC });
      const prefix = (bits: number, ip: number[]): Buffer => Buffer.concat([u32(bits), Buffer.from(ip)]);
      lpm.update(prefix(8, [10, 0, 0, 0]), u32(8));
      lpm.update(prefix(16, [10, 1, 0, 0]), u32(16));
      assert.equal(lpm.lookup(prefix(32, [10, 1, 2, 3]))?.readUInt32LE(), 16, 'longest prefix');
      assert.equal(lpm.lookup(prefix(32, [10, 2, 2, 3]))?.readUInt32LE(), 8);
      assert.equal(lpm.lookup(prefix(32, [11, 0, 0, 1])), null);

      // BPF_F_RDONLY: read-only for user space.
      const ro = create({ type: 'array', name: 'ro', keySize: 4, valueSize: 4, maxEntries: 1, flags: BPF_F_RDONLY });
      assert.deepEqual(ro.lookup(u32(0)), Buffer.alloc(4));
      expectNative(() => ro.update(u32(0), u32(1)), { code: 'EPERM', op: 'bpf_map_update_elem' });

      // A created ring buffer is a ring buffer the binding can poll.
      const ring = create({ type: 'ringbuf', name: 'ring', keySize: 0, valueSize: 0, maxEntries: 1 << 16 });
      assert.equal(ring.type, 'ringbuf');
      const rb = new native.RingBuffer([ring], {}, () => {});
      assert.equal(rb.consume(), 0);
      rb.close();
    } finally {
      for (const m of made) m.close();
    }
  });

  test('BpfMap.create refuses bad specs, with a TypeError or the kernel\'s errno', () => {
    const tmpl = native.BpfMap.create(hashSpec('tmpl'));
    try {
      assert.throws(() => native.BpfMap.create({ ...hashSpec('x'), type: 'no_such_type' }), /unknown map type 'no_such_type'/);
      assert.throws(() => native.BpfMap.create(hashSpec('sixteen_chars_xx')), /longer than 15 characters/);
      assert.throws(
        () => native.BpfMap.create({ type: 'hash', keySize: 4, maxEntries: 1 } as never),
        (err: unknown) => err instanceof TypeError && /valueSize is required/.test(err.message),
      );
      assert.throws(() => native.BpfMap.create(hashSpec('x', { keySize: -1 })), TypeError);
      assert.throws(() => native.BpfMap.create(hashSpec('x', { maxEntries: 2 ** 32 })), /must fit in 32 bits/);
      assert.throws(() => native.BpfMap.create(null as never), /map spec must be an object/);
      assert.throws(
        () => native.BpfMap.create({ type: 'array_of_maps', keySize: 4, valueSize: 4, maxEntries: 1 }),
        /needs innerMap/,
      );
      assert.throws(() => native.BpfMap.create({ ...hashSpec('x'), innerMap: tmpl }), /innerMap is for array_of_maps/);
      // The kernel's refusals.
      expectNative(() => native.BpfMap.create(hashSpec('x', { maxEntries: 0 })), { code: 'EINVAL', op: 'bpf_map_create' });
      expectNative(() => native.BpfMap.create(hashSpec('bad-name')), { code: 'EINVAL', op: 'bpf_map_create' });
      // Local storage needs BTF for its key and value: not something create() can give.
      const ts = expectNative(
        () => native.BpfMap.create({ type: 'task_storage', keySize: 4, valueSize: 16, maxEntries: 0, flags: BPF_F_NO_PREALLOC }),
        { code: 'EINVAL', op: 'bpf_map_create' },
      );
      assert.match(ts.message, /^bpf_map_create '' \(task_storage\): Invalid argument \(EINVAL\)/);
    } finally {
      tmpl.close();
    }
  });

  test('id() and openById(): another handle on the same kernel map', () => {
    const obj = openTest();
    const unloaded = openTest({ load: false });
    try {
      const counters = obj.map('counters');
      const id = counters.id();
      assert.ok(id > 0);
      const byId = native.BpfMap.openById(id);
      assert.deepEqual([byId.name, byId.type, byId.keySize, byId.valueSize, byId.pinPath], ['counters', 'array', 4, 24, null]);
      assert.equal(byId.id(), id);
      byId.update(u32(3), Buffer.alloc(24, 7));
      assert.deepEqual(counters.lookup(u32(3)), Buffer.alloc(24, 7), 'the object sees what the handle wrote');
      byId.close();
      assert.ok(counters.lookup(u32(3)), "closing the handle leaves the object's map alone");
      assert.throws(() => counters.close(), /belongs to its BpfObject/);

      assert.throws(() => unloaded.map('counters').id(), /id: BpfMap 'counters' is not created yet/);
      assert.throws(() => native.BpfMap.openById(0), TypeError);
      assert.throws(() => native.BpfMap.openById(-1), TypeError);
      expectNative(() => native.BpfMap.openById(0xfffffff0), { code: 'ENOENT', op: 'bpf_map_get_fd_by_id' });
    } finally {
      obj.close();
      unloaded.close();
    }
  });

  test('a created map dropped without close() is freed by the finalizer', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const id = (() => native.BpfMap.create(hashSpec('dropped')).id())();
    const probe = native.BpfMap.openById(id); // alive while a handle is open
    probe.close();
    await waitFor('the kernel to free the dropped map', () => {
      gc();
      try {
        native.BpfMap.openById(id).close();
        return false;
      } catch (err) {
        assert.ok(isNativeError(err) && err.code === 'ENOENT', String(err));
        return true;
      }
    });
  });

  test('map-in-map from user space: setInnerMap, innerMapId, the kernel\'s shape checks', () => {
    const made: BpfMap[] = [];
    const create = (spec: MapSpec): BpfMap => {
      const m = native.BpfMap.create(spec);
      made.push(m);
      return m;
    };
    const unloaded = openTest({ load: false });
    try {
      const tmpl = create(hashSpec('tmpl'));
      const outer = create({ type: 'array_of_maps', name: 'outer_t', keySize: 4, valueSize: 4, maxEntries: 4, innerMap: tmpl });
      tmpl.close(); // the kernel copied the template's shape
      assert.equal(outer.type, 'array_of_maps');
      assert.equal(outer.innerMapId(u32(0)), null);

      const inner = create(hashSpec('inner_t'));
      inner.update(u32(INNER_KEY), u64(5n));
      outer.setInnerMap(u32(0), inner);
      const innerId = inner.id();
      assert.equal(outer.innerMapId(u32(0)), innerId);
      assert.equal(outer.lookup(u32(0))?.readUInt32LE(), innerId, 'lookup() reads the id too');
      assert.equal(outer.innerMapId(u32(1)), null);
      expectNative(() => outer.setInnerMap(u32(0), inner, BPF_NOEXIST), { code: 'EINVAL', op: 'bpf_map_update_elem' });

      // The outer map holds the inner map: it outlives its handle.
      inner.close();
      const reopened = native.BpfMap.openById(innerId);
      made.push(reopened);
      assert.equal(reopened.name, 'inner_t');
      assert.equal(reopened.lookup(u32(INNER_KEY))?.readBigUInt64LE(), 5n);

      // The kernel refuses inner maps of another shape than the template's.
      const narrow = create(hashSpec('narrow', { valueSize: 4 }));
      expectNative(() => outer.setInnerMap(u32(1), narrow), { code: 'EINVAL', op: 'bpf_map_update_elem' });
      const arr = create({ type: 'array', name: 'arr', keySize: 4, valueSize: 8, maxEntries: 8 });
      expectNative(() => outer.setInnerMap(u32(1), arr), { code: 'EINVAL', op: 'bpf_map_update_elem' });
      // max_entries: free for hash inner maps...
      const bigger = create(hashSpec('bigger', { maxEntries: 16 }));
      outer.setInnerMap(u32(1), bigger);
      assert.equal(outer.innerMapId(u32(1)), bigger.id());
      // ... fixed for array inner maps (the verifier inlines their bounds) unless BPF_F_INNER_MAP.
      const arrSpec = { type: 'array', keySize: 4, valueSize: 8, maxEntries: 4 };
      const arrOuter = create({ type: 'array_of_maps', name: 'arr_outer', keySize: 4, valueSize: 4, maxEntries: 1, innerMap: create(arrSpec) });
      expectNative(() => arrOuter.setInnerMap(u32(0), create({ ...arrSpec, maxEntries: 8 })), { code: 'EINVAL', op: 'bpf_map_update_elem' });
      arrOuter.setInnerMap(u32(0), create(arrSpec));
      const flexSpec = { ...arrSpec, flags: BPF_F_INNER_MAP };
      const flexOuter = create({ type: 'array_of_maps', name: 'flex', keySize: 4, valueSize: 4, maxEntries: 1, innerMap: create(flexSpec) });
      const flexInner = create({ ...flexSpec, maxEntries: 64 });
      flexOuter.setInnerMap(u32(0), flexInner);
      assert.equal(flexOuter.innerMapId(u32(0)), flexInner.id());
      expectNative(() => flexOuter.setInnerMap(u32(0), create({ ...arrSpec, maxEntries: 64 })), {
        code: 'EINVAL',
        op: 'bpf_map_update_elem',
      }); // the flags differ

      // Misuse is a TypeError.
      assert.throws(() => arr.setInnerMap(u32(0), reopened), (err: unknown) => err instanceof TypeError && /is a array map/.test(err.message));
      assert.throws(() => arr.innerMapId(u32(0)), TypeError);
      assert.throws(() => outer.setInnerMap(u32(1), inner), (err: unknown) => err instanceof TypeError && /is closed/.test(err.message));
      assert.throws(() => outer.setInnerMap(u32(1), {} as BpfMap), /expected a BpfMap as setInnerMap: inner/);
      assert.throws(
        () => outer.setInnerMap(u32(1), unloaded.map('inner_a')),
        (err: unknown) => err instanceof TypeError && /not created yet/.test(err.message),
      );
      assert.throws(() => outer.setInnerMap(Buffer.alloc(8), reopened), /key is 8 bytes/);

      assert.equal(outer.delete(u32(0)), true);
      assert.equal(outer.innerMapId(u32(0)), null);

      // hash_of_maps: any key.
      const hom = create({ type: 'hash_of_maps', name: 'hom', keySize: 4, valueSize: 4, maxEntries: 4, innerMap: reopened });
      hom.setInnerMap(u32(77), reopened);
      assert.deepEqual(hom.keys().map((k) => k.readUInt32LE()), [77]);
      assert.equal(hom.innerMapId(u32(77)), innerId);
      assert.equal(hom.innerMapId(u32(78)), null);
    } finally {
      for (const m of made) m.close();
      unloaded.close();
    }
  });

  test('map-in-map from BPF: after setInnerMap the next exec sees the new inner map', async () => {
    const obj = openTest();
    const link = obj.program('on_exec_inner').attach();
    const ring = new RingC(obj);
    const b = native.BpfMap.create(hashSpec('inner_b'));
    // What on_exec_inner reports for one exec of /bin/true.
    const execSees = async (): Promise<{ hasInner: number; hasValue: number; value: bigint }> => {
      const r = spawnSync('/bin/true');
      assert.equal(r.status, 0);
      await waitFor(`the record of pid ${r.pid}`, () => ring.of(INNER_TYPE, r.pid).length === 1);
      const rec = ring.of(INNER_TYPE, r.pid)[0] as Buffer;
      assert.equal(rec.length, RECORD_SIZE);
      return { hasInner: rec.readUInt32LE(36), hasValue: rec.readUInt32LE(40), value: rec.readBigUInt64LE(48) };
    };
    try {
      const outer = obj.map('outer');
      const innerA = obj.map('inner_a');
      assert.equal(outer.innerMapId(u32(0)), innerA.id(), "libbpf put inner_a in outer[0] (the C initializer)");
      assert.deepEqual(await execSees(), { hasInner: 1, hasValue: 0, value: 0n });

      innerA.update(u32(INNER_KEY), u64(111n));
      assert.deepEqual(await execSees(), { hasInner: 1, hasValue: 1, value: 111n });

      b.update(u32(INNER_KEY), u64(222n));
      outer.setInnerMap(u32(0), b);
      assert.equal(outer.innerMapId(u32(0)), b.id());
      assert.deepEqual(await execSees(), { hasInner: 1, hasValue: 1, value: 222n });

      innerA.update(u32(INNER_KEY), u64(333n));
      assert.deepEqual(await execSees(), { hasInner: 1, hasValue: 1, value: 222n }, 'inner_a is out of the path');
      b.update(u32(INNER_KEY), u64(444n));
      assert.deepEqual(await execSees(), { hasInner: 1, hasValue: 1, value: 444n }, 'a live view of b');

      assert.equal(outer.delete(u32(0)), true);
      assert.deepEqual(await execSees(), { hasInner: 0, hasValue: 0, value: 0n });

      outer.setInnerMap(u32(0), innerA);
      assert.deepEqual(await execSees(), { hasInner: 1, hasValue: 1, value: 333n });
      assert.equal(ring.recs.filter((r) => r.readUInt16LE(0) !== INNER_TYPE).length, 0, 'only on_exec_inner is attached');
    } finally {
      ring.close();
      link.close();
      b.close();
      obj.close();
    }
  });

  test('reuse(): an object loads against kernel maps that outlive it', async () => {
    const first = openTest();
    const second = openTest({ load: false });
    const shared = native.BpfMap.create(hashSpec('exec_count', { maxEntries: 1024 }));
    const countersPin = `${PIN_DIR}/counters`;
    let link: BpfLink | undefined;
    try {
      // A pinned map of an earlier object, and a map made by hand.
      first.map('counters').pin(countersPin);
      const pinned = native.BpfMap.openPinned(countersPin);
      second.map('counters').reuse(pinned);
      pinned.close(); // libbpf keeps its own fd
      second.map('exec_count').reuse(shared);
      assert.equal(second.map('exec_count').fd >= 0, true, 'a reused map has its fd before load');
      second.load();
      assert.equal(second.map('counters').id(), first.map('counters').id());
      assert.equal(second.map('exec_count').id(), shared.id());

      link = second.program('on_exec').attach();
      const r = spawnSync('/bin/true');
      assert.equal(r.status, 0);
      await waitFor('the exec count in the shared map', () => shared.lookup(u32(r.pid)) !== null);
      assert.equal(shared.lookup(u32(r.pid))?.readBigUInt64LE(), 1n);
      // struct test_counters { execs, records, dropped }: the first object's map counted it.
      assert.equal(first.map('counters').lookup(u32(0))?.readBigUInt64LE(0), 1n);
      link.close();
      link = undefined;
      second.close();
      assert.equal(shared.lookup(u32(r.pid))?.readBigUInt64LE(), 1n, 'the map outlives the object');
    } finally {
      link?.close();
      second.close();
      first.close();
    }

    const third = openTest({ load: false });
    const made: BpfMap[] = [];
    const create = (spec: MapSpec): BpfMap => {
      const m = native.BpfMap.create(spec);
      made.push(m);
      return m;
    };
    try {
      // Only a map of the declared shape.
      const wrongType = expectNative(() => third.map('counters').reuse(shared), { code: 'EINVAL', op: 'bpf_map__reuse_fd' });
      assert.match(wrongType.message, /the object declares array key 4 value 24 max_entries 4 flags 0x0; the given map 'exec_count' is hash key 4 value 8 max_entries 1024 flags 0x0/);
      expectNative(() => third.map('exec_count').reuse(create(hashSpec('exec_count', { maxEntries: 512 }))), {
        code: 'EINVAL',
        op: 'bpf_map__reuse_fd',
      });
      expectNative(() => third.map('exec_count').reuse(create(hashSpec('exec_count', { maxEntries: 1024, flags: BPF_F_NO_PREALLOC }))), {
        code: 'EINVAL',
        op: 'bpf_map__reuse_fd',
      });
      // Bad arguments and bad states.
      const closed = create(hashSpec('closed', { maxEntries: 1024 }));
      closed.close();
      assert.throws(() => third.map('exec_count').reuse(closed), (err: unknown) => err instanceof TypeError && /is closed/.test(err.message));
      assert.throws(() => shared.reuse(shared), /is a standalone handle/);
      assert.throws(() => third.map('exec_count').reuse({} as BpfMap), /expected a BpfMap as reuse: map/);

      // libbpf 1.1 renames the object's map after the kernel map it reuses.
      const renamed = create(hashSpec('renamed', { maxEntries: 1024 }));
      third.map('exec_count').reuse(renamed);
      expectNative(() => third.map('exec_count'), { code: 'ENOENT', op: 'bpf_object__find_map_by_name' });
      assert.equal(third.map('renamed').id(), renamed.id());

      third.load();
      assert.throws(() => third.map('counters').reuse(shared), /already loaded; maps are reused before load\(\)/);
    } finally {
      third.close();
      for (const m of made) m.close();
      shared.close();
    }
  });

  test('task_storage: user space reads and writes a task\'s value through its pidfd', async () => {
    const obj = openTest();
    const link = obj.program('on_exec_task_storage').attach();
    const ring = new RingC(obj);
    const store = obj.map('task_store');
    // Execs once now (sh), once more (sleep) when given a line.
    const child = spawn('/bin/sh', ['-c', 'read x; exec /bin/sleep 30'], { stdio: ['pipe', 'ignore', 'ignore'] });
    const exited = once(child, 'exit');
    let pidfd = -1;
    try {
      const pid = child.pid;
      assert.ok(pid);
      assert.deepEqual([store.type, store.keySize, store.valueSize], ['task_storage', 4, 16]);
      const seen = (): Array<{ a: bigint; b: bigint }> =>
        ring.of(TASK_STORAGE_TYPE, pid).map((r) => ({ a: r.readBigUInt64LE(40), b: r.readBigUInt64LE(48) }));
      await waitFor("the record of sh's exec", () => seen().length === 1);
      assert.deepEqual(seen()[0], { a: 0n, b: 0n }, 'created by BPF_LOCAL_STORAGE_GET_F_CREATE');

      pidfd = native.pidfdOpen(pid);
      assert.ok(pidfd > 2);
      const key = u32(pidfd);
      assert.deepEqual(store.lookup(key), taskValue(0n, 1n), "the program's bump, read by pidfd");
      expectNative(() => store.update(key, taskValue(0n, 0n), BPF_NOEXIST), { code: 'EEXIST', op: 'bpf_map_update_elem' });
      assert.equal(store.delete(key), true);
      assert.equal(store.lookup(key), null);
      assert.equal(store.delete(key), false);
      store.update(key, taskValue(0x1122334455667788n, 41n), BPF_NOEXIST);
      assert.deepEqual(store.lookup(key), taskValue(0x1122334455667788n, 41n));

      child.stdin.write('\n');
      await waitFor("the record of sleep's exec", () => seen().length === 2);
      assert.deepEqual(seen()[1], { a: 0x1122334455667788n, b: 41n }, 'the program saw what user space wrote');
      assert.deepEqual(store.lookup(key), taskValue(0x1122334455667788n, 42n));

      // The key must be a pidfd.
      const notPidfd = fs.openSync('/dev/null', 'r');
      try {
        expectNative(() => store.lookup(u32(notPidfd)), { code: 'EBADF', op: 'bpf_map_lookup_elem' });
      } finally {
        fs.closeSync(notPidfd);
      }

      // Once the task is reaped, its pidfd names nothing.
      child.kill();
      await exited;
      assert.equal(store.lookup(key), null);
      expectNative(() => store.update(key, taskValue(1n, 1n)), { code: 'ENOENT', op: 'bpf_map_update_elem' });
      native.closeFd(pidfd);
      const closedFd = pidfd;
      pidfd = -1;
      expectNative(() => native.closeFd(closedFd), { code: 'EBADF', op: 'close' });
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill();
        await exited;
      }
      if (pidfd >= 0) native.closeFd(pidfd);
      ring.close();
      link.close();
      obj.close();
    }
  });

  test('pidfdOpen: ESRCH for a process that is gone, TypeError for a non-pid', () => {
    const r = spawnSync('/bin/true');
    assert.equal(r.status, 0);
    const err = expectNative(() => native.pidfdOpen(r.pid), { code: 'ESRCH', op: 'pidfd_open' });
    assert.equal(err.message, `pidfd_open pid ${r.pid}: No such process (ESRCH)`);
    const self = native.pidfdOpen(process.pid);
    assert.match(fs.readlinkSync(`/proc/self/fd/${self}`), /pidfd/);
    native.closeFd(self);
    for (const bad of [0, -1, 1.5, 2 ** 31, '1']) assert.throws(() => native.pidfdOpen(bad as number), TypeError, String(bad));
    assert.throws(() => native.closeFd(-1), TypeError);
  });

  test('BpfLink.info(): link id, program id and link type', () => {
    const obj = openTest();
    const prog = obj.program('on_exec');
    const link = prog.attach();
    const linkPin = `${PIN_DIR}/link`;
    try {
      const info = link.info();
      // tp_btf attaches through BPF_RAW_TRACEPOINT_OPEN: a raw_tracepoint link.
      assert.deepEqual(info, { id: link.id(), progId: prog.id(), type: 'raw_tracepoint' });
      link.pin(linkPin);
      const adopted = native.BpfLink.open(linkPin);
      assert.deepEqual(adopted.info(), info);
      adopted.unpin();
      adopted.close();
      assert.throws(() => adopted.info(), (err: unknown) => isClosedError(err) && err.message === 'BpfLink is closed');
    } finally {
      link.close();
      obj.close();
    }
  });
});

describe('peer credentials of Unix sockets', () => {
  let dir = '';
  let server: net.Server | undefined;

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'krsi-peercred-'));
  });

  after(() => {
    server?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('socketPeerCredentials: this process, a child, a child of another uid', async () => {
    const sockPath = path.join(dir, 's.sock');
    const srv = net.createServer();
    server = srv;
    srv.listen(sockPath);
    await once(srv, 'listening');
    fs.chmodSync(dir, 0o755);
    fs.chmodSync(sockPath, 0o777);
    const nextConnection = async (): Promise<net.Socket> => (await once(srv, 'connection'))[0] as net.Socket;

    // From this process: both ends see this process.
    const accepted = nextConnection();
    const client = net.connect(sockPath);
    const serverSide = await accepted;
    const self = { pid: process.pid, uid: process.getuid?.(), gid: process.getgid?.() };
    assert.deepEqual(socketPeerCredentials(serverSide), self);
    assert.deepEqual(socketPeerCredentials(client), self);

    // From a child: its pid. It stays connected until told to go.
    const code = "const s = require('node:net').connect(process.argv[1]); s.on('data', () => s.end());";
    const run = async (opts: { uid?: number; gid?: number }) => {
      const childAccepted = nextConnection();
      const child = spawn(process.execPath, ['-e', code, sockPath], { stdio: 'ignore', ...opts });
      const exited = once(child, 'exit');
      const conn = await childAccepted;
      const creds = socketPeerCredentials(conn);
      conn.end('bye');
      const [status] = (await exited) as [number | null];
      assert.equal(status, 0);
      return { creds, pid: child.pid };
    };
    const plain = await run({});
    assert.deepEqual(plain.creds, { pid: plain.pid, uid: self.uid, gid: self.gid });
    assert.notEqual(plain.pid, process.pid);
    if (process.getuid?.() === 0) {
      const nobody = await run({ uid: 65534, gid: 65534 });
      assert.deepEqual(nobody.creds, { pid: nobody.pid, uid: 65534, gid: 65534 });
    }

    // The credentials are the peer's as it was at connect(), recorded by the kernel: they stay readable.
    assert.deepEqual(socketPeerCredentials(serverSide), self);
    client.destroy();
    serverSide.destroy();
    assert.throws(() => socketPeerCredentials(serverSide), /socketPeerCredentials: the socket has no file descriptor/);
  });

  test('peerCredentials refuses what is not a connected Unix socket', async () => {
    const devNull = fs.openSync('/dev/null', 'r');
    try {
      expectNative(() => native.peerCredentials(devNull), { code: 'ENOTSOCK', op: 'getsockopt' });
    } finally {
      fs.closeSync(devNull);
    }
    assert.throws(() => native.peerCredentials(-1), TypeError);

    // A TCP socket has no credentials to give.
    const tcp = net.createServer();
    tcp.listen(0, '127.0.0.1');
    await once(tcp, 'listening');
    const { port } = tcp.address() as net.AddressInfo;
    const accepted = once(tcp, 'connection');
    const c = net.connect(port, '127.0.0.1');
    const [s] = (await accepted) as [net.Socket];
    try {
      assert.throws(() => socketPeerCredentials(s), (err: unknown) => err instanceof TypeError && /is not a Unix socket/.test(err.message));
    } finally {
      c.destroy();
      s.destroy();
      tcp.close();
    }

    // A listening Unix socket.
    const lone = net.createServer();
    const lonePath = path.join(dir, 'lone.sock');
    lone.listen(lonePath);
    await once(lone, 'listening');
    const handle = (lone as unknown as { _handle: { fd: number } })._handle;
    try {
      // A listening socket reports its own creator (the kernel sets them at listen()).
      assert.deepEqual(native.peerCredentials(handle.fd), { pid: process.pid, uid: process.getuid?.(), gid: process.getgid?.() });
    } finally {
      lone.close();
    }
  });
});

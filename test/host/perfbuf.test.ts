// The binding's PerfBuffer reader against the running kernel: records of a
// perf event array arrive intact through the event loop and consume(), and
// when a per-CPU buffer overflows the kernel's lost count comes out in
// stats.lost. Needs root. The test object (bpf/testdata/perfbuf_test.bpf.c)
// reacts only to execs of this process's children.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { KRSI_ABI_VERSION as KRSI_ABI } from '../../src/abi/generated.js';
import { native, type BpfObject } from '../../src/bpf/native.js';
import { expectClosed, parseBatch, spawnTrue, u32, waitFor, type Rec } from './helpers.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const OBJ_PATH = path.join(ROOT, 'build/bpf/testdata/perfbuf_test.bpf.o');
const IS_ROOT = process.getuid?.() === 0;

// struct test_perf_record: a 32-byte krsi_event_header, pid, seq, burst, cpu, fill[64].
const PERF_TYPE = 0x7e5b;
const RECORD_SIZE = 112;
const FILL_OFF = 48;
const FILL_LEN = 64;

function openTest(burst: number): BpfObject {
  const obj = native.BpfObject.openFile(OBJ_PATH);
  obj.setGlobal('target_ppid', u32(process.pid));
  obj.setGlobal('burst', u32(burst));
  obj.load();
  return obj;
}

/** struct test_perf_counters: what the program wrote and what the kernel refused. */
function counters(obj: BpfObject): { sent: number; failed: number } {
  const v = obj.map('counters').lookup(u32(0));
  assert.ok(v);
  return { sent: Number(v.readBigUInt64LE(0)), failed: Number(v.readBigUInt64LE(8)) };
}

function checkRecord(r: Rec, pids: number[]): void {
  const p = r.payload;
  assert.equal(p.length, RECORD_SIZE, 'hdr.size bytes, not perf\'s padded sample');
  assert.equal(p.readUInt16LE(0), PERF_TYPE);
  assert.equal(p.readUInt16LE(2), KRSI_ABI);
  assert.equal(p.readUInt32LE(4), RECORD_SIZE);
  assert.ok(pids.includes(p.readUInt32LE(32)), 'one of our children');
  const seq = p.readUInt32LE(36);
  assert.equal(r.ring, p.readUInt32LE(44), 'tagged with the CPU that wrote it');
  for (let j = 0; j < FILL_LEN; j++) assert.equal(p[FILL_OFF + j], (seq + j) & 0xff);
}

describe('PerfBuffer on the host kernel', { skip: IS_ROOT ? false : 'needs root (BPF)' }, () => {
  test('records arrive intact and in order through the event loop', async () => {
    const obj = openTest(50);
    const link = obj.program('on_exec_perf').attach();
    const recs: Rec[] = [];
    const pb = new native.PerfBuffer(obj.map('events'), { pageCount: 16 }, (b, c) => recs.push(...parseBatch(b, c)));
    try {
      const pids = spawnTrue(3);
      await waitFor('150 records', () => recs.length >= 150);
      assert.equal(recs.length, 150);
      for (const r of recs) checkRecord(r, pids);
      for (const pid of pids) {
        const seqs = recs.filter((r) => r.payload.readUInt32LE(32) === pid).map((r) => r.payload.readUInt32LE(36));
        assert.deepEqual(seqs, Array.from({ length: 50 }, (_, i) => i));
      }
      assert.deepEqual(counters(obj), { sent: 150, failed: 0 });
      const st = pb.stats;
      assert.equal(st.records, 150);
      assert.equal(st.lost, 0);
      assert.equal(st.pageCount, 16);
      assert.ok(st.buffers >= 1 && st.buffers <= availableParallelism() * 2, `${st.buffers} buffers`);
      assert.equal(st.bytes, st.buffers * 17 * 4096);
    } finally {
      pb.close();
      link.close();
      obj.close();
    }
  });

  test('an overrun buffer reports the lost records; what was written arrives', async () => {
    // One 4 KiB page per CPU holds ~33 records of 124 bytes; each exec writes 500.
    const obj = openTest(500);
    const link = obj.program('on_exec_perf').attach();
    let received = 0;
    const pb = new native.PerfBuffer(obj.map('events'), { pageCount: 1 }, (b, c) => {
      for (const r of parseBatch(b, c)) assert.equal(r.payload.length, RECORD_SIZE);
      received += c;
    });
    try {
      pb.pause();
      // The kernel reports a CPU's losses with its next record that fits, so
      // several execs (on whichever CPUs) with a drain in between.
      for (let i = 0; i < 8 && pb.stats.lost === 0; i++) {
        spawnTrue(1);
        pb.consume();
      }
      const c = counters(obj);
      const st = pb.stats;
      assert.ok(c.failed > 0, 'the program saw full buffers');
      assert.equal(received, c.sent, 'every record written arrives');
      assert.ok(st.lost > 0, 'the lost callback counted');
      assert.ok(st.lost <= c.failed, `lost ${st.lost} <= failed ${c.failed}`);
      assert.equal(st.lostByCpu.reduce((a, b) => a + b, 0), st.lost);
      // Resumed, the reader drains on its own what is already there.
      spawnTrue(1);
      pb.resume();
      const sent = counters(obj).sent;
      await waitFor('the records written while paused', () => received >= sent);
      assert.equal(received, sent);
    } finally {
      pb.close();
      link.close();
      obj.close();
    }
  });

  test('a PerfBuffer opened on the map right after another closed still gets the records', async () => {
    const obj = openTest(10);
    const link = obj.program('on_exec_perf').attach();
    try {
      // The first one's buffers are freed at close(), not when its handles
      // close on the loop: otherwise that would clear the second one's slots.
      new native.PerfBuffer(obj.map('events'), {}, () => {}).close();
      let received = 0;
      const pb = new native.PerfBuffer(obj.map('events'), {}, (_b, c) => (received += c));
      spawnTrue(2);
      await waitFor('20 records', () => received >= 20);
      pb.close();
      assert.deepEqual(counters(obj), { sent: 20, failed: 0 });
    } finally {
      link.close();
      obj.close();
    }
  });

  test('argument checks; close() is idempotent and keeps the counters', () => {
    const obj = openTest(1);
    try {
      assert.throws(() => new native.PerfBuffer(obj.map('counters'), {}, () => {}), /is a array map, not a perf_event_array/);
      assert.throws(() => new native.PerfBuffer(obj.map('events'), { pageCount: 3 }, () => {}), /pageCount must be a power of two/);
      assert.throws(() => new native.PerfBuffer(obj.map('events'), {}, null as never), /onBatch must be a function/);
      const pb = new native.PerfBuffer(obj.map('events'), { pageCount: 2 }, () => {});
      pb.unref();
      pb.close();
      pb.close();
      expectClosed(() => pb.consume(), 'PerfBuffer');
      expectClosed(() => pb.resume(), 'PerfBuffer');
      assert.equal(pb.stats.pageCount, 2);
      assert.equal(pb.stats.records, 0);
    } finally {
      obj.close();
    }
  });
});

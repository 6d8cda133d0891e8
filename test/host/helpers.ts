// Helpers of the host kernel tests (binding.test.ts, perfbuf.test.ts):
// the binding's batch framing, spawning children the test objects react to,
// waiting on the event loop.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

import { isClosedError } from '../../src/bpf/native.js';

export interface Rec {
  /** The ring's index (RingBuffer) or the CPU (PerfBuffer). */
  ring: number;
  payload: Buffer;
}

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

/** Splits a batch, checking the framing: lengths, ring indexes, zero padding, nothing left over. */
export function parseBatch(batch: Buffer, count: number): Rec[] {
  const out: Rec[] = [];
  let off = 0;
  for (let i = 0; i < count; i++) {
    assert.ok(off + 8 <= batch.length, 'record header inside the batch');
    const len = batch.readUInt32LE(off);
    const ring = batch.readUInt32LE(off + 4);
    const padded = (len + 7) & ~7;
    assert.ok(off + 8 + padded <= batch.length, 'record inside the batch');
    out.push({ ring, payload: Buffer.from(batch.subarray(off + 8, off + 8 + len)) });
    assert.ok(
      batch.subarray(off + 8 + len, off + 8 + padded).every((x) => x === 0),
      'padding is zeros',
    );
    off += 8 + padded;
  }
  assert.equal(off, batch.length, 'the batch holds exactly count records');
  return out;
}

/** Runs /bin/true n times, synchronously (the event loop waits); returns the pids. */
export function spawnTrue(n: number): number[] {
  const pids: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = spawnSync('/bin/true');
    assert.equal(r.status, 0);
    pids.push(r.pid);
  }
  return pids;
}

export async function waitFor(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

export function expectClosed(fn: () => unknown, noun: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isClosedError(err), `expected a closed error, got ${String(err)}`);
    assert.equal(err.message, `${noun} is closed`);
    return true;
  });
}

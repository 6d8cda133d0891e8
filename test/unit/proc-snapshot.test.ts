import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeKrsiProcEntry, KRSI_PROC_HAS_EXE } from '../../src/abi/generated.js';
import { toKernelDev } from '../../src/events/devices.js';
import { decodeProcSnapshot } from '../../src/agent/proc-snapshot.js';

const entry = (tgid: number, ppid: number, path: string | null): Buffer => {
  const bytes = Buffer.from(path ?? '', 'utf8');
  const head = encodeKrsiProcEntry({
    tgid,
    ppid,
    startNs: 123n,
    ino: 77n,
    dev: toKernelDev({ major: 8, minor: 1 }),
    pathLen: bytes.length,
    flags: path === null ? 0 : KRSI_PROC_HAS_EXE,
  });
  return Buffer.concat([Buffer.from(head.buffer, head.byteOffset, head.byteLength), bytes]);
};

test('the process snapshot: entries with their paths, kernel threads without an executable', () => {
  const odd = '/tmp/a b\nc\u00e9';
  const procs = decodeProcSnapshot(Buffer.concat([entry(1, 0, '/sbin/init'), entry(2, 0, null), entry(300, 1, odd)]));
  assert.deepEqual(procs, [
    { tgid: 1, ppid: 0, startNs: 123n, exe: { path: '/sbin/init', dev: '8:1', ino: 77n } },
    { tgid: 2, ppid: 0, startNs: 123n, exe: null },
    { tgid: 300, ppid: 1, startNs: 123n, exe: { path: odd, dev: '8:1', ino: 77n } },
  ]);
});

test('a truncated snapshot is an error, not a silently shorter list', () => {
  const whole = entry(300, 1, '/usr/bin/bash');
  assert.throws(() => decodeProcSnapshot(whole.subarray(0, whole.length - 3)), /entry of 300 truncated/);
});

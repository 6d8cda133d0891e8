// On the host, doctor must tell the truth about this kernel: exit 0 exactly
// when an LSM program really loads, and a precise reason when it does not.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import type { DoctorReport } from '../../src/doctor/doctor.js';
import { krsiBin } from '../lib/agent-process.js';

test('doctor outside the VM reports what this kernel accepts', () => {
  const r = spawnSync(krsiBin, ['doctor', '--json'], { encoding: 'utf8' });
  const report = JSON.parse(r.stdout) as DoctorReport;
  assert.equal(r.status === 0, report.enforcement, 'exit 0 if and only if enforcement works');
  assert.equal(report.enforcement, report.probes.lsm.ok && report.probes.ringbuf.ok && report.kernel.btf);
  if (report.probes.lsm.ok) {
    assert.match(report.verdict, /^Enforcement works/);
    return;
  }
  assert.match(report.verdict, /^Enforcement is unavailable/);
  // The kernel of this project's machines: bpf is an active LSM, yet LSM
  // loads fail with EPERM before verification, while tracepoints work.
  if (report.probes.lsm.code === 'EPERM' && report.kernel.lsms?.includes('bpf')) {
    assert.equal(report.probes.lsm.step, 'load');
    assert.match(report.verdict, /EPERM and an empty verifier log, although 'bpf' is in the active LSM list/);
    assert.match(report.verdict, /BPF trampolines/);
    if (report.probes.tracepoint.ok) assert.match(report.verdict, /Tracepoint programs load and attach/);
  }
  const text = spawnSync(krsiBin, ['doctor'], { encoding: 'utf8' });
  assert.equal(text.status, 1);
  assert.match(text.stdout, /FAIL\s+LSM program\s+load fails: EPERM/);
});

test('krsi run on a kernel without BPF LSM fails with one clear line', (t) => {
  const doctor = JSON.parse(spawnSync(krsiBin, ['doctor', '--json'], { encoding: 'utf8' }).stdout) as DoctorReport;
  if (doctor.enforcement) {
    t.skip('this host can run LSM programs; the VM suites cover `krsi run`');
    return;
  }
  const r = spawnSync(krsiBin, ['run'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 3, r.stderr);
  assert.match(r.stderr, /^krsi: the kernel refused to load krsi's BPF LSM programs \(EPERM\).*krsi doctor/m);
  assert.equal(r.stdout, '', 'no event was printed');
});

// In a kernel with BPF LSM, doctor must find that enforcement works.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { release } from 'node:os';
import { test } from 'node:test';
import type { DoctorReport } from '../../src/doctor/doctor.js';
import { krsiBin } from '../lib/agent-process.js';
import { inVm } from '../lib/kernel.js';

test('doctor in the VM: enforcement works, exit 0', { skip: inVm ? false : 'runs inside `krsi vm`' }, () => {
  const json = spawnSync(krsiBin, ['doctor', '--json'], { encoding: 'utf8' });
  assert.equal(json.status, 0, json.stdout + json.stderr);
  const report = JSON.parse(json.stdout) as DoctorReport;
  assert.equal(report.kernel.release, release());
  assert.ok(report.kernel.lsms?.includes('bpf'));
  assert.equal(report.kernel.btf, true);
  assert.equal(report.kernel.configBpfLsm, null, 'the VM publishes no kernel config (no /boot, no config.gz)');
  assert.equal(report.probes.lsm.ok, true);
  assert.equal(report.probes.lsmSleepable.ok, true);
  assert.equal(report.probes.tracepoint.ok, true);
  assert.equal(report.probes.ringbuf.ok, true);
  assert.equal(report.enforcement, true);
  assert.match(report.verdict, /^Enforcement works/);

  const text = spawnSync(krsiBin, ['doctor'], { encoding: 'utf8' });
  assert.equal(text.status, 0);
  assert.match(text.stdout, /ok\s+LSM program\s+loads and attaches/);
  assert.doesNotMatch(text.stdout, /FAIL/);
});

// In a kernel with BPF LSM, doctor must find that enforcement works.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { release } from 'node:os';
import { test } from 'node:test';
import type { DoctorReport } from '../../src/doctor/doctor.js';
import { krsiBin } from '../lib/agent-process.js';
import { atLeast, FEATURE_MINIMUMS, inVm } from '../lib/kernel.js';

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
  assert.equal(report.probes.loop.ok, atLeast(FEATURE_MINIMUMS.loop), 'bpf_loop exactly from its minimum on');
  assert.equal(report.probes.currentTaskBtf.ok, atLeast(FEATURE_MINIMUMS.currentTaskBtf));
  assert.equal(report.probes.iterDPath.ok, atLeast(FEATURE_MINIMUMS.iterDPath));
  assert.equal(report.enforcement, true);
  const full = atLeast(FEATURE_MINIMUMS.loop);
  assert.match(report.verdict, full ? /^Enforcement works/ : /^Enforcement is partial: .* the kernel lacks bpf_loop, bpf_get_current_task_btf, task storage maps/);

  const text = spawnSync(krsiBin, ['doctor'], { encoding: 'utf8' });
  assert.equal(text.status, 0);
  assert.match(text.stdout, /ok\s+LSM program\s+loads and attaches/);
  // FAIL only for what this kernel predates.
  const failed = [...text.stdout.matchAll(/^FAIL\s+(.+?)\s{2,}/gm)].map((m) => m[1]);
  assert.deepEqual(failed, full ? [] : ['task storage map', 'bpf_loop', 'bpf_get_current_task_btf', 'bpf_d_path in a task iterator']);
});

// The kernel matrix: each feature probe finds its capability exactly on the
// kernels that have it (its declared minimum), and the agent starts on every
// kernel, with the rules whose programs this kernel cannot load reported
// degraded, naming what the kernel lacks.
import assert from 'node:assert/strict';
import { release } from 'node:os';
import { describe, test } from 'node:test';
import { FEATURES, PROGRAM_NEEDS, probeKernelFeatures, type Feature } from '../../src/agent/kernel-features.js';
import { policyFile, startAgent } from '../lib/agent-process.js';
import { atLeast, FEATURE_MINIMUMS, vmSuite } from '../lib/kernel.js';

describe('the kernel matrix', { skip: vmSuite('5.10', 'BPF LSM with ring buffers') }, () => {
  test('each feature probe agrees with the kernel that first has the feature', () => {
    const found = probeKernelFeatures();
    for (const f of Object.keys(FEATURES) as Feature[]) {
      assert.equal(found[f], atLeast(FEATURE_MINIMUMS[f]), `${FEATURES[f]} (Linux ${FEATURE_MINIMUMS[f]}+) on ${release()}`);
    }
  });

  test('the agent starts; every program it can load is attached, each rule enforced or degraded with why', async () => {
    const path = policyFile(`apiVersion: krsi.dev/v1
kind: Policy
metadata: { name: matrix }
spec:
  rules:
    - name: deny-nothing
      hook: exec
      match: { binary: { path: ["/nonexistent/krsi-matrix"] } }
      action: deny
    - name: no-mounts-from-nowhere
      hook: mount
      match: { fstype: ["krsi-matrix-fs"] }
      action: deny
`);
    const agent = await startAgent({ policies: [path], args: ['--no-protect'] });
    try {
      const r = agent.krsi('status', '--json');
      assert.equal(r.status, 0, r.stderr);
      const s = JSON.parse(r.stdout) as {
        hooks: Array<{ program: string; attached: boolean }>;
        rules: Array<{ rule: string; state: string; reason?: string }>;
      };
      const missing = (program: string): Feature[] => (PROGRAM_NEEDS[program] ?? []).filter((f) => !atLeast(FEATURE_MINIMUMS[f]));
      for (const h of s.hooks) assert.equal(h.attached, missing(h.program).length === 0, `${h.program}: attached where the kernel has what it needs`);
      const policyComplete = missing('exec_check').length === 0;
      for (const rule of s.rules) {
        if (policyComplete) {
          assert.equal(rule.state, 'enforced', `${rule.rule}: ${rule.reason ?? ''}`);
        } else {
          assert.equal(rule.state, 'degraded', rule.rule);
          for (const f of missing('exec_check')) assert.ok(rule.reason?.includes(FEATURES[f]), `${rule.rule} says the kernel lacks ${FEATURES[f]}: ${rule.reason}`);
        }
      }
      const text = agent.krsi('status');
      assert.equal(text.status, 0, text.stderr);
      if (!policyComplete) assert.match(text.stdout, /matrix\/deny-nothing \(exec, deny\): degraded - not attached on this kernel: exec_check \(the kernel lacks /);
    } finally {
      assert.equal(await agent.stop(), 0);
    }
  });
});

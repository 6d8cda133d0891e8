// The shared agent (test/lib/shared-agent.ts) stops cleanly once the suites
// that used it are done: the run's entry (Makefile, build/test-vm) puts this
// file after them and before the suites that start agents of their own.
import { describe, test } from 'node:test';
import { requireKernel, POLICY_PROGRAMS, vmSuite } from '../lib/kernel.js';
import { sharedAgentRunning, stopSharedAgent } from '../lib/shared-agent.js';

describe('the shared agent', { skip: vmSuite(POLICY_PROGRAMS.min, POLICY_PROGRAMS.feature) }, () => {
  test('stops with exit 0, having lost nothing and received every record', async (t) => {
    if (!requireKernel(t, '5.7', 'BPF LSM')) return;
    if (!sharedAgentRunning()) {
      t.skip('run on its own: no suite started the shared agent');
      return;
    }
    const stopped = await stopSharedAgent();
    t.diagnostic(`received ${stopped.received}; accounting ${JSON.stringify(stopped.accounting)}`);
  });
});

// End to end, in a kernel with BPF LSM: policy generations swap atomically.
// Two policies give opposite verdicts on two binaries; while shell loops exec
// both as fast as they can, the test swaps between the policies again and
// again. Every decision the kernel reports names its generation, and must be
// exactly what that generation's policy decides (the TypeScript evaluator
// says what that is): a decision mixing two generations' tables would not be.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ControlClient } from '../../src/control/client.js';
import { evaluatePolicies } from '../../src/policy/evaluate.js';
import { PolicySchema, type Policy } from '../../src/policy/schema.js';
import type { ExecEvent, KrsiEvent } from '../../src/events/schema.js';
import type { AgentView } from '../lib/agent-process.js';
import { requireKernel, POLICY_PROGRAMS, vmSuite } from '../lib/kernel.js';
import { settled } from '../lib/settle.js';
import { joinSharedAgent, type SuiteAgent } from '../lib/shared-agent.js';

const isExec = (e: KrsiEvent): e is ExecEvent => e.kind === 'exec';

describe('atomic policy swaps', { skip: vmSuite(POLICY_PROGRAMS.min, POLICY_PROGRAMS.feature) }, () => {
  const dir = mkdtempSync('/tmp/krsi-swap-');
  const a = join(dir, 'a');
  const b = join(dir, 'b');
  let suite: SuiteAgent;
  let agent: AgentView;
  let control: ControlClient;

  const policy = (name: string, denied: string, audited: string): Policy =>
    PolicySchema.parse({
      apiVersion: 'krsi.dev/v1',
      kind: 'Policy',
      metadata: { name },
      spec: {
        rules: [
          { name: 'audit', hook: 'exec', match: { binary: { path: [audited] } }, action: 'audit' },
          { name: 'deny', hook: 'exec', match: { binary: { path: [denied] }, uid: [0] }, action: 'deny' },
        ],
      },
    });
  const policyA = policy('swap-a', a, b);
  const policyB = policy('swap-b', b, a);

  before(async () => {
    for (const p of [a, b]) {
      copyFileSync('/usr/bin/true', p);
      chmodSync(p, 0o755);
    }
    suite = await joinSharedAgent();
    ({ agent, control } = suite);
  });

  after(async () => {
    await suite?.leave();
    rmSync(dir, { recursive: true, force: true });
  });

  test('0 torn decisions while generations swap under concurrent exec load', async (t) => {
    if (!requireKernel(t, '5.7', 'BPF LSM')) return;
    const generationPolicy = new Map<number, Policy>();
    const first = await control.applyPolicies([{ policy: policyA, source: 'test' }]);
    generationPolicy.set(first.generation, policyA);

    // Three loops, each exec'ing both binaries; every result goes to a file.
    const loops = [0, 1, 2].map((i) => {
      const out = join(dir, `results-${i}`);
      const child = spawn('/bin/sh', ['-c', `i=0; while [ -e ${dir}/go ] || [ $i -eq 0 ]; do i=1; ${a}; echo "a $?"; ${b}; echo "b $?"; done > ${out}`], {
        stdio: 'ignore',
      });
      return { child, out, done: new Promise((r) => child.once('exit', r)) };
    });
    copyFileSync('/usr/bin/true', join(dir, 'go'));

    let swaps = 0;
    for (let i = 0; i < 30; i++) {
      const next = i % 2 === 0 ? policyB : policyA;
      const r = await control.applyPolicies([{ policy: next, source: 'test' }]);
      generationPolicy.set(r.generation, next);
      swaps++;
      await new Promise((res) => setTimeout(res, 100));
    }
    rmSync(join(dir, 'go'));
    await Promise.all(loops.map((l) => l.done));
    await settled(control);

    const decisions = agent.events.filter((e): e is ExecEvent => isExec(e) && (e.exec.path === a || e.exec.path === b));
    let torn = 0;
    for (const e of decisions) {
      const p = generationPolicy.get(e.policy.generation);
      assert.ok(p, `an event of generation ${e.policy.generation}, which the test never applied`);
      const expected = evaluatePolicies([p], { hook: 'exec', binary: { path: e.exec.path }, uid: e.process.uid });
      const consistent =
        (e.decision === 'denied') === (expected.verdict === 'deny') &&
        (e.policy.rule?.rule ?? null) === (expected.decidedBy?.rule ?? null) &&
        (e.policy.audit?.rule ?? null) === (expected.audit?.rule ?? null) &&
        e.policy.rule?.policy === (expected.decidedBy ? p.metadata.name : undefined);
      if (!consistent) torn++;
    }
    const results = loops.flatMap((l) => readFileSync(l.out, 'utf8').trim().split('\n'));
    const failedExecs = results.filter((line) => !line.endsWith(' 0')).length;
    const deniedEvents = decisions.filter((e) => e.decision === 'denied').length;
    const generationsSeen = new Set(decisions.map((e) => e.policy.generation)).size;
    t.diagnostic(`swaps ${swaps}, execs ${results.length}, decisions checked ${decisions.length}, generations seen ${generationsSeen}, torn ${torn}`);

    assert.ok(decisions.length >= results.length, `a decision for every exec (${decisions.length} for ${results.length})`);
    assert.ok(generationsSeen >= 4, `decisions from many generations (${generationsSeen})`);
    assert.equal(torn, 0, 'every decision is its generation’s');
    assert.equal(failedExecs, deniedEvents, 'each failed exec was a reported denial, and the reverse');
    const check = (await suite.countersSince())['bprm_check_security']!;
    assert.equal(check.dropped, 0, 'no decision record was lost');
  });

  test('a 10k-entry policy compiles and swaps; the time is reported', async (t) => {
    if (!requireKernel(t, '5.7', 'BPF LSM')) return;
    const paths = Array.from({ length: 10_000 }, (_, i) => `/tmp/krsi-none/p${i}`);
    const big = PolicySchema.parse({
      apiVersion: 'krsi.dev/v1',
      kind: 'Policy',
      metadata: { name: 'big' },
      spec: { rules: [{ name: 'many', hook: 'exec', match: { binary: { path: [...paths, a] } }, action: 'deny' }] },
    });
    const r = await control.applyPolicies([{ policy: big, source: 'test' }]);
    t.diagnostic(`10k-entry policy: compile ${r.compileMs.toFixed(1)} ms, fill and swap ${r.swapMs.toFixed(1)} ms, ${r.entries} entries`);
    assert.ok(r.entries >= 10_000);
    const denied = spawnSync(a);
    assert.equal((denied.error as NodeJS.ErrnoException | undefined)?.code, 'EPERM', 'the 10,001st path is denied');
  });
});

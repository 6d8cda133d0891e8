// End to end, in a kernel with BPF LSM: reactions turn a signal into a
// mitigation. YAML reactions in a running `krsi run` (the content of a
// binary denied everywhere, a cgroup frozen, a process tree killed), and a
// TypeScript handler through the library API, with latencies reported.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Agent } from '../../src/agent/agent.js';
import type { ExecEvent, KrsiEvent, ReactionEvent } from '../../src/events/schema.js';
import { parsePolicyText } from '../../src/policy/load.js';
import { PolicySchema } from '../../src/policy/schema.js';
import type { AgentView } from '../lib/agent-process.js';
import { requireKernel, POLICY_PROGRAMS, vmSuite } from '../lib/kernel.js';
import { joinSharedAgent, type SuiteAgent } from '../lib/shared-agent.js';

const isReaction = (e: KrsiEvent): e is ReactionEvent => e.kind === 'reaction';
const errno = (r: ReturnType<typeof spawnSync>): string | undefined => (r.error as NodeJS.ErrnoException | undefined)?.code;

describe('reactions', { skip: vmSuite(POLICY_PROGRAMS.min, POLICY_PROGRAMS.feature) }, () => {
  const dir = mkdtempSync('/tmp/krsi-react-');
  chmodSync(dir, 0o755);
  const tool = (name: string, extra = ''): string => {
    const p = join(dir, name);
    copyFileSync('/usr/bin/true', p);
    if (extra) writeFileSync(p, extra, { flag: 'a' });
    chmodSync(p, 0o755);
    return p;
  };
  let suite: SuiteAgent;
  let agent: AgentView;

  before(async () => {
    suite = await joinSharedAgent();
    agent = suite.agent;
  });

  after(async () => {
    await suite?.leave();
    rmSync(dir, { recursive: true, force: true });
  });

  test('YAML reactions: deny the content everywhere, freeze the cgroup, kill the tree', async (t) => {
    if (!requireKernel(t, '5.18', 'bpf_ima_file_hash')) return;
    const dropper = tool('dropper', 'krsi-dropper\n');
    const copyOfDropper = tool('copy-of-dropper', 'krsi-dropper\n');
    const canary = tool('canary');
    // A copy of sleep: a shell starts a child, then becomes the trigger in
    // place, so the offender has a child when the reaction comes.
    const trigger = join(dir, 'trigger-sleep');
    copyFileSync('/usr/bin/sleep', trigger);
    chmodSync(trigger, 0o755);
    const cg = `/sys/fs/cgroup/krsi-react-${process.pid}`;
    mkdirSync(cg);
    t.after(() => rmdirSync(cg));
    const parsed = parsePolicyText(`apiVersion: krsi.dev/v1
kind: Policy
metadata: { name: responder }
spec:
  lists:
    - { name: bad-content, type: sha256 }
    - { name: frozen, type: cgroup }
  rules:
    - { name: watch-dropper, hook: exec, match: { binary: { path: [${dropper}] } }, action: audit }
    - { name: deny-bad-content, hook: exec, match: { binary: { list: [bad-content] } }, action: deny }
    - { name: deny-frozen, hook: exec, match: { cgroup: { list: [frozen] } }, action: deny }
    - { name: watch-trigger, hook: exec, match: { binary: { path: [${trigger}] } }, action: audit }
  reactions:
    - name: quarantine
      on: { rule: watch-dropper, decision: allowed }
      do:
        - add: { list: bad-content, from: binary.sha256, ttlSeconds: 600 }
        - add: { list: frozen, from: process.cgroup }
    - name: terminate
      on: { rule: watch-trigger }
      do: [ { killTree: true } ]
`, 'reactions.test.yaml');
    assert.deepEqual(parsed.errors, []);
    const applied = await suite.control.applyPolicies(parsed.policies.map((p) => ({ policy: p.policy, source: 'reactions.test' })));

    // The first run of the dropper is the signal: it runs (audited), in the test cgroup.
    const first = spawnSync('/bin/sh', ['-c', `echo $$ > ${cg}/cgroup.procs && exec ${dropper} first-run`]);
    assert.equal(first.status, 0);
    const reaction = (await agent.waitFor((e) => isReaction(e) && e.reaction.name === 'quarantine', 'the quarantine reaction')) as ReactionEvent;
    assert.deepEqual(reaction.errors, []);
    assert.deepEqual(
      reaction.actions.map((a) => (a.do === 'add' ? a.list : a.do)),
      ['bad-content', 'frozen'],
    );
    assert.ok(reaction.latency_us > 0);
    t.diagnostic(`signal to mitigation in force: ${reaction.latency_us} µs`);

    // The mitigations hold in the kernel: the same content under another name...
    assert.equal(errno(spawnSync(copyOfDropper)), 'EPERM');
    // ...and any exec in the cgroup.
    const inFrozen = spawnSync('/bin/sh', ['-c', `echo $$ > ${cg}/cgroup.procs && exec ${canary}`]);
    assert.equal(inFrozen.status, 126);
    assert.equal(spawnSync(canary).status, 0, 'outside the cgroup nothing changed');

    // killTree: the offender (a test-owned shell) and its child.
    const tree = spawn('/bin/sh', ['-c', `sleep 300 & exec ${trigger} 300`], { stdio: 'ignore' });
    const exited = new Promise<NodeJS.Signals | null>((r) => tree.once('exit', (_code, sig) => r(sig)));
    const kill = (await agent.waitFor((e) => isReaction(e) && e.reaction.name === 'terminate', 'the kill reaction')) as ReactionEvent;
    assert.equal(await exited, 'SIGKILL', 'the shell was killed');
    const killedPids = kill.actions.flatMap((a) => (a.do === 'kill' ? a.pids : []));
    assert.ok(killedPids.includes(tree.pid!), 'the tree root is among the killed');
    assert.ok(killedPids.length >= 2, `its child too (${killedPids.join(',')})`);

    const shown = JSON.parse(agent.krsi('policy', 'show', '--json').stdout) as { generation: number };
    assert.equal(shown.generation, applied.generation, 'krsi policy show names the generation in force');
  });

  test('a TypeScript handler through the library API adds to a list', async (t) => {
    if (!requireKernel(t, '5.7', 'BPF LSM')) return;
    const first = tool('lib-first');
    const policy = PolicySchema.parse({
      apiVersion: 'krsi.dev/v1',
      kind: 'Policy',
      metadata: { name: 'lib' },
      spec: {
        lists: [{ name: 'seen-once', type: 'path' }],
        rules: [{ name: 'deny-seen', hook: 'exec', match: { binary: { list: ['seen-once'] } }, action: 'deny' }],
      },
    });
    // The shared agent runs unprotected (--no-protect): a protected one
    // would refuse this process's LSM program loads.
    const lib = await Agent.start({ policies: [{ policy, source: 'test' }], listsPath: null, onEvent: () => undefined });
    try {
      const added = new Promise<void>((resolve) => {
        lib.on('exec', (e: ExecEvent) => {
          if (e.exec.path !== first || e.decision !== 'allowed') return;
          void lib.listAdd('seen-once', [e.exec.path]).then(() => resolve());
        });
      });
      assert.equal(spawnSync(first).status, 0, 'the first run is allowed');
      await added;
      assert.equal(errno(spawnSync(first)), 'EPERM', 'the handler made every later run fail');
    } finally {
      lib.shutdown();
    }
    assert.equal(spawnSync(first).status, 0, 'detached with the library agent');
  });
});

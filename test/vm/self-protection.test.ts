// End to end, in a kernel with BPF LSM: enforcement outlives the agent.
// kill -9 leaves every deny in force (fail-closed); a new agent adopts the
// pinned state without a moment unenforced and continues the generation;
// what happened meanwhile is delivered or counted; --fail-open and a clean
// stop leave nothing behind.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fromStatDev, formatDevice } from '../../src/events/devices.js';
import type { ExecEvent, KrsiEvent } from '../../src/events/schema.js';
import { connectControl } from '../../src/control/client.js';
import { settled } from '../lib/settle.js';
import { policyFile, startAgent, type AgentProcess } from '../lib/agent-process.js';
import { requireKernel, POLICY_PROGRAMS, vmSuite } from '../lib/kernel.js';

const isExec = (e: KrsiEvent): e is ExecEvent => e.kind === 'exec';
const denied = (path: string): boolean => (spawnSync(path).error as NodeJS.ErrnoException | undefined)?.code === 'EPERM';

describe('enforcement that outlives the agent', { skip: vmSuite(POLICY_PROGRAMS.min, POLICY_PROGRAMS.feature) }, () => {
  const dir = mkdtempSync('/tmp/krsi-self-');
  chmodSync(dir, 0o755);
  const target = join(dir, 'target');
  copyFileSync('/usr/bin/true', target);
  chmodSync(target, 0o755);
  const st = statSync(target, { bigint: true });
  const policyText = (name: string) => `apiVersion: krsi.dev/v1
kind: Policy
metadata: { name: ${name} }
spec:
  rules:
    - name: deny-target
      hook: exec
      match: { binary: { inode: [{ dev: "${formatDevice(fromStatDev(st.dev))}", ino: ${st.ino} }] } }
      action: deny
`;
  const lists = join(dir, 'lists.json');
  const pinRoot = `/sys/fs/bpf/krsi-self-${process.pid}`;
  const agents: AgentProcess[] = [];

  after(async () => {
    for (const a of agents) await a.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('kill -9: denies stay; a new agent adopts without a gap and continues the generation', async (t) => {
    if (!requireKernel(t, '5.7', 'BPF LSM')) return;
    // Unprotected, so that a root process may kill -9 it (the tamper suite
    // shows that a protected one cannot be).
    const first = await startAgent({ policies: [policyFile(policyText('first'))], lists, pinRoot, args: ['--no-protect'] });
    agents.push(first);
    assert.ok(denied(target));
    assert.ok(readdirSync(join(pinRoot, 'links')).includes('exec_check'), 'the enforcing links are pinned');
    // Killed at once, whatever it is reading: a batch it has taken from the
    // ring stays there until it has handled it, so its successor gets it.
    assert.equal(await first.kill(), 'SIGKILL');
    for (let i = 0; i < 5; i++) assert.ok(denied(target), 'still denied with no agent at all');

    // A loop execs the target all through the adoption: not one may succeed.
    const loop = spawn('/bin/sh', ['-c', `while [ -e ${dir}/go ]; do ${target}; echo $?; sleep 0.02; done`], { stdio: ['ignore', 'pipe', 'ignore'] });
    let results = '';
    loop.stdout.on('data', (d: Buffer) => (results += d.toString()));
    copyFileSync(target, join(dir, 'go'));
    const second = await startAgent({ lists, pinRoot });
    agents.push(second);
    await new Promise((r) => setTimeout(r, 1000));
    rmSync(join(dir, 'go'));
    await new Promise((r) => loop.once('close', r));
    const codes = results.trim().split('\n').filter(Boolean);
    t.diagnostic(`${codes.length} execs during the adoption, exit codes: ${[...new Set(codes)].join(',')}`);
    assert.ok(codes.length > 0, 'the loop ran during the adoption');
    assert.ok(codes.every((c) => c !== '0'), 'no exec got through during the adoption');

    const ready = second.events.find((e) => e.kind === 'agent' && e.state === 'ready');
    assert.ok(ready && ready.kind === 'agent');
    assert.equal(ready.generation, 1, 'the adopted generation, not a new one');
    // The denials made while no agent ran were kept in the ring and arrive now, named.
    const whileAway = (await second.waitFor((e) => isExec(e) && e.decision === 'denied' && e.exec.path === target, 'a denial from the gap')) as ExecEvent;
    assert.deepEqual({ policy: whileAway.policy.rule?.policy, rule: whileAway.policy.rule?.rule }, { policy: 'first', rule: 'deny-target' });

    // Counted, not only delivered: the new agent accounts from where the
    // old one stopped reading, so the denials made while none ran are in
    // its attempted and received figures.
    const deniedTarget = () => second.events.filter((e) => isExec(e) && e.decision === 'denied' && e.exec.path === target).length;
    const away = 5;
    const control = await connectControl(second.socket);
    const account = (await settled(control)).accounting.decisions;
    control.close();
    t.diagnostic(`decisions since the first agent stopped reading: ${JSON.stringify(account)}; denials delivered ${deniedTarget()}`);
    assert.ok(account.attempted >= away + codes.length, 'the denials made while no agent ran are counted');
    assert.equal(account.attempted, account.received + account.dropped);
    assert.equal(account.dropped, 0, 'killed while reading: nothing lost');
    assert.equal(account.received, deniedTarget());
    // Nothing was lost, and no gap event says otherwise.
    const marked = second.events.filter((e) => e.kind === 'gap' && e.ring === 'decisions').reduce((n, e) => n + (e.kind === 'gap' ? e.missing : 0), 0);
    assert.equal(marked, 0, 'no gap event in the decisions stream');

    const r = second.krsi('policy', 'apply', policyFile(policyText('second')));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /generation 2/, 'the generation continues');
    assert.ok(denied(target));
  });

  test('a clean stop leaves nothing enforced and nothing pinned', async (t) => {
    if (!requireKernel(t, '5.7', 'BPF LSM')) return;
    const agent = agents.at(-1)!;
    assert.equal(await agent.stop(), 0);
    assert.ok(!denied(target));
    assert.ok(!existsSync(join(pinRoot, 'links')) || readdirSync(join(pinRoot, 'links')).length === 0);
  });

  test('--fail-open: a killed agent stops enforcing', async (t) => {
    if (!requireKernel(t, '5.7', 'BPF LSM')) return;
    const open = await startAgent({ policies: [policyFile(policyText('open'))], pinRoot: `${pinRoot}-open`, args: ['--fail-open', '--no-protect'] });
    agents.push(open);
    assert.ok(denied(target));
    await open.kill();
    assert.ok(!denied(target), 'enforcement ended with the agent');
  });
});

// End to end, in a kernel with BPF LSM: exhaustion never turns a deny into an
// allow, and what could not be reported is counted exactly. Each resource is
// really filled: the decisions ring (the agent stopped while denials pile
// up), the events ring (an open storm read at a paced rate), a dynamic
// list's map, and a task's lineage context (deleted from the pinned map, as
// a failed allocation would leave it).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { AgentStatus } from '../../src/agent/control-api.js';
import { native } from '../../src/bpf/native.js';
import { connectControl } from '../../src/control/client.js';
import { formatDevice, fromStatDev } from '../../src/events/devices.js';
import type { AgentEvent, ExecEvent, FileOpenEvent, GapEvent, KrsiEvent } from '../../src/events/schema.js';
import { parsePolicyText } from '../../src/policy/load.js';
import { policyFile, startAgent, type AgentProcess } from '../lib/agent-process.js';
import { joinSharedAgent } from '../lib/shared-agent.js';
import { requireKernel, POLICY_PROGRAMS, vmSuite } from '../lib/kernel.js';

const isExec = (e: KrsiEvent): e is ExecEvent => e.kind === 'exec';
const isGap = (e: KrsiEvent): e is GapEvent => e.kind === 'gap';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs a shell script pinned to one CPU; resolves with its stdout lines. */
function shellOn(cpu: number, script: string): Promise<string[]> {
  const child = spawn('taskset', ['-c', String(cpu), '/bin/sh', '-c', script], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve) => child.once('close', () => resolve(out.split('\n').filter(Boolean))));
}


/** Records the gap events in the stream stand for, on one ring. */
const gapMarked = (agent: AgentProcess, ring: 'decisions' | 'events'): number =>
  agent.events.filter((e): e is GapEvent => isGap(e) && e.ring === ring).reduce((n, g) => n + g.missing, 0);

/**
 * Asks the running agent for its status over the control socket until the
 * ring is quiet: nothing pending, and the gap events that reached the stream
 * stand for what the status says is marked. No later record is needed for
 * that: the agent marks losses at the tail itself, before every status.
 */
async function quietStatus(agent: AgentProcess, ring: 'decisions' | 'events', deadlineMs = 120_000): Promise<AgentStatus> {
  const control = await connectControl(agent.socket);
  try {
    const deadline = Date.now() + deadlineMs;
    for (;;) {
      const status = await control.status();
      const a = status.accounting[ring];
      if (a.pending === 0 && gapMarked(agent, ring) === a.missing) return status;
      if (Date.now() > deadline) {
        assert.fail(`the ${ring} ring was not quiet within ${deadlineMs / 1000} s: ${JSON.stringify(a)}, gap-marked in the stream ${gapMarked(agent, ring)}`);
      }
      await sleep(100); // the poll's period, not a wait for anything in particular
    }
  } finally {
    control.close();
  }
}

/**
 * Stops the agent and returns its final figures: it detaches, drains both
 * rings, then reports (the `stopped` event), so they are exact. (A running
 * agent's figures move with every exec, `krsi status` included.)
 */
async function finalFigures(agent: AgentProcess): Promise<AgentEvent> {
  assert.equal(await agent.stop(), 0);
  const stopped = agent.events.find((e): e is AgentEvent => e.kind === 'agent' && e.state === 'stopped');
  assert.ok(stopped?.accounting, 'the stopped event carries the accounting');
  return stopped;
}

/** utime + stime of a process, in clock ticks. */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

describe('exhaustion never turns a deny into an allow', { skip: vmSuite(POLICY_PROGRAMS.min, POLICY_PROGRAMS.feature) }, () => {
  const dir = mkdtempSync('/tmp/krsi-exhaust-');
  chmodSync(dir, 0o755);
  const target = join(dir, 'target');
  copyFileSync('/usr/bin/true', target);
  chmodSync(target, 0o755);
  const st = statSync(target, { bigint: true });
  const targetInode = `{ dev: "${formatDevice(fromStatDev(st.dev))}", ino: ${st.ino} }`;
  const cpus = Math.min(2, native.numPossibleCpus());
  const agents: AgentProcess[] = [];

  after(async () => {
    for (const a of agents) {
      if (a.child.exitCode === null && a.child.signalCode === null) process.kill(a.child.pid!, 'SIGCONT');
      await a.stop();
    }
    rmSync(dir, { recursive: true, force: true });
  });

  test('a full decisions ring: every exec is still denied; attempted = received + dropped; gaps mark exactly what was lost', async (t) => {
    if (!requireKernel(t, '5.7', 'BPF LSM')) return;
    const policy = policyFile(`apiVersion: krsi.dev/v1
kind: Policy
metadata: { name: ring }
spec:
  rules:
    - { name: deny-target, hook: exec, match: { binary: { inode: [${targetInode}] } }, action: deny }
`);
    // The smallest ring the kernel takes (one page), and an agent that does
    // not read it: stopped, which --no-protect lets its parent do.
    const agent = await startAgent({ policies: [policy], args: ['--no-protect', '--decisions-ring', '4096'] });
    agents.push(agent);
    const perCpu = 150;
    process.kill(agent.child.pid!, 'SIGSTOP');
    let codes: string[];
    try {
      const loop = `i=0; while [ $i -lt ${perCpu} ]; do ${target} 2>/dev/null; echo $?; i=$((i+1)); done`;
      codes = (await Promise.all(Array.from({ length: cpus }, (_, cpu) => shellOn(cpu, loop)))).flat();
    } finally {
      process.kill(agent.child.pid!, 'SIGCONT');
    }
    assert.equal(codes.length, perCpu * cpus);
    assert.deepEqual([...new Set(codes)], ['126'], 'every exec was refused while nobody read the ring');

    const attempts = perCpu * cpus;
    const denials = () => agent.events.filter((e) => isExec(e) && e.decision === 'denied' && e.exec.path === target).length;
    const gaps = () => agent.events.filter((e): e is GapEvent => isGap(e) && e.ring === 'decisions').length;

    // While the agent runs, once it has read what the ring held: every loss
    // is marked, the last of each CPU's included, with no later denial.
    const live = (await quietStatus(agent, 'decisions')).accounting.decisions;
    t.diagnostic(`decisions ring, running agent: ${JSON.stringify(live)}; ${gaps()} gap markers for ${gapMarked(agent, 'decisions')} records`);
    assert.equal(live.attempted, attempts, 'the kernel numbered every denial');
    assert.equal(live.received, denials(), 'received counts what reached the stream');
    assert.equal(live.attempted, live.received + live.dropped);
    assert.ok(live.dropped > 0, 'the ring really was full');
    assert.equal(live.missing, live.dropped, 'every lost record is marked');
    assert.equal(gapMarked(agent, 'decisions'), live.dropped, 'the gap markers stand for exactly the lost records');

    const s = await finalFigures(agent);
    const a = s.accounting!.decisions;
    const missing = gapMarked(agent, 'decisions');
    t.diagnostic(`decisions ring, stopped: attempted ${a.attempted}, received ${a.received}, dropped ${a.dropped}, pending ${a.pending}, ${gaps()} gap markers for ${missing} records (missing ${a.missing})`);
    assert.equal(a.attempted, attempts, 'the kernel numbered every denial');
    assert.equal(a.received, denials(), 'received counts what reached the stream');
    assert.equal(a.attempted, a.received + a.dropped);
    assert.equal(a.pending, 0);
    assert.ok(a.dropped > 0, 'the ring really was full');
    assert.deepEqual({ dropped: a.dropped, missing: a.missing }, { dropped: live.dropped, missing: live.missing }, 'nothing was lost, or marked, after the quiet moment');
    assert.equal(a.missing, a.dropped, 'every lost record is marked');
    assert.equal(missing, a.dropped, 'the gap markers stand for exactly the lost records');
    assert.equal(s.counters['bprm_check_security']?.dropped, a.dropped, 'the hook counted its failed reservations');
    assert.ok((s.counters['bprm_check_security']?.denied ?? 0) >= attempts);
  });

  test('an open storm floods the events ring: decisions are not starved, telemetry is paced, accounting is exact', async (t) => {
    if (!requireKernel(t, '5.7', 'BPF LSM')) return;
    const noise = join(dir, 'noise');
    const secret = join(dir, 'secret');
    writeFileSync(noise, 'n');
    writeFileSync(secret, 's');
    const policy = policyFile(`apiVersion: krsi.dev/v1
kind: Policy
metadata: { name: storm }
spec:
  rules:
    - { name: watch-noise, hook: file_open, match: { file: { path: ["${noise}"] } }, action: audit }
    - { name: deny-secret, hook: file_open, match: { file: { path: ["${secret}"] } }, action: deny }
`);
    const perSecond = 500;
    const agent = await startAgent({ policies: [policy], args: ['--no-protect', '--events-ring', '16384', '--events-per-second', String(perSecond)] });
    agents.push(agent);
    const pid = agent.child.pid!;
    const ticks0 = cpuTicks(pid);
    const started = Date.now();
    // Each CPU: opens of the audited file (telemetry), and every tenth
    // iteration an open of the denied one (a decision). `true <`, not `: <`:
    // a failed redirection of a special builtin ends a POSIX shell.
    const perCpu = 3000;
    const loop = `i=0; while [ $i -lt ${perCpu} ]; do true < ${noise}; if [ $((i % 10)) -eq 0 ]; then if true < ${secret} 2>/dev/null; then echo opened; else echo refused; fi; fi; i=$((i+1)); done`;
    const results = (await Promise.all(Array.from({ length: cpus }, (_, cpu) => shellOn(cpu, loop)))).flat();
    const stormSeconds = (Date.now() - started) / 1000;
    const ticks = cpuTicks(pid) - ticks0;
    assert.equal(results.length, (perCpu / 10) * cpus);
    assert.deepEqual([...new Set(results)], ['refused'], 'every open of the denied file was refused during the storm');

    // Once the agent has read what the ring held: every loss is marked, the
    // last of each CPU's included, with no later record needed.
    const quiet = (await quietStatus(agent, 'events')).accounting;
    const live = quiet.events;
    t.diagnostic(`events ring, running agent: ${JSON.stringify(live)}; gap-marked ${gapMarked(agent, 'events')}; decisions ${JSON.stringify(quiet.decisions)}`);
    assert.ok(live.dropped > 0, 'the events ring really overflowed');
    assert.ok(live.attempted >= perCpu * cpus, 'every audited open was numbered');
    assert.equal(live.attempted, live.received + live.dropped);
    assert.equal(live.missing, live.dropped, 'every lost record is marked');
    assert.equal(gapMarked(agent, 'events'), live.dropped, 'the gap markers stand for exactly the lost records');
    assert.equal(quiet.decisions.dropped, 0, 'no decision was lost to the telemetry flood');

    const s = await finalFigures(agent);
    const seconds = (Date.now() - started) / 1000;
    const ev = s.accounting!.events;
    const dec = s.accounting!.decisions;
    const audits = agent.events.filter((e) => e.kind === 'file_open' && e.file.path === noise).length;
    const refusals = agent.events.filter((e) => e.kind === 'file_open' && e.decision === 'denied' && e.file.path === secret).length;
    const missing = gapMarked(agent, 'events');
    t.diagnostic(
      `${perCpu * cpus} audited opens in ${stormSeconds.toFixed(1)} s, stopped: events attempted ${ev.attempted}, received ${ev.received}, dropped ${ev.dropped}, pending ${ev.pending}, gap-marked ${missing} (missing ${ev.missing}); ` +
        `decisions attempted ${dec.attempted}, received ${dec.received}, dropped ${dec.dropped}; agent CPU during the storm ${ticks} ticks`,
    );
    assert.equal(dec.dropped, 0, 'no decision was lost to the telemetry flood');
    assert.equal(refusals, (perCpu / 10) * cpus, 'every refusal reached the stream');
    assert.ok(ev.dropped > 0, 'the events ring really overflowed');
    assert.ok(ev.attempted >= perCpu * cpus, 'every audited open was numbered');
    assert.equal(ev.attempted, ev.received + ev.dropped);
    assert.equal(ev.pending, 0);
    assert.ok(audits > 0 && audits <= ev.received, 'received counts the records read, the audits among them');
    assert.deepEqual({ dropped: ev.dropped, missing: ev.missing }, { dropped: live.dropped, missing: live.missing }, 'nothing was lost, or marked, after the quiet moment');
    assert.equal(ev.missing, ev.dropped, 'every lost record is marked');
    assert.equal(missing, ev.dropped, 'the gap markers stand for exactly the lost records');
    // The pacer: at most perSecond records a second (in tenths of a
    // second), plus what one ring holds when the agent drains it at stop.
    assert.ok(ev.received <= Math.ceil(seconds + 1) * perSecond + 16384 / 64, `received ${ev.received} within the budget of ${perSecond}/s over ${seconds.toFixed(1)} s`);
  });

  test('a full list map: a clear error, nothing added, every deny still in force', async (t) => {
    if (!requireKernel(t, '5.7', 'BPF LSM')) return;
    const policy = policyFile(`apiVersion: krsi.dev/v1
kind: Policy
metadata: { name: full }
spec:
  lists:
    - { name: banned, type: inode }
    - { name: watched-uids, type: uid }
  rules:
    - { name: deny-banned, hook: exec, match: { binary: { list: [banned] } }, action: deny }
    - { name: watch-uids, hook: exec, match: { uid: { list: [watched-uids] } }, action: audit }
`);
    // A small capacity, so that filling it is quick; the limit is the same code at any size.
    const capacity = 4096;
    const agent = await startAgent({ policies: [policy], args: ['--no-protect', '--list-capacity', String(capacity)] });
    agents.push(agent);
    // The control client the CLI uses, in this process: the subject is the
    // kernel's full map and the error, not the command line around it.
    const control = await connectControl(agent.socket);
    try {
      await control.listAdd('banned', [target]);
      assert.equal((spawnSync(target).error as NodeJS.ErrnoException | undefined)?.code, 'EPERM');
      // Fill the values map (shared by both lists) to the last slot.
      const fill = Array.from({ length: capacity - 1 }, (_, i) => String(100_000 + i));
      await control.listAdd('watched-uids', fill);
      const over = await control.listAdd('watched-uids', ['1', '2', '3']).then(
        () => null,
        (err: Error) => err,
      );
      t.diagnostic(over?.message ?? 'no error');
      assert.ok(over, 'adding to a full list fails');
      assert.match(over.message, /list watched-uids is full.*nothing was added/s);
      const shown = (await control.lists()).find((l) => l.name === 'watched-uids');
      assert.equal(shown?.entries.length, capacity - 1);
      assert.ok(!shown.entries.some((e) => e.entry === '1'), 'nothing of the refused batch was added');
      assert.equal((spawnSync(target).error as NodeJS.ErrnoException | undefined)?.code, 'EPERM', 'the deny is still in force');
      // Room again after a removal: the list works on.
      await control.listRemove('watched-uids', ['100000']);
      await control.listAdd('watched-uids', ['1']);
    } finally {
      control.close();
    }
  });

  test('a lost lineage context fails closed: a deny by ancestor still holds', async (t) => {
    if (!requireKernel(t, '5.7', 'BPF LSM')) return;
    const guarded = join(dir, 'guarded-sh');
    copyFileSync('/bin/sh', guarded);
    chmodSync(guarded, 0o755);
    const secret = join(dir, 'lineage-secret');
    writeFileSync(secret, 's');
    const parsed = parsePolicyText(`apiVersion: krsi.dev/v1
kind: Policy
metadata: { name: lineage }
spec:
  rules:
    - name: no-secret-under-guarded
      hook: file_open
      match: { file: { path: ["${secret}"] }, ancestor: { path: ["${guarded}"] } }
      action: deny
`, 'exhaustion.test.yaml');
    assert.deepEqual(parsed.errors, []);
    // The shared agent runs with --no-protect, which lets this process open its pinned maps.
    const suite = await joinSharedAgent();
    t.after(() => suite.leave());
    const { agent } = suite;
    await suite.control.applyPolicies(parsed.policies.map((p) => ({ policy: p.policy, source: 'exhaustion.test' })));
    // Two shells that each open the secret (through a child) when told to.
    const probe = (sh: string) => {
      const child = spawn(sh, ['-c', `read go; cat ${secret} >/dev/null 2>&1 && echo opened || echo refused`], { stdio: ['pipe', 'pipe', 'ignore'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const done = new Promise<string>((r) => child.once('close', () => r(out.trim())));
      return { child, run: () => (child.stdin.end('go\n'), done) };
    };
    const control = probe('/bin/sh');
    const victim = probe(guarded);
    // Both shells have exec'd (and have their contexts) once their exec events are out.
    for (const [child, path] of [[control.child, '/usr/bin/dash'], [victim.child, guarded]] as const) {
      await agent.waitFor((e) => isExec(e) && e.process.pid === child.pid && e.exec.path === path, `the exec of ${path}`);
    }
    // Take the guarded shell's context away, as a failed allocation would.
    const ctx = native.BpfMap.openPinned(join(agent.pinRoot, 'maps', 'task_ctx'));
    const pidfd = native.pidfdOpen(victim.child.pid!);
    try {
      const key = Buffer.alloc(4);
      key.writeInt32LE(pidfd);
      assert.ok(ctx.lookup(key), 'the shell had a context');
      assert.ok(ctx.delete(key));
      assert.equal(ctx.lookup(key), null);
    } finally {
      native.closeFd(pidfd);
      ctx.close();
    }
    assert.equal(await control.run(), 'opened', 'a process of known lineage outside the rule is not affected');
    assert.equal(await victim.run(), 'refused', 'unknown lineage: the deny by ancestor holds');
    const e = (await agent.waitFor((x) => x.kind === 'file_open' && x.decision === 'denied' && (x as FileOpenEvent).file.path === secret, 'the refusal')) as FileOpenEvent;
    assert.equal(e.policy.context_unknown, true, 'the event says the lineage was unknown');
  });
});


// End to end, in a kernel with BPF LSM (issue 7, operations): `krsi status`
// (CPU, RSS, hooks attached, rule states), `krsi events --follow` with filters
// receiving a real denied exec, enrichment of real execs (ancestors, user
// name, cgroup path, container id), the events file rotating under real
// events, /metrics scraped over HTTP counting a real denial, and `krsi reload`
// and SIGHUP swapping the policy files all or nothing. One Landlock-confined
// agent (the default), so the events directory and the metrics listener are
// shown to work inside its confinement. (systemd is not the VM's init: the
// unit file is checked on the host with systemd-analyze verify.)
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { connectControl } from '../../src/control/client.js';
import { EventSchema, type ExecEvent, type KrsiEvent } from '../../src/events/schema.js';
import { krsiBin, startAgent, type AgentProcess } from '../lib/agent-process.js';
import { requireKernel, POLICY_PROGRAMS, vmSuite } from '../lib/kernel.js';

const isExec = (e: KrsiEvent): e is ExecEvent => e.kind === 'exec';
const denied = (path: string, opts: { uid?: number; gid?: number } = {}): boolean =>
  (spawnSync(path, [], opts).error as NodeJS.ErrnoException | undefined)?.code === 'EPERM';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('operations: status, events, metrics, enrichment, reload', { skip: vmSuite(POLICY_PROGRAMS.min, POLICY_PROGRAMS.feature) }, () => {
  const dir = mkdtempSync('/tmp/krsi-ops-');
  chmodSync(dir, 0o755);
  const target = join(dir, 'target');
  const target2 = join(dir, 'target2');
  for (const t of [target, target2]) {
    copyFileSync('/usr/bin/true', t);
    chmodSync(t, 0o755);
  }
  const eventsDir = join(dir, 'events');
  mkdirSync(eventsDir);
  const eventsFile = join(eventsDir, 'events.jsonl');
  const port = 19464;
  const containerId = 'c0ffee'.repeat(10) + 'abcd';
  const cgroup = `/sys/fs/cgroup/docker-${containerId}.scope`;
  const policyDir = join(dir, 'policies');
  mkdirSync(policyDir);
  const policyPath = join(policyDir, 'ops.yaml');
  const policyText = (name: string, deny: string) => `apiVersion: krsi.dev/v1
kind: Policy
metadata: { name: ${name} }
spec:
  rules:
    - name: deny-target
      hook: exec
      match: { binary: { path: ["${deny}"] } }
      action: deny
    - name: by-digest
      hook: exec
      match: { binary: { sha256: ["${'a'.repeat(64)}"] } }
      action: deny
    - name: watch-only
      hook: exec
      mode: monitor
      match: { binary: { path: ["/nonexistent/x"] } }
      action: deny
`;
  let agent: AgentProcess;

  before(async () => {
    writeFileSync(policyPath, policyText('ops', target));
    mkdirSync(cgroup);
    agent = await startAgent({
      policies: [policyDir],
      // --no-protect: the SIGHUP test signals it (the tamper suite shows a
      // protected agent refusing signals, SIGHUP among them).
      args: ['--no-protect', '--events-file', eventsFile, '--events-file-max-bytes', '8192', '--events-file-keep', '2', '--metrics', `127.0.0.1:${port}`, '--no-ima'],
    });
  });

  after(async () => {
    await agent?.stop();
    try {
      rmdirSync(cgroup);
    } catch {
      // still populated by a zombie: left for the VM's end
    }
    rmSync(dir, { recursive: true, force: true });
  });

  test('krsi status: CPU, RSS, every hook attached, each rule enforced, degraded or monitor and why', async (t) => {
    if (!requireKernel(t, '5.7', 'BPF LSM')) return;
    const r = agent.krsi('status', '--json');
    assert.equal(r.status, 0, r.stderr);
    const s = JSON.parse(r.stdout);
    t.diagnostic(`process ${JSON.stringify(s.process)}; landlock ${JSON.stringify(s.landlock)}`);
    assert.ok(s.process.rssBytes > 10 * 1024 * 1024, 'RSS of a Node process');
    assert.ok(s.process.cpuUserSeconds + s.process.cpuSystemSeconds > 0, 'CPU time used');
    assert.ok(s.hooks.length >= 20);
    assert.deepEqual(s.hooks.filter((h: { attached: boolean }) => !h.attached), [], 'every hook attached on this kernel');
    const rules = Object.fromEntries(s.rules.map((x: { rule: string; state: string; reason?: string }) => [x.rule, x]));
    assert.equal(rules['deny-target'].state, 'enforced');
    assert.equal(rules['by-digest'].state, 'degraded', '--no-ima: sha256 from the agent');
    assert.match(rules['by-digest'].reason, /IMA/);
    assert.equal(rules['watch-only'].state, 'monitor');
    assert.equal(s.generation, 1);
    assert.ok(s.landlock?.writable.includes(eventsDir), 'the events directory is writable under Landlock');
    const text = agent.krsi('status');
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /agent process: CPU [\d.]+ s user \+ [\d.]+ s system, RSS [\d.]+ MiB/);
    assert.match(text.stdout, /hooks attached: (\d+) of \1/);
    assert.match(text.stdout, /ops\/by-digest \(exec, deny\): degraded - sha256 without IMA/);
  });

  let followed: ExecEvent;
  test('krsi events --follow with filters receives a real denied exec, and only what matches', async (t) => {
    if (!requireKernel(t, '5.7', 'BPF LSM')) return;
    const child = spawn(krsiBin, ['events', '--follow', '--hook', 'exec', '--decision', 'denied', '--binary', 'target', '--rule', 'ops/deny-target', '--count', '1'], {
      env: { ...process.env, KRSI_SOCKET: agent.socket },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: string[] = [];
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    createInterface({ input: child.stdout }).on('line', (l) => lines.push(l));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    // Until the subscription is live, denials are not followed; keep making
    // them (and allowed execs, which the filter must hold back).
    let tries = 0;
    while (lines.length === 0 && child.exitCode === null && tries++ < 200) {
      spawnSync('/usr/bin/true');
      spawnSync('/bin/sh', ['-c', `echo $$ > ${cgroup}/cgroup.procs && exec ${target}`]);
      await sleep(200);
    }
    assert.equal(await exited, 0, stderr);
    assert.equal(lines.length, 1, 'exited after --count 1');
    const e = EventSchema.parse(JSON.parse(lines[0]!));
    assert.ok(isExec(e));
    assert.equal(e.decision, 'denied');
    assert.equal(e.exec.path, target);
    assert.equal(e.policy.rule?.rule, 'deny-target');
    followed = e;
    t.diagnostic(`followed after ${tries} tries: ${lines[0]!.slice(0, 400)}`);
  });

  test('enrichment: ancestors, user and group names, cgroup path and container id of real execs', async (t) => {
    if (!requireKernel(t, '5.7', 'BPF LSM')) return;
    const p = followed.process;
    assert.equal(p.ppid, process.pid, 'the shell that exec`d target is our child');
    assert.equal(p.ancestors?.[0]?.pid, process.pid);
    // The kernel's comm of this process (Node 24 names its main thread "MainThread").
    assert.equal(p.ancestors?.[0]?.comm, readFileSync('/proc/self/comm', 'utf8').trim());
    // Landlock keeps the confined agent from reading /proc/PID/exe of processes
    // outside its domain: the executables of processes older than the agent
    // come from the kernel's process snapshot (a task iterator).
    assert.equal(p.ancestors?.[0]?.exe, realpathSync(process.execPath), 'this test process, older than the agent, with its executable');
    assert.equal(p.ancestors?.[1]?.pid, process.ppid);
    assert.ok((p.ancestors?.length ?? 0) >= 2);
    assert.equal(p.user, 'root');
    assert.equal(p.group, 'root');
    assert.equal(p.cgroup, `/docker-${containerId}.scope`);
    assert.equal(p.container_id, containerId);

    // Another user: the names come from /etc/passwd and /etc/group.
    assert.ok(denied(target, { uid: 65534, gid: 65534 }));
    const e = (await agent.waitFor((x) => isExec(x) && x.decision === 'denied' && x.process.uid === 65534, 'the denial as nobody')) as ExecEvent;
    assert.equal(e.process.user, 'nobody');
    assert.equal(e.process.group, 'nogroup');
    assert.equal(e.process.cgroup, '/', 'in the root cgroup');
    assert.equal(e.process.container_id, undefined);

    // An allowed exec's ancestors include the shell whose image the cache learnt from its own exec event.
    const sh = spawnSync('/bin/sh', ['-c', '/usr/bin/env true; echo $$'], { encoding: 'utf8' });
    const shPid = Number(sh.stdout.trim());
    const inner = (await agent.waitFor((x) => isExec(x) && x.exec.path.endsWith('/env') && x.process.ppid === shPid, 'env run by the shell')) as ExecEvent;
    assert.equal(inner.process.ancestors?.[0]?.pid, shPid);
    assert.match(inner.process.ancestors?.[0]?.exe ?? '', /\/(sh|dash|bash)$/, 'the shell, as its exec event told the cache');
    assert.equal(inner.process.ancestors?.[1]?.pid, process.pid);
  });

  test('/metrics over HTTP counts the real denials', async (t) => {
    if (!requireKernel(t, '5.7', 'BPF LSM')) return;
    const deniedSoFar = () => agent.events.filter((e) => isExec(e) && e.decision === 'denied').length;
    assert.ok(denied(target));
    await agent.waitFor((e) => isExec(e) && e.decision === 'denied' && e.process.uid === 0 && e.process.cgroup === '/', 'one more denial');
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    assert.equal(res.status, 200);
    const text = await res.text();
    const value = (re: RegExp): number => Number(re.exec(text)?.[1] ?? NaN);
    const deniedMetric = value(/^krsi_decisions_total\{kind="exec",decision="denied"\} (\d+)$/m);
    t.diagnostic(`denials: metric ${deniedMetric}, stream ${deniedSoFar()}`);
    assert.equal(deniedMetric, deniedSoFar(), 'the counter matches the denials the stream delivered');
    assert.ok(deniedMetric >= 3);
    assert.ok(value(/^krsi_hook_records\{hook="bprm_check_security",counter="denied"\} (\d+)$/m) >= deniedMetric, 'the kernel counted them too');
    assert.equal(value(/^krsi_policy_generation (\d+)$/m), 1);
    assert.equal(value(/^krsi_ring_records\{ring="decisions",state="dropped"\} (\d+)$/m), 0);
    assert.ok(value(/^krsi_process_cache_entries (\d+)$/m) > 5);
    assert.ok(value(/^krsi_process_resident_memory_bytes (\d+)$/m) > 0);
    assert.match(text, /^# TYPE krsi_reaction_latency_seconds histogram$/m);
  });

  test('the events file rotates under real events: bounded files, K kept, every line a whole event', async (t) => {
    if (!requireKernel(t, '5.7', 'BPF LSM')) return;
    // Enough allowed execs to rotate an 8 KiB file more than twice.
    for (let i = 0; i < 40; i++) spawnSync('/usr/bin/true', [`round-${i}`]);
    await agent.waitFor((e) => isExec(e) && e.exec.argv[1] === 'round-39', 'the last exec');
    const files = readdirSync(eventsDir).sort();
    t.diagnostic(`files: ${files.map((f) => `${f} ${statSync(join(eventsDir, f)).size}`).join(', ')}`);
    assert.deepEqual(files, ['events.jsonl', 'events.jsonl.1', 'events.jsonl.2']);
    let lines: KrsiEvent[] = [];
    for (const f of ['events.jsonl.2', 'events.jsonl.1', 'events.jsonl']) {
      assert.ok(statSync(join(eventsDir, f)).size <= 8192, `${f} within the bound`);
      for (const l of readFileSync(join(eventsDir, f), 'utf8').split('\n').filter(Boolean)) lines.push(EventSchema.parse(JSON.parse(l)));
    }
    // Up to the last exec waited for (the agent may have written more since).
    lines = lines.slice(0, lines.findIndex((e) => isExec(e) && e.exec.argv[1] === 'round-39') + 1);
    const rounds = lines.filter(isExec).map((e) => e.exec.argv[1]).filter((a) => a?.startsWith('round-'));
    assert.equal(rounds.at(-1), 'round-39', 'the newest events are in the current file');
    // What the files hold is the tail of the stream, in order, with nothing missing.
    const stream = agent.events.map((e) => JSON.stringify(e));
    const tail = lines.map((e) => JSON.stringify(e));
    const start = stream.indexOf(tail[0]!);
    assert.ok(start > 0, 'older events were rotated away');
    assert.deepEqual(tail, stream.slice(start, start + tail.length));
  });

  test('krsi reload swaps the policy files atomically; an invalid file changes nothing', async (t) => {
    if (!requireKernel(t, '5.7', 'BPF LSM')) return;
    assert.ok(denied(target));
    assert.ok(!denied(target2));
    writeFileSync(policyPath, policyText('ops', target2));
    const r = agent.krsi('reload');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /policy generation 2 in force/);
    assert.ok(!denied(target), 'the old rule is gone');
    assert.ok(denied(target2), 'the new rule is in force');

    writeFileSync(policyPath, `${policyText('ops', target)}    - name: broken\n      hook: exec\n      action: explode\n`);
    const bad = agent.krsi('reload');
    assert.equal(bad.status, 2, 'usage: the policy is invalid');
    assert.match(bad.stderr, /explode|action/);
    assert.ok(denied(target2), 'generation 2 still in force');
    assert.ok(!denied(target));
    const s = JSON.parse(agent.krsi('status', '--json').stdout);
    assert.equal(s.generation, 2);
  });

  test('SIGHUP reloads the policy files all or nothing', async (t) => {
    if (!requireKernel(t, '5.7', 'BPF LSM')) return;
    const control = await connectControl(agent.socket);
    /** Polls stderr for a line of the agent's log, for up to a minute. */
    const logged = async (line: string, since: number): Promise<void> => {
      for (const deadline = Date.now() + 60_000; !agent.stderr().slice(since).includes(line) && Date.now() < deadline; ) await sleep(100);
    };
    try {
      const generation = async (): Promise<number> => (await control.status()).generation;
      const before = await generation();
      assert.ok(denied(target2), 'what the reload test left in force');
      writeFileSync(policyPath, policyText('hup', target));
      let since = agent.stderr().length;
      agent.child.kill('SIGHUP');
      await logged('policies reloaded on SIGHUP', since);
      assert.equal(await generation(), before + 1, agent.stderr().slice(since));
      assert.ok(denied(target));
      assert.ok(!denied(target2));
      writeFileSync(policyPath, `${policyText('hup', target2)}    - name: broken\n      hook: exec\n      action: explode\n`);
      since = agent.stderr().length;
      agent.child.kill('SIGHUP');
      await logged('SIGHUP reload failed', since);
      assert.match(agent.stderr().slice(since), /SIGHUP reload failed; the policy in force is unchanged/);
      assert.equal(await generation(), before + 1);
      assert.ok(denied(target), 'the reloaded generation is still in force');
      // Diagnostics stayed on stderr: every stdout line was a schema-valid event (startAgent checks each).
      assert.ok(agent.events.every((e) => EventSchema.safeParse(e).success));
    } finally {
      control.close();
    }
  });

  test('a clean stop: exit 0, and the stopped event is in the events file too', async (t) => {
    if (!requireKernel(t, '5.7', 'BPF LSM')) return;
    assert.equal(await agent.stop(), 0);
    const last = readFileSync(eventsFile, 'utf8').trim().split('\n').at(-1)!;
    const e = EventSchema.parse(JSON.parse(last));
    assert.equal(e.kind, 'agent');
    assert.ok(e.kind === 'agent' && e.state === 'stopped');
    const refused = await fetch(`http://127.0.0.1:${port}/metrics`).then(
      () => 'answered',
      () => 'refused',
    );
    assert.equal(refused, 'refused', 'the metrics listener is closed');
  });
});

// End to end, in a kernel with BPF LSM: every exec yields an event, and a
// rule on a file's identity (device and inode) denies it in the kernel,
// whatever name it is run by, then lets go when the policy is replaced.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, linkSync, mkdirSync, mkdtempSync, realpathSync, rmdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fromStatDev, formatDevice } from '../../src/events/devices.js';
import type { ExecEvent, KrsiEvent } from '../../src/events/schema.js';
import { parsePolicyText } from '../../src/policy/load.js';
import type { AgentView } from '../lib/agent-process.js';
import { requireKernel, POLICY_PROGRAMS, vmSuite } from '../lib/kernel.js';
import { joinSharedAgent, type SuiteAgent } from '../lib/shared-agent.js';

const isExec = (e: KrsiEvent): e is ExecEvent => e.kind === 'exec';

function identity(path: string): { dev: string; ino: string } {
  const st = statSync(path, { bigint: true });
  return { dev: formatDevice(fromStatDev(st.dev)), ino: st.ino.toString() };
}

describe('exec events and a deny by inode in the kernel', { skip: vmSuite(POLICY_PROGRAMS.min, POLICY_PROGRAMS.feature) }, () => {
  const dir = mkdtempSync('/tmp/krsi-exec-');
  const truePath = realpathSync('/usr/bin/true');
  const forbidden = join(dir, 'forbidden');
  const hardlink = join(dir, 'hardlink');
  const symlink = join(dir, 'symlink');
  const copy = join(dir, 'copy');
  const script = join(dir, 'script.sh');
  let suite: SuiteAgent;
  let agent: AgentView;
  let generation: number;

  before(async () => {
    copyFileSync(truePath, forbidden);
    linkSync(forbidden, hardlink);
    symlinkSync(forbidden, symlink);
    copyFileSync(truePath, copy);
    writeFileSync(script, `#!${forbidden}\n`, { mode: 0o755 });
    const id = identity(forbidden);
    const parsed = parsePolicyText(`apiVersion: krsi.dev/v1
kind: Policy
metadata: { name: test-exec }
spec:
  rules:
    - name: deny-forbidden
      hook: exec
      match:
        binary:
          inode: [{ dev: "${id.dev}", ino: ${id.ino} }]
      action: deny
`, 'exec.test.yaml');
    assert.deepEqual(parsed.errors, []);
    suite = await joinSharedAgent();
    agent = suite.agent;
    generation = (await suite.control.applyPolicies(parsed.policies.map((p) => ({ policy: p.policy, source: 'exec.test' })))).generation;
  });

  after(async () => {
    await suite?.leave();
  });

  test('a known process tree: path, filename, argv, ppid, comm, ids, cgroup', async (t) => {
    if (!requireKernel(t, '5.7', 'BPF LSM')) return;
    const marker = `tree-${process.pid}-${Date.now()}`;
    const cgroup = `/sys/fs/cgroup/krsi-test-${process.pid}`;
    mkdirSync(cgroup);
    t.after(() => rmdirSync(cgroup));
    // sh moves itself into a fresh cgroup, then runs env, which execs true.
    const r = spawnSync('/bin/sh', ['-c', `echo $$ > ${cgroup}/cgroup.procs && /usr/bin/env true ${marker}; echo $$`], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    const shPid = Number(r.stdout.trim());

    const sh = (await agent.waitFor((e) => isExec(e) && e.process.pid === shPid && e.exec.filename === '/bin/sh', 'the exec of sh')) as ExecEvent;
    const env = (await agent.waitFor((e) => isExec(e) && e.exec.argv.includes(marker) && e.exec.argv[0] === '/usr/bin/env', 'the exec of env')) as ExecEvent;
    const tru = (await agent.waitFor((e) => isExec(e) && e.exec.argv.includes(marker) && e.exec.argv[0] === 'true', 'the exec of true')) as ExecEvent;

    assert.equal(sh.process.ppid, process.pid, 'sh is the test process’s child');
    assert.equal(sh.exec.path, realpathSync('/bin/sh'), 'the path is resolved through symlinks');
    assert.deepEqual(sh.exec.argv.slice(0, 2), ['/bin/sh', '-c']);
    assert.equal(sh.process.comm, 'sh');

    assert.equal(env.process.ppid, shPid);
    assert.equal(env.exec.path, realpathSync('/usr/bin/env'));
    assert.deepEqual(env.exec.argv, ['/usr/bin/env', 'true', marker]);
    assert.equal(env.exec.argc, 3);
    assert.equal(env.process.comm, 'env');
    assert.deepEqual({ dev: env.exec.dev, ino: env.exec.ino }, identity('/usr/bin/env'));
    assert.equal(env.process.cgroup_id, statSync(cgroup, { bigint: true }).ino.toString(), 'cgroup id of the new cgroup');

    assert.equal(tru.process.pid, env.process.pid, 'env execs true in place');
    assert.equal(tru.process.ppid, shPid);
    assert.equal(tru.exec.path, truePath);
    assert.deepEqual(tru.exec.argv, ['true', marker]);
    assert.equal(tru.process.comm, 'true');

    for (const e of [sh, env, tru]) {
      assert.equal(e.decision, 'allowed');
      assert.equal(e.policy.decided_by, 'default');
      assert.equal(e.policy.rule, null);
      assert.equal(e.policy.generation, generation);
      assert.equal(e.process.uid, process.getuid!());
      assert.equal(e.process.euid, process.geteuid!());
      assert.equal(e.process.gid, process.getgid!());
      assert.equal(e.exec.argv_truncated, false);
      assert.ok(Math.abs(Date.parse(e.time) - Date.now()) < 120_000, `event time ${e.time} is now`);
    }
  });

  test('deny-exec returns EPERM to the caller and reports the denial with its argv', async (t) => {
    if (!requireKernel(t, '5.7', 'BPF LSM')) return;
    const r = spawnSync(forbidden, ['--flag', 'denied-direct'], { encoding: 'utf8' });
    assert.equal((r.error as NodeJS.ErrnoException | undefined)?.code, 'EPERM');
    const e = (await agent.waitFor((x) => isExec(x) && x.decision === 'denied' && x.exec.argv.includes('denied-direct'), 'the denial')) as ExecEvent;
    assert.deepEqual(e.policy.rule, { policy: 'test-exec', rule: 'deny-forbidden', action: 'deny', mode: 'enforce' });
    assert.equal(e.policy.generation, generation);
    assert.equal(e.exec.path, forbidden);
    assert.deepEqual(e.exec.argv, [forbidden, '--flag', 'denied-direct']);
    assert.equal(e.process.pid, e.process.tid);
    assert.deepEqual({ dev: e.exec.dev, ino: e.exec.ino }, identity(forbidden));
  });

  test('the denial holds through a hard link, a symlink and a script’s interpreter line', async (t) => {
    if (!requireKernel(t, '5.7', 'BPF LSM')) return;
    for (const [path, tag] of [
      [hardlink, 'via-hardlink'],
      [symlink, 'via-symlink'],
      [script, 'via-script'],
    ] as const) {
      const r = spawnSync(path, [tag], { encoding: 'utf8' });
      assert.equal((r.error as NodeJS.ErrnoException | undefined)?.code, 'EPERM', `${path} must be denied`);
    }
    const viaHard = (await agent.waitFor((x) => isExec(x) && x.decision === 'denied' && x.exec.argv.includes('via-hardlink'), 'hard link denial')) as ExecEvent;
    assert.equal(viaHard.exec.path, hardlink, 'the path is the name it was opened by');
    const viaSym = (await agent.waitFor((x) => isExec(x) && x.decision === 'denied' && x.exec.argv.includes('via-symlink'), 'symlink denial')) as ExecEvent;
    assert.equal(viaSym.exec.filename, symlink);
    assert.equal(viaSym.exec.path, forbidden);
    const viaScript = (await agent.waitFor((x) => isExec(x) && x.decision === 'denied' && x.exec.filename === script, 'script denial')) as ExecEvent;
    assert.equal(viaScript.exec.path, forbidden, 'the interpreter is what was denied');
  });

  test('a copy of the denied binary, and everything else, still runs', (t) => {
    if (!requireKernel(t, '5.7', 'BPF LSM')) return;
    assert.equal(spawnSync(copy, ['copy-runs']).status, 0);
    assert.equal(spawnSync(truePath).status, 0);
    assert.equal(spawnSync('/bin/sh', ['-c', 'exit 3']).status, 3);
  });

  test('oversized argv is truncated and flagged, never silently', async (t) => {
    if (!requireKernel(t, '5.7', 'BPF LSM')) return;
    const args = Array.from({ length: 300 }, (_, i) => `big-${i}-${'x'.repeat(90)}`);
    assert.equal(spawnSync(copy, args).status, 0);
    const e = (await agent.waitFor((x) => isExec(x) && x.exec.argv[1] === args[0], 'the big exec')) as ExecEvent;
    assert.equal(e.exec.argc, 301);
    assert.equal(e.exec.argv_truncated, true);
    assert.ok(e.exec.argv.length < 301);
    const bytes = e.exec.argv.reduce((n, a) => n + Buffer.byteLength(a) + 1, 0);
    assert.ok(bytes <= 4096, `argv bytes ${bytes} within the bound`);
    // Every string but possibly the last is complete.
    e.exec.argv.slice(1, -1).forEach((a, i) => assert.equal(a, args[i]));

    const one = 'y'.repeat(10_000);
    assert.equal(spawnSync(copy, [one]).status, 0);
    const long = (await agent.waitFor((x) => isExec(x) && x.exec.argc === 2 && (x.exec.argv[1] ?? '').startsWith('yyyy'), 'one long argument')) as ExecEvent;
    assert.equal(long.exec.argv_truncated, true);
    assert.ok((long.exec.argv[1] ?? '').length < one.length);
  });

  test('hostile argv bytes arrive exactly', async (t) => {
    if (!requireKernel(t, '5.7', 'BPF LSM')) return;
    // printf builds bytes Node cannot pass as strings: invalid UTF-8, ESC, newline.
    const r = spawnSync('/bin/bash', ['-c', `exec ${copy} "$(printf 'hostile\\377\\033[2J\\nend')"`]);
    assert.equal(r.status, 0);
    const e = (await agent.waitFor((x) => isExec(x) && x.exec.path === copy && (x.exec.argv[1] ?? '').startsWith('hostile'), 'the hostile exec')) as ExecEvent;
    const raw = Buffer.from(e.exec.argv_base64?.[1] ?? '', 'base64');
    assert.deepEqual([...raw], [...Buffer.from('hostile'), 0xff, 0x1b, ...Buffer.from('[2J\nend')]);
  });

  test('the kernel counted every denial, lost no record, and lets go once the policy is replaced', async (t) => {
    if (!requireKernel(t, '5.7', 'BPF LSM')) return;
    const c = await suite.countersSince();
    const check = c['bprm_check_security'];
    const committed = c['bprm_committed_creds'];
    assert.ok(check && committed);
    assert.ok(check.denied >= 4, `denials counted: ${check.denied}`);
    assert.equal(check.dropped + committed.dropped, 0, 'no ring overflow in this test');
    const empty = await suite.control.applyPolicies([]);
    assert.equal(empty.generation, generation + 1);
    assert.equal(spawnSync(forbidden).status, 0, 'the binary runs once the policy is gone');
  });
});

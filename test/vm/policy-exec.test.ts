// End to end, in a kernel with BPF LSM: every selector kind and every action
// of the exec hook, each by performing the real exec. One agent; each case
// applies its own policy through the control socket (which is itself a
// generation swap), runs execs, and checks errno, side effects and events.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ControlClient } from '../../src/control/client.js';
import type { ExecEvent, KrsiEvent } from '../../src/events/schema.js';
import { PolicySchema, type PolicyInput } from '../../src/policy/schema.js';
import type { AgentView } from '../lib/agent-process.js';
import { requireKernel, POLICY_PROGRAMS, vmSuite } from '../lib/kernel.js';
import { settled } from '../lib/settle.js';
import { joinSharedAgent, type SuiteAgent } from '../lib/shared-agent.js';
import { repoPath } from '../lib/paths.js';

const preload = repoPath('build/test/preload.so');
const isExec = (e: KrsiEvent): e is ExecEvent => e.kind === 'exec';

describe('exec policy: every selector and action, in the kernel', { skip: vmSuite(POLICY_PROGRAMS.min, POLICY_PROGRAMS.feature) }, () => {
  const dir = mkdtempSync('/tmp/krsi-pol-');
  let suite: SuiteAgent;
  let agent: AgentView;
  let control: ControlClient;
  let applied = 0;

  /** A copy of /usr/bin/true at dir/name (directories created), runnable by anyone. */
  const tool = (name: string, extraBytes = ''): string => {
    const path = join(dir, name);
    mkdirSync(join(path, '..'), { recursive: true, mode: 0o755 });
    copyFileSync('/usr/bin/true', path);
    if (extraBytes) writeFileSync(path, extraBytes, { flag: 'a' });
    chmodSync(path, 0o755);
    return path;
  };

  const apply = async (rules: PolicyInput['spec']['rules'], extra: Partial<PolicyInput['spec']> = {}): Promise<number> => {
    const policy = PolicySchema.parse({
      apiVersion: 'krsi.dev/v1',
      kind: 'Policy',
      metadata: { name: `case-${++applied}` },
      spec: { ...extra, rules },
    });
    const r = await control.applyPolicies([{ policy, source: 'test' }]);
    return r.generation;
  };

  const run = (cmd: string, args: string[] = [], opts: { uid?: number; env?: NodeJS.ProcessEnv } = {}): SpawnSyncReturns<string> =>
    spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000, ...opts });
  const errno = (r: SpawnSyncReturns<string>): string | undefined => (r.error as NodeJS.ErrnoException | undefined)?.code;
  const execOf = (path: string, tag: string) => (e: KrsiEvent): e is ExecEvent => isExec(e) && e.exec.path === path && e.exec.argv.includes(tag);

  before(async () => {
    chmodSync(dir, 0o755);
    suite = await joinSharedAgent();
    ({ agent, control } = suite);
  });

  after(async () => {
    await suite?.leave();
    rmSync(dir, { recursive: true, force: true });
  });

  test('binary: exact path, prefix and glob', async (t) => {
    if (!requireKernel(t, '5.7', 'BPF LSM')) return;
    const exact = tool('exact');
    const pre = tool('pre/x');
    const prex = tool('prex');
    const globbed = tool('g/a.bin');
    const deeper = tool('g/sub/a.bin');
    const gen = await apply([
      { name: 'exact', hook: 'exec', match: { binary: { path: [exact] } }, action: 'deny' },
      { name: 'prefix', hook: 'exec', match: { binary: { prefix: [`${dir}/pre/`] } }, action: 'deny' },
      { name: 'glob', hook: 'exec', match: { binary: { glob: [`${dir}/g/*.bin`] } }, action: 'deny' },
    ]);
    assert.equal(errno(run(exact, ['sel-exact'])), 'EPERM');
    assert.equal(errno(run(pre, ['sel-pre'])), 'EPERM');
    assert.equal(run(prex, ['sel-prex']).status, 0, 'a byte prefix, not a string prefix of the directory');
    assert.equal(errno(run(globbed, ['sel-glob'])), 'EPERM');
    assert.equal(run(deeper, ['sel-deeper']).status, 0, '* does not cross /');
    for (const [path, tag, rule] of [
      [exact, 'sel-exact', 'exact'],
      [pre, 'sel-pre', 'prefix'],
      [globbed, 'sel-glob', 'glob'],
    ] as const) {
      const e = (await agent.waitFor(execOf(path, tag), `denial of ${tag}`)) as ExecEvent;
      assert.equal(e.decision, 'denied');
      assert.equal(e.policy.generation, gen);
      assert.deepEqual(e.policy.rule, { policy: `case-${applied}`, rule, action: 'deny', mode: 'enforce' });
    }
  });

  test('binary: content hash (IMA), whatever the file is called', async (t) => {
    if (!requireKernel(t, '5.18', 'bpf_ima_file_hash')) return;
    const marked = tool('hash/original', 'krsi-unique-content\n');
    const copy = tool('hash/copy', 'krsi-unique-content\n');
    const other = tool('hash/other', 'other-content\n');
    const sha = createHash('sha256').update(readFileSync(marked)).digest('hex');
    await apply([{ name: 'by-hash', hook: 'exec', match: { binary: { sha256: [sha] } }, action: 'deny' }]);
    assert.equal(errno(run(marked, ['hash-1'])), 'EPERM');
    assert.equal(errno(run(copy, ['hash-2'])), 'EPERM', 'a copy has the same content');
    assert.equal(run(other, ['hash-3']).status, 0);
    const e = (await agent.waitFor(execOf(copy, 'hash-2'), 'the hash denial')) as ExecEvent;
    assert.equal(e.policy.rule?.rule, 'by-hash');
  });

  test('binary: dynamic lists of paths and of inodes, changed without re-applying', async (t) => {
    if (!requireKernel(t, '5.7', 'BPF LSM')) return;
    const listed = tool('list/a');
    const viaInode = tool('list/b');
    await apply(
      [
        { name: 'listed-paths', hook: 'exec', match: { binary: { list: ['denied-paths'] } }, action: 'deny' },
        { name: 'listed-inodes', hook: 'exec', match: { binary: { list: ['denied-inodes'] } }, action: 'deny' },
      ],
      { lists: [{ name: 'denied-paths', type: 'path' }, { name: 'denied-inodes', type: 'inode' }] },
    );
    assert.equal(run(listed).status, 0, 'not listed yet');
    await control.listAdd('denied-paths', [listed]);
    assert.equal(errno(run(listed)), 'EPERM', 'listed: denied at once');
    await control.listAdd('denied-inodes', [viaInode]); // a path: the agent resolves it to its inode
    assert.equal(errno(run(viaInode)), 'EPERM');
    const lists = await control.lists();
    assert.match(lists.find((l) => l.name === 'denied-inodes')!.entries[0]!.entry, /^\d+:\d+:\d+$/);
    await control.listRemove('denied-paths', [listed]);
    assert.equal(run(listed).status, 0, 'removed: runs again');
  });

  test('parent and ancestor, including a process older than the policy', async (t) => {
    if (!requireKernel(t, '5.7', 'BPF LSM')) return;
    const child = tool('lineage/child');
    // A bash that waits on its stdin: started now, under no policy at all.
    const old = spawn('/bin/bash', ['-c', `read line; ${child} old-ancestor; echo status=$?`], { stdio: ['pipe', 'pipe', 'inherit'] });
    let oldOut = '';
    old.stdout.on('data', (d: Buffer) => (oldOut += d.toString()));
    await agent.waitFor((e) => isExec(e) && e.process.pid === old.pid && e.exec.argv[0] === '/bin/bash', 'the exec of the old bash');

    await apply([
      { name: 'not-from-dash', hook: 'exec', match: { binary: { path: [child] }, parent: { path: ['/usr/bin/dash'] } }, action: 'deny' },
      { name: 'not-under-bash', hook: 'exec', match: { binary: { path: [child] }, ancestor: { path: ['/usr/bin/bash'] } }, action: 'deny' },
    ]);
    // dash forks (the `; true` keeps it from exec'ing in place), the child execs.
    const fromDash = run('/bin/sh', ['-c', `${child} via-dash; echo status=$?; true`]);
    assert.match(fromDash.stdout, /status=126/, 'parent dash: denied');
    const underBash = run('/bin/bash', ['-c', `/bin/sh -c '${child} via-bash-sh; echo status=$?; true'; true`]);
    assert.match(underBash.stdout, /status=126/, 'dash is the parent and bash an ancestor: denied');
    // From node directly: parent node, ancestors node and the test runner.
    assert.equal(run(child, ['from-node']).status, 0);

    // The old bash was classified from /proc when the policy was applied.
    old.stdin.end('go\n');
    // 'close', not 'exit': the output pipe may still hold the last line at exit.
    await new Promise((r) => old.once('close', r));
    assert.match(oldOut, /status=126/, 'a process started before the policy is still known as bash');
    const e = (await agent.waitFor(execOf(child, 'old-ancestor'), 'the old ancestor denial')) as ExecEvent;
    assert.equal(e.policy.rule?.rule, 'not-under-bash');
    assert.equal(e.policy.context_unknown, false);
  });

  test('uid, gid and cgroup (a subtree)', async (t) => {
    if (!requireKernel(t, '5.7', 'BPF LSM')) return;
    const target = tool('ids/t');
    const cg = `/sys/fs/cgroup/krsi-cg-${process.pid}`;
    mkdirSync(`${cg}/inner`, { recursive: true });
    t.after(() => {
      rmdirSync(`${cg}/inner`);
      rmdirSync(cg);
    });
    await apply([
      { name: 'nobody', hook: 'exec', match: { binary: { path: [target] }, uid: [65534] }, action: 'deny' },
      { name: 'gid-7', hook: 'exec', match: { binary: { path: [target] }, gid: { in: [7] } }, action: 'deny' },
      { name: 'in-cgroup', hook: 'exec', match: { binary: { path: [target] }, cgroup: { path: [cg] } }, action: 'deny' },
    ]);
    assert.equal(errno(run(target, [], { uid: 65534 })), 'EPERM');
    assert.equal(run(target).status, 0, 'root runs it');
    const withGid = spawnSync(target, [], { gid: 7 });
    assert.equal((withGid.error as NodeJS.ErrnoException | undefined)?.code, 'EPERM');
    const inCg = run('/bin/sh', ['-c', `echo $$ > ${cg}/inner/cgroup.procs && exec ${target}`]);
    assert.equal(inCg.status, 126, 'denied inside the cgroup subtree');
  });

  test('env: a variable name in the environment passed to exec', async (t) => {
    if (!requireKernel(t, '5.7', 'BPF LSM')) return;
    const target = tool('env/t');
    await apply([{ name: 'no-flag', hook: 'exec', match: { binary: { path: [target] }, env: ['KRSI_TEST_FLAG'] }, action: 'deny' }]);
    assert.equal(errno(run(target, [], { env: { PATH: '/usr/bin', KRSI_TEST_FLAG: '1' } })), 'EPERM');
    assert.equal(run(target, [], { env: { PATH: '/usr/bin', KRSI_TEST_FLAGX: '1' } }).status, 0);
    // Padding the environment does not hide the variable.
    const padded: NodeJS.ProcessEnv = { PATH: '/usr/bin' };
    for (let i = 0; i < 3000; i++) padded[`PAD_${i}`] = 'x';
    padded['KRSI_TEST_FLAG'] = '1';
    assert.equal(errno(run(target, [], { env: padded })), 'EPERM');
  });

  test('actions: audit, kill, secureexec, monitor', async (t) => {
    if (!requireKernel(t, '5.11', 'bpf_bprm_opts_set')) return;
    const audited = tool('act/audited');
    const killed = tool('act/killed');
    const secured = tool('act/secured');
    const plain = tool('act/plain');
    const monitored = tool('act/monitored');
    await apply([
      { name: 'audit-it', hook: 'exec', match: { binary: { path: [audited] } }, action: 'audit' },
      { name: 'kill-it', hook: 'exec', match: { binary: { path: [killed] } }, action: 'kill' },
      { name: 'secure-it', hook: 'exec', match: { binary: { path: [secured] }, env: ['LD_PRELOAD'] }, action: 'secureexec' },
      { name: 'would-deny', hook: 'exec', match: { binary: { path: [monitored] } }, action: 'deny', mode: 'monitor' },
    ]);
    assert.equal(run(audited, ['act-audit']).status, 0);
    const a = (await agent.waitFor(execOf(audited, 'act-audit'), 'the audit event')) as ExecEvent;
    assert.equal(a.decision, 'allowed');
    assert.equal(a.policy.audit?.rule, 'audit-it');

    const k = run('/bin/sh', ['-c', `${killed} act-kill; echo status=$?`]);
    assert.match(k.stdout, /status=137/, 'the caller was killed by SIGKILL');
    const ke = (await agent.waitFor(execOf(killed, 'act-kill'), 'the kill event')) as ExecEvent;
    assert.equal(ke.decision, 'denied');
    assert.equal(ke.policy.killed, true);
    assert.equal(ke.policy.rule?.action, 'kill');

    const markerSecured = join(dir, 'marker-secured');
    const markerPlain = join(dir, 'marker-plain');
    const env = (marker: string): NodeJS.ProcessEnv => ({ PATH: '/usr/bin', LD_PRELOAD: preload, KRSI_PRELOAD_MARKER: marker });
    assert.equal(run(plain, ['act-plain'], { env: env(markerPlain) }).status, 0);
    assert.ok(existsSync(markerPlain), 'control: the preload constructor runs without the rule');
    assert.equal(run(secured, ['act-secure'], { env: env(markerSecured) }).status, 0, 'secureexec lets it run');
    assert.ok(!existsSync(markerSecured), 'under AT_SECURE the loader ignored LD_PRELOAD');
    const se = (await agent.waitFor(execOf(secured, 'act-secure'), 'the secureexec event')) as ExecEvent;
    assert.equal(se.policy.secureexec, true);

    assert.equal(run(monitored, ['act-monitor']).status, 0, 'monitor mode denies nothing');
    const m = (await agent.waitFor(execOf(monitored, 'act-monitor'), 'the monitor event')) as ExecEvent;
    assert.equal(m.decision, 'allowed');
    assert.equal(m.policy.would_deny?.rule, 'would-deny');
  });

  test('an explicit default deny with allow rules, and rate-limited denial events', async (t) => {
    if (!requireKernel(t, '5.7', 'BPF LSM')) return;
    const stray = tool('dd/stray');
    const limited = tool('dd/limited');
    // Allow what this VM needs; everything else is denied by the default.
    await apply(
      [{ name: 'system', hook: 'exec', match: { binary: { prefix: ['/usr/', '/bin/', '/sbin/', '/lib/', '/work/', '/opt/', '/etc/', '/var/cache/krsi/'] } }, action: 'allow' }],
      { defaults: { exec: 'deny' } },
    );
    try {
      assert.equal(errno(run(stray, ['dd-stray'])), 'EPERM', 'denied by the default');
      assert.equal(run('/usr/bin/true').status, 0, 'allowed by a rule');
      const e = (await agent.waitFor(execOf(stray, 'dd-stray'), 'the default denial')) as ExecEvent;
      assert.equal(e.policy.decided_by, 'default');
      assert.equal(e.policy.default, 'deny');
    } finally {
      await apply([{ name: 'limited', hook: 'exec', match: { binary: { path: [limited] } }, action: 'deny', rateLimit: { events: 2, perSeconds: 3600 } }]);
    }
    for (let i = 0; i < 8; i++) assert.equal(errno(run(limited, [`rl-${i}`])), 'EPERM', 'every exec is denied');
    await settled(control);
    const reported = agent.events.filter((e) => isExec(e) && e.exec.path === limited);
    assert.equal(reported.length, 2, 'two events reported, six suppressed');
    const counted = await suite.countersSince();
    assert.ok((counted['bprm_check_security']?.rate_limited ?? 0) >= 6);
  });
});

// End to end, in a kernel with BPF LSM: the signals of issue 4, each by
// performing the real thing: an exec with a suspicious environment (and the
// race that rewrites it), a program deleting or replacing its own
// executable, fileless execution, a library mapped executable, ptrace, bpf()
// program loads, user and group id changes. One agent throughout (digests
// from IMA); each group applies its policy through the control socket.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ControlClient } from '../../src/control/client.js';
import type { ExecEvent, KrsiEvent } from '../../src/events/schema.js';
import { parsePolicyText } from '../../src/policy/load.js';
import type { AgentView } from '../lib/agent-process.js';
import { joinSharedAgent, type SuiteAgent } from '../lib/shared-agent.js';
import { atLeast, requireKernel, POLICY_PROGRAMS, vmSuite } from '../lib/kernel.js';
import { repoPath } from '../lib/paths.js';

const fixture = (name: string): string => repoPath(`build/test/${name}`);
const preload = fixture('preload.so');
const LIBZ = '/usr/lib/x86_64-linux-gnu/libz.so.1';
const NOBODY = 65534;

type Kind = KrsiEvent['kind'];
type EventOf<K extends Kind> = Extract<KrsiEvent, { kind: K }>;

function run(cmd: string, args: string[], opts: { uid?: number; gid?: number; env?: NodeJS.ProcessEnv } = {}): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000, ...opts });
}

const errno = (r: SpawnSyncReturns<string>): string | undefined => (r.error as NodeJS.ErrnoException | undefined)?.code;
const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');
const outcomes = (line: string): Record<string, number> =>
  Object.fromEntries(line.trim().split(' ').map((kv) => [kv.split('=')[0]!, Number(kv.split('=')[1])]));

describe('signals: environment, self-deletion, fileless, libraries, ptrace, bpf, setid', { skip: vmSuite(POLICY_PROGRAMS.min, POLICY_PROGRAMS.feature) }, () => {
  const dir = mkdtempSync('/tmp/krsi-signals-');
  let suite: SuiteAgent;
  let agent: AgentView;
  let control: ControlClient;
  let applied = 0;

  async function apply(rules: string, lists = ''): Promise<string> {
    const name = `sig-${++applied}`;
    const yaml = `apiVersion: krsi.dev/v1\nkind: Policy\nmetadata: { name: ${name} }\nspec:\n${lists}  rules:\n${rules}`;
    const parsed = parsePolicyText(yaml, 'signals.test.yaml');
    assert.deepEqual(parsed.errors, [], 'the test policy is valid');
    await control.applyPolicies(parsed.policies.map((p) => ({ policy: p.policy, source: 'signals.test' })));
    return name;
  }

  async function event<K extends Kind>(kind: K, match: (e: EventOf<K>) => boolean, what: string): Promise<EventOf<K>> {
    return (await agent.waitFor((e) => e.kind === kind && match(e as EventOf<K>), what)) as EventOf<K>;
  }

  const execOf = (path: string, tag: string) => (e: ExecEvent): boolean => e.exec.path === path && e.exec.argv.includes(tag);

  /** A copy of a program at dir/name, runnable by anyone. */
  function copy(src: string, name: string, extra = ''): string {
    const path = join(dir, name);
    mkdirSync(join(path, '..'), { recursive: true, mode: 0o755 });
    copyFileSync(src, path);
    if (extra) appendFileSync(path, extra);
    chmodSync(path, 0o755);
    return path;
  }

  before(async () => {
    chmodSync(dir, 0o755);
    // The shared agent records the default names and one of the test's own
    // (SHARED_ENV_RECORD: --env-record replaces the default).
    suite = await joinSharedAgent();
    ({ agent, control } = suite);
  });

  after(async () => {
    await suite?.leave();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('exec with a suspicious environment', () => {
    test('the values of the names asked for are recorded exactly; no other variable reaches the event', async (t) => {
      if (!requireKernel(t, '5.11', 'sleepable BPF LSM')) return;
      const tool = copy('/usr/bin/true', 'env/values');
      const secret = `hunter2-${process.pid}-never-copied`;
      const env = {
        PATH: '/usr/bin',
        LD_PRELOAD: '/opt/lib/a b.so:/x.so',
        LD_AUDIT: 'ünïcode-audit',
        KRSI_ASKED: 'yes=1=2',
        SECRET_TOKEN: secret,
        LD_PRELOADX: secret,
        LD_LIBRARY_PATH: `/l/${'p'.repeat(2000)}`,
      };
      assert.equal(run(tool, ['env-values'], { env }).status, 0);
      const e = (await event('exec', execOf(tool, 'env-values'), 'the exec with recorded values')) as ExecEvent;
      assert.deepEqual(Object.keys(e.exec.env ?? {}).sort(), ['KRSI_ASKED', 'LD_AUDIT', 'LD_LIBRARY_PATH', 'LD_PRELOAD']);
      assert.equal(e.exec.env?.['LD_PRELOAD'], env.LD_PRELOAD);
      assert.equal(e.exec.env?.['LD_AUDIT'], env.LD_AUDIT);
      assert.equal(e.exec.env?.['KRSI_ASKED'], env.KRSI_ASKED, 'the value runs to the end of the string, "=" and all');
      assert.equal(e.exec.env?.['LD_LIBRARY_PATH'], env.LD_LIBRARY_PATH.slice(0, 1023), 'values are cut at 1023 bytes');
      assert.deepEqual(e.exec.env_truncated, ['LD_LIBRARY_PATH']);
      assert.equal(e.exec.env_incomplete, false);
      // The record's environment region holds only the recorded strings (the
      // decoder turns every string of it into a key), and nothing else of
      // the secret reaches the stream.
      for (const line of agent.events.map((x) => JSON.stringify(x))) assert.ok(!line.includes('hunter2'), 'an unasked value never leaves the kernel');
    });

    test('a 32-page environment is read whole: LD_PRELOAD at its end or its start is recorded; beyond, the event says so', async (t) => {
      if (!requireKernel(t, '5.11', 'sleepable BPF LSM')) return;
      const tool = copy('/usr/bin/true', 'env/big');
      const pad = (n: number, at: 'first' | 'last'): NodeJS.ProcessEnv => {
        const env: NodeJS.ProcessEnv = {};
        if (at === 'first') env['LD_PRELOAD'] = `/big-${at}.so`;
        env['PATH'] = '/usr/bin';
        for (let i = 0; i < n; i++) env[`PAD_${String(i).padStart(3, '0')}`] = 'x'.repeat(4086);
        if (at === 'last') env['LD_PRELOAD'] = `/big-${at}.so`;
        return env;
      };
      // 31 variables of 4096 bytes and two small ones: 32 pages, less a little.
      assert.equal(run(tool, ['env-last'], { env: pad(31, 'last') }).status, 0);
      assert.equal(run(tool, ['env-first'], { env: pad(31, 'first') }).status, 0);
      assert.equal(run(tool, ['env-beyond'], { env: pad(40, 'first') }).status, 0);
      const last = (await event('exec', execOf(tool, 'env-last'), 'the 32-page exec (last)')) as ExecEvent;
      assert.equal(last.exec.env?.['LD_PRELOAD'], '/big-last.so');
      assert.equal(last.exec.env_incomplete, false);
      const first = (await event('exec', execOf(tool, 'env-first'), 'the 32-page exec (first)')) as ExecEvent;
      assert.equal(first.exec.env?.['LD_PRELOAD'], '/big-first.so', 'the whole 32 pages were read');
      assert.equal(first.exec.env_incomplete, false);
      const beyond = (await event('exec', execOf(tool, 'env-beyond'), 'the 40-page exec')) as ExecEvent;
      assert.equal(beyond.exec.env_incomplete, true, 'past 128 KiB the event says the environment was not read entirely');
      assert.equal(beyond.exec.env?.['LD_PRELOAD'], undefined);
    });

    test('secureexec: a preload library given by LD_PRELOAD does not run; deny: LD_AUDIT is refused', async (t) => {
      if (!requireKernel(t, '5.11', 'bpf_bprm_opts_set')) return;
      const secured = copy('/usr/bin/true', 'env/secured');
      const plain = copy('/usr/bin/true', 'env/plain');
      const audited = copy('/usr/bin/true', 'env/audited');
      const policy = await apply(`    - { name: secure, hook: exec, match: { binary: { path: ["${secured}"] }, env: [LD_PRELOAD] }, action: secureexec }
    - { name: no-audit, hook: exec, match: { binary: { path: ["${audited}"] }, env: [LD_AUDIT] }, action: deny }
`);
      const marker = (n: string): string => join(dir, `marker-${n}`);
      const env = (m: string): NodeJS.ProcessEnv => ({ PATH: '/usr/bin', LD_PRELOAD: preload, KRSI_PRELOAD_MARKER: m });
      assert.equal(run(plain, ['se-plain'], { env: env(marker('plain')) }).status, 0);
      assert.ok(existsSync(marker('plain')), 'control: without the rule the preload constructor runs');
      assert.equal(run(secured, ['se-secured'], { env: env(marker('secured')) }).status, 0);
      assert.ok(!existsSync(marker('secured')), 'AT_SECURE: the loader ignored LD_PRELOAD');
      const se = (await event('exec', execOf(secured, 'se-secured'), 'the secureexec event')) as ExecEvent;
      assert.equal(se.policy.secureexec, true);
      assert.equal(se.exec.env?.['LD_PRELOAD'], preload, 'the value is recorded too');

      assert.equal(errno(run(audited, ['au'], { env: { PATH: '/usr/bin', LD_AUDIT: '/tmp/audit.so' } })), 'EPERM');
      assert.equal(run(audited, ['au-ok'], { env: { PATH: '/usr/bin' } }).status, 0);
      const d = (await event('exec', (e) => e.exec.path === audited && e.decision === 'denied', 'the LD_AUDIT denial')) as ExecEvent;
      assert.deepEqual(d.policy.rule, { policy, rule: 'no-audit', action: 'deny', mode: 'enforce' });
    });

    test('the backstop: an environment rewritten between the copy and the check is caught in the new image', async (t) => {
      if (!requireKernel(t, '5.11', 'sleepable BPF LSM')) return;
      // The fixture rewrites LD_PRELOAD into LD_PRELOAX after the kernel copied
      // it and before the check reads it (userfaultfd stalls the copy of argv).
      const racer = fixture('envrace');
      const N = 12;
      const runs = (): Record<string, number> => {
        const r = run(racer, [String(N), '/nonexistent.so']);
        assert.equal(r.status, 0, r.stderr);
        return outcomes(r.stdout);
      };
      const ofRacer = (e: ExecEvent): boolean => e.exec.path === racer && e.exec.argv[1] === 'report';

      // An audit rule does not act: it shows the check was fooled.
      await apply(`    - { name: look, hook: exec, match: { binary: { path: ["${racer}"] }, env: [LD_PRELOAD] }, action: audit }
`);
      const fooled = runs();
      assert.equal(fooled['with'], N, 'every new image has LD_PRELOAD');
      const seen = (await event('exec', ofRacer, 'a rewritten exec')) as ExecEvent;
      assert.equal(seen.exec.env?.['LD_PRELOAD'], '/nonexistent.so', 'the new image has it');
      assert.equal(seen.policy.audit, null, 'the check read LD_PRELOAX from the caller and matched nothing');

      // deny: the new image is killed before it runs.
      const before = agent.events.length;
      await apply(`    - { name: no-preload, hook: exec, match: { binary: { path: ["${racer}"] }, env: [LD_PRELOAD] }, action: deny }
`);
      const denied = runs();
      assert.deepEqual([denied['killed'], denied['with'], denied['secure']], [N, 0, 0], JSON.stringify(denied));
      const killed = (await agent.waitFor(
        (e) => agent.events.indexOf(e) >= before && e.kind === 'exec' && ofRacer(e) && e.exec.env_mismatch === true,
        'a backstop kill',
      )) as ExecEvent;
      assert.equal(killed.decision, 'denied');
      assert.equal(killed.policy.killed, true);
      assert.equal(killed.policy.rule?.rule, 'no-preload');

      // secureexec: the process runs, with AT_SECURE, set after the check (the
      // loader then unsets LD_PRELOAD itself).
      await apply(`    - { name: secure-preload, hook: exec, match: { binary: { path: ["${racer}"] }, env: [LD_PRELOAD] }, action: secureexec }
`);
      const secured = runs();
      assert.deepEqual([secured['secure'], secured['with']], [N, 0], JSON.stringify(secured));
      const late = (await event('exec', (e) => ofRacer(e) && e.exec.env_mismatch === true && e.decision === 'allowed', 'a late secureexec')) as ExecEvent;
      assert.equal(late.policy.secureexec, true);
    });
  });

  describe('a program deleting or replacing its own executable; fileless execution', () => {
    test('self: true sees unlink(2) and rename(2) over the own executable, and denies them', async (t) => {
      if (!requireKernel(t, '5.7', 'BPF LSM')) return;
      const policy = await apply(`    - { name: self-audit, hook: file_unlink, match: { self: true, binary: { prefix: ["${dir}/self/"] } }, action: audit }
    - { name: self-deny, hook: file_unlink, match: { self: true, binary: { prefix: ["${dir}/selfdeny/"] } }, action: deny }
`);
      const a = copy(fixture('selfexe'), 'self/a');
      const b = copy(fixture('selfexe'), 'self/b');
      assert.equal(run(a, ['unlink']).stdout.trim(), 'ok');
      assert.ok(!existsSync(a), 'it deleted itself');
      const ua = await event('file_unlink', (e) => e.file.path === a, 'the self-unlink');
      assert.equal(ua.file.self_delete, true);
      assert.equal(ua.file.operation, 'unlink');
      assert.equal(ua.policy.audit?.rule, 'self-audit');
      assert.equal(run(b, ['rename']).stdout.trim(), 'ok');
      const ub = await event('file_unlink', (e) => e.file.path === b, 'the self-replacement');
      assert.equal(ub.file.self_delete, true);
      assert.equal(ub.file.operation, 'rename');

      const c = copy(fixture('selfexe'), 'selfdeny/c');
      const d = copy(fixture('selfexe'), 'selfdeny/d');
      assert.equal(run(c, ['unlink']).stdout.trim(), 'unlink: EPERM');
      assert.ok(existsSync(c), 'still there');
      assert.equal(run(d, ['rename']).stdout.trim(), 'rename: EPERM');
      assert.equal(readFileSync(d).subarray(0, 4).toString('latin1'), '\x7fELF', 'not replaced');
      const dc = await event('file_unlink', (e) => e.file.path === c && e.decision === 'denied', 'the denied self-unlink');
      assert.deepEqual(dc.policy.rule, { policy, rule: 'self-deny', action: 'deny', mode: 'enforce' });
      // Another program removing the file is not the file removing itself.
      assert.equal(run('/usr/bin/rm', [c]).status, 0);
    });

    test('fileless: true sees the exec of a memfd and of an unlinked file, and denies it', async (t) => {
      if (!requireKernel(t, '5.7', 'BPF LSM')) return;
      const fileless = fixture('fileless');
      const scratch = join(dir, 'fl');
      mkdirSync(scratch, { recursive: true });
      await apply(`    - { name: fileless-audit, hook: exec, match: { fileless: true }, action: audit }
`);
      // The fixture execs in place: the program runs from a memfd, or from a file it unlinked.
      assert.equal(run(fileless, ['memfd', '/usr/bin/true', 'fl-memfd']).status, 0);
      assert.equal(run(fileless, ['deleted', '/usr/bin/true', scratch, 'fl-deleted']).status, 0);
      const child = (tag: string) => (e: ExecEvent): boolean => e.exec.argv[0] === 'fileless-child' && e.exec.argv.includes(tag);
      const m = (await event('exec', child('fl-memfd'), 'the memfd exec')) as ExecEvent;
      assert.equal(m.exec.fileless, 'memfd');
      assert.match(m.exec.path, /^\/memfd:krsi-fileless/);
      const del = (await event('exec', child('fl-deleted'), 'the deleted-file exec')) as ExecEvent;
      assert.equal(del.exec.fileless, 'deleted');
      const policy = await apply(`    - { name: no-fileless, hook: exec, match: { fileless: true }, action: deny }
`);
      assert.deepEqual(run(fileless, ['memfd', '/usr/bin/true', 'fl-memfd-2']).stdout.trim(), 'exec: EPERM');
      assert.deepEqual(run(fileless, ['deleted', '/usr/bin/true', scratch, 'fl-deleted-2']).stdout.trim(), 'exec: EPERM');
      assert.equal(run('/usr/bin/true', []).status, 0, 'files with a name run');
      const dm = (await event('exec', (e) => e.decision === 'denied' && e.exec.fileless === 'memfd', 'the memfd denial')) as ExecEvent;
      assert.deepEqual(dm.policy.rule, { policy, rule: 'no-fileless', action: 'deny', mode: 'enforce' });
    });
  });

  describe('libraries mapped executable (mmap_exec)', () => {
    test('a listed library cannot be loaded, by path or by content, and the event names the program', async (t) => {
      if (!requireKernel(t, '5.18', 'bpf_ima_file_hash')) return;
      const libload = copy(fixture('libload'), 'lib/libload');
      const bad = copy(LIBZ, 'lib/bad/libz.so');
      const good = copy(LIBZ, 'lib/good/libz.so');
      const vulnerable = copy(LIBZ, 'lib/v1/libz-vulnerable.so', 'krsi-vulnerable-build\n');
      const renamed = copy(vulnerable, 'lib/v2/innocent.so');
      const policy = await apply(`    - { name: bad-dir, hook: mmap_exec, match: { library: { prefix: ["${dir}/lib/bad/"] } }, action: deny }
    - { name: vulnerable, hook: mmap_exec, match: { library: { list: [vulnerable-libraries] } }, action: deny }
`, `  lists:\n    - { name: vulnerable-libraries, type: sha256, entries: ["${sha256(vulnerable)}"] }\n`);
      const denied = run(libload, ['dlopen', bad]);
      assert.equal(denied.status, 1);
      assert.match(denied.stdout, /^dlopen: .*(failed to map|Operation not permitted)/);
      assert.equal(run(libload, ['dlopen', good]).stdout.trim(), 'ok', 'the same library elsewhere loads');
      const e = await event('mmap_exec', (x) => x.library.path === bad && x.decision === 'denied', 'the library denial');
      assert.deepEqual(e.policy.rule, { policy, rule: 'bad-dir', action: 'deny', mode: 'enforce' });
      assert.equal(e.program.path, libload, 'the event names the program');
      assert.equal(e.process.comm, 'libload');
      assert.equal(e.mmap.source, 'mmap');
      assert.ok(e.mmap.prot.includes('exec'));

      assert.match(run(libload, ['dlopen', renamed]).stdout, /^dlopen: /, 'by content, whatever its name');
      const v = await event('mmap_exec', (x) => x.library.path === renamed && x.decision === 'denied', 'the content denial');
      assert.equal(v.policy.rule?.rule, 'vulnerable');
      assert.equal(v.library.sha256, sha256(vulnerable));

      assert.equal(run(libload, ['mprotect', bad]).stdout.trim(), 'mprotect: EPERM', 'nor made executable later');
      await event('mmap_exec', (x) => x.library.path === bad && x.mmap.source === 'mprotect', 'the mprotect denial');
      assert.equal(run(libload, ['mprotect', good]).stdout.trim(), 'ok');
    });
  });

  describe('ptrace, bpf() program loads, user and group id changes', () => {
    test('ptrace: attach and traceme are seen; attaching to a protected program is denied', async (t) => {
      if (!requireKernel(t, '5.7', 'BPF LSM')) return;
      const ptracer = fixture('ptracer');
      const guarded = copy('/usr/bin/sleep', 'pt/guarded-sleep');
      const policy = await apply(`    - { name: watch, hook: ptrace, match: { binary: { path: ["${ptracer}"] } }, action: audit }
    - { name: guard, hook: ptrace, match: { target: { path: ["${guarded}"] } }, action: deny }
`);
      const victim = spawn('/usr/bin/sleep', ['30']);
      const protectedOne = spawn(guarded, ['30']);
      t.after(() => {
        victim.kill('SIGKILL');
        protectedOne.kill('SIGKILL');
      });
      for (const [child, path] of [[victim, '/usr/bin/sleep'], [protectedOne, guarded]] as const) {
        await event('exec', (e) => e.process.pid === child.pid && e.exec.path === path, `the exec of ${path}`);
      }
      assert.equal(run(ptracer, ['attach', String(victim.pid)]).stdout.trim(), 'ok');
      const a = await event('ptrace', (e) => e.ptrace.target.pid === victim.pid, 'the attach');
      assert.equal(a.ptrace.request, 'attach');
      assert.ok(a.ptrace.mode.includes('attach'));
      assert.equal(a.ptrace.target.exe, '/usr/bin/sleep');
      assert.equal(a.policy.audit?.rule, 'watch');
      assert.equal(run(ptracer, ['attach', String(protectedOne.pid)]).stdout.trim(), 'attach: EPERM');
      const g = await event('ptrace', (e) => e.ptrace.target.pid === protectedOne.pid && e.decision === 'denied', 'the denied attach');
      assert.deepEqual(g.policy.rule, { policy, rule: 'guard', action: 'deny', mode: 'enforce' });
      assert.equal(run(ptracer, ['traceme']).stdout.trim(), 'ok');
      const tm = await event('ptrace', (e) => e.ptrace.request === 'traceme', 'the traceme');
      assert.equal(tm.process.comm, 'ptracer');
      assert.equal(tm.ptrace.target.exe, ptracer, 'traceme: the target is the parent, the tracer');
    });

    test('bpf: a program load by another process is seen, and denied by binary or by program type', async (t) => {
      if (!requireKernel(t, '5.7', 'BPF LSM')) return;
      const loader = copy(fixture('bpfload'), 'bpf/loader');
      const other = copy(fixture('bpfload'), 'bpf/other');
      // Scoped to the test's loaders: nothing else in the VM is touched.
      const policy = await apply(`    - { name: no-loader, hook: bpf, match: { binary: { path: ["${loader}"] } }, action: deny }
    - { name: no-filters, hook: bpf, match: { binary: { path: ["${other}"] }, prog_type: [socket_filter], uid: [${NOBODY}] }, action: deny }
    - { name: watch, hook: bpf, match: { binary: { path: ["${other}"] } }, action: audit }
`);
      assert.equal(run(loader, ['krsi_denied']).stdout.trim(), 'bpf: EPERM');
      const d = await event('bpf', (e) => e.bpf.prog_name === 'krsi_denied', 'the denied load');
      assert.deepEqual(d.policy.rule, { policy, rule: 'no-loader', action: 'deny', mode: 'enforce' });
      assert.equal(d.bpf.prog_type, 'socket_filter');
      assert.equal(d.bpf.insn_count, 2);
      assert.equal(run(other, ['krsi_allowed']).stdout.trim(), 'ok', 'root loads it');
      const ok = await event('bpf', (e) => e.bpf.prog_name === 'krsi_allowed', 'the audited load');
      assert.equal(ok.decision, 'allowed');
      assert.equal(ok.policy.audit?.rule, 'watch');
      assert.equal(run(other, ['krsi_nobody'], { uid: NOBODY, gid: NOBODY }).stdout.trim(), 'bpf: EPERM');
      // Before Linux 6.9 (BPF tokens), unprivileged_bpf_disabled refuses an
      // unprivileged load before the LSM hook is called: krsi never sees it.
      if (atLeast('6.9')) {
        const n = await event('bpf', (e) => e.bpf.prog_name === 'krsi_nobody', 'the load by nobody');
        assert.equal(n.decision, 'denied', 'krsi decided, before the kernel looked at capabilities');
        assert.equal(n.policy.rule?.rule, 'no-filters');
      }
    });

    test('setid: a change to another user is denied by its new id; group changes are seen', async (t) => {
      if (!requireKernel(t, '5.10', 'task_fix_setgid')) return;
      const policy = await apply(`    - { name: not-nobody, hook: setid, match: { binary: { path: [/usr/bin/setpriv] }, new_uid: [${NOBODY}] }, action: deny }
    - { name: groups, hook: setid, match: { binary: { path: [/usr/bin/setpriv] }, new_gid: [${NOBODY}] }, action: audit }
`);
      const u = run('/usr/bin/setpriv', ['--reuid', String(NOBODY), '/usr/bin/true']);
      assert.notEqual(u.status, 0);
      assert.match(u.stderr, /Operation not permitted/);
      const ue = await event('setid', (e) => e.setid.kind === 'uid' && e.setid.new.uid === NOBODY, 'the denied setuid');
      assert.equal(ue.decision, 'denied');
      assert.deepEqual(ue.policy.rule, { policy, rule: 'not-nobody', action: 'deny', mode: 'enforce' });
      assert.equal(ue.setid.old.euid, 0);
      assert.equal(ue.setid.new.euid, NOBODY);
      const g = run('/usr/bin/setpriv', ['--regid', String(NOBODY), '--clear-groups', '/usr/bin/id', '-g']);
      assert.equal(g.status, 0, g.stderr);
      assert.equal(g.stdout.trim(), String(NOBODY));
      const ge = await event('setid', (e) => e.setid.kind === 'gid' && e.setid.new.egid === NOBODY, 'the setgid');
      assert.equal(ge.decision, 'allowed');
      assert.equal(ge.policy.audit?.rule, 'groups');
      assert.match(ge.setid.call, /^setres?gid$|^setregid$/);
    });
  });
});

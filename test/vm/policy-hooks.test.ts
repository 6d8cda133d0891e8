// End to end, in a kernel with BPF LSM: the policy hooks besides exec
// (file_open, file_unlink, mount, module_load, connect). One agent runs
// throughout; each group applies its policy through the control socket,
// performs the real actions, and checks the errno, the side effect and the
// event, which must name the policy and rule. These hooks report only
// noteworthy decisions (denied, would-deny, audit).
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ControlClient } from '../../src/control/client.js';
import { formatDevice, fromStatDev } from '../../src/events/devices.js';
import type { KrsiEvent } from '../../src/events/schema.js';
import { parsePolicyText } from '../../src/policy/load.js';
import type { AgentView } from '../lib/agent-process.js';
import { joinSharedAgent, type SuiteAgent } from '../lib/shared-agent.js';
import { requireKernel, POLICY_PROGRAMS, vmSuite } from '../lib/kernel.js';
import { repoPath } from '../lib/paths.js';

const fsmount = repoPath('build/test/fsmount');
const NOBODY = 65534;

type Kind = KrsiEvent['kind'];
type EventOf<K extends Kind> = Extract<KrsiEvent, { kind: K }>;

function errnoOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code;
  }
}

function identity(path: string): { dev: string; ino: string } {
  const st = statSync(path, { bigint: true });
  return { dev: formatDevice(fromStatDev(st.dev)), ino: st.ino.toString() };
}

function run(cmd: string, args: string[], opts: { uid?: number; gid?: number } = {}): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000, ...opts });
}

/** The fixture's verdict on a mount: "ok", or "STEP: ERRNO". */
function mountResult(args: string[]): string {
  const r = run(fsmount, args);
  assert.equal(r.error, undefined, `${fsmount} ran (make test-fixtures)`);
  return r.stdout.trim();
}

function isMounted(path: string): boolean {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[1] === path);
}

function loadedModules(): string[] {
  return readFileSync('/proc/modules', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '');
}

const rule = (policy: string, name: string, action = 'deny', mode = 'enforce') => ({ policy, rule: name, action, mode });

describe('policy hooks besides exec', { skip: vmSuite(POLICY_PROGRAMS.min, POLICY_PROGRAMS.feature) }, () => {
  const dir = mkdtempSync('/tmp/krsi-hooks-');
  const cleanups: Array<() => void> = [];
  let suite: SuiteAgent;
  let agent: AgentView;
  let control: ControlClient;

  /** Replaces the agent's policies with this YAML document; returns its generation. */
  async function apply(yaml: string): Promise<number> {
    const parsed = parsePolicyText(yaml, 'policy-hooks.test.yaml');
    assert.deepEqual(parsed.errors, [], 'the test policy is valid');
    const r = await control.applyPolicies(parsed.policies.map((p) => ({ policy: p.policy, source: 'policy-hooks.test' })));
    return r.generation;
  }

  async function event<K extends Kind>(kind: K, match: (e: EventOf<K>) => boolean, what: string): Promise<EventOf<K>> {
    return (await agent.waitFor((e) => e.kind === kind && match(e as EventOf<K>), what)) as EventOf<K>;
  }

  function eventsOf<K extends Kind>(kind: K, match: (e: EventOf<K>) => boolean): EventOf<K>[] {
    return agent.events.filter((e) => e.kind === kind && match(e as EventOf<K>)) as EventOf<K>[];
  }

  before(async () => {
    chmodSync(dir, 0o755);
    // What the mount tests need, loaded before any module_load rule exists.
    for (const m of ['loop', 'ext4']) run('modprobe', [m]);
    suite = await joinSharedAgent();
    ({ agent, control } = suite);
  });

  after(async () => {
    for (const c of cleanups.reverse()) {
      try {
        c();
      } catch {
        // best effort: the VM goes away anyway
      }
    }
    await suite?.leave();
  });

  describe('file_open and file_unlink', () => {
    const d = (p = ''): string => join(dir, 'files', p);
    const P = 'hooks-file';
    let generation = 0;

    before(async () => {
      for (const sub of ['prefix', 'glob/deep', 'not', 'uid', 'bin', 'audit', 'rate', 'unlink/mnt']) mkdirSync(d(sub), { recursive: true, mode: 0o755 });
      chmodSync(d(), 0o755);
      const files = ['exact', 'exact-sibling', 'prefix/a', 'prefixx', 'glob/deep/id.key', 'glob/id.txt', 'not/secret', 'not/ok', 'uid/f', 'bin/f', 'kill', 'audit/f', 'monitor', 'rate/f', 'unlink/keep', 'unlink/other'];
      for (const f of files) writeFileSync(d(f), `${f}\n`, { mode: 0o644 });
      generation = await apply(`apiVersion: krsi.dev/v1
kind: Policy
metadata: { name: ${P} }
spec:
  rules:
    - { name: exact, hook: file_open, match: { file: { path: ["${d('exact')}"] } }, action: deny }
    - { name: prefix, hook: file_open, match: { file: { prefix: ["${d('prefix/')}"] } }, action: deny }
    - { name: glob, hook: file_open, match: { file: { glob: ["${d('glob')}/**/*.key"] } }, action: deny }
    - name: tac-opens-only-usr-etc-and-ok
      hook: file_open
      match:
        binary: { path: [/usr/bin/tac] }
        file: { not: true, prefix: [/usr/, /etc/, "${d('not/ok')}"] }
      action: deny
    - { name: nobody, hook: file_open, match: { uid: [${NOBODY}], file: { prefix: ["${d('uid/')}"] } }, action: deny }
    - { name: not-by-cat, hook: file_open, match: { binary: { path: [/usr/bin/cat] }, file: { prefix: ["${d('bin/')}"] } }, action: deny }
    - { name: kill, hook: file_open, match: { file: { path: ["${d('kill')}"] } }, action: kill }
    - { name: audit, hook: file_open, match: { file: { prefix: ["${d('audit/')}"] } }, action: audit }
    - { name: monitor, hook: file_open, mode: monitor, match: { file: { path: ["${d('monitor')}"] } }, action: deny }
    - { name: rate, hook: file_open, match: { file: { prefix: ["${d('rate/')}"] } }, action: audit, rateLimit: { events: 2, perSeconds: 3600 } }
    - { name: keep, hook: file_unlink, match: { file: { path: ["${d('unlink/keep')}"] } }, action: deny }
    - { name: keep-glob, hook: file_unlink, match: { file: { glob: ["${d('unlink')}/**/*.keep"] } }, action: deny }
`);
    });

    test('open(2) of a denied path fails with EPERM: exact path, prefix, glob', async (t) => {
      if (!requireKernel(t, '5.7', 'BPF LSM')) return;
      assert.equal(errnoOf(() => openSync(d('exact'), 'r')), 'EPERM');
      assert.equal(errnoOf(() => openSync(d('exact'), 'a')), 'EPERM', 'whatever the flags');
      assert.equal(errnoOf(() => openSync(d('prefix/a'), 'r')), 'EPERM');
      assert.equal(errnoOf(() => openSync(d('glob/deep/id.key'), 'r')), 'EPERM');
      // Their neighbours open.
      for (const f of ['exact-sibling', 'prefixx', 'glob/id.txt']) closeSync(openSync(d(f), 'r'));
      assert.equal(readFileSync(d('exact-sibling'), 'utf8'), 'exact-sibling\n');

      const exact = await event('file_open', (e) => e.file.path === d('exact') && e.file.flag_names.includes('O_APPEND'), 'the exact-path denial');
      assert.equal(exact.decision, 'denied');
      assert.deepEqual(exact.policy.rule, rule(P, 'exact'));
      assert.equal(exact.policy.generation, generation);
      assert.deepEqual(exact.policy.matched, [`${P}/exact`]);
      assert.equal(exact.process.pid, process.pid);
      assert.deepEqual({ dev: exact.file.dev, ino: exact.file.ino }, identity(d('exact')));
      assert.ok(exact.file.flag_names.includes('O_WRONLY') && exact.file.access.includes('write'), JSON.stringify(exact.file));
      const prefix = await event('file_open', (e) => e.file.path === d('prefix/a'), 'the prefix denial');
      assert.deepEqual(prefix.policy.rule, rule(P, 'prefix'));
      const glob = await event('file_open', (e) => e.file.path === d('glob/deep/id.key'), 'the glob denial');
      assert.deepEqual(glob.policy.rule, rule(P, 'glob'));
      const quiet = [d('exact-sibling'), d('prefixx'), d('glob/id.txt')];
      assert.equal(eventsOf('file_open', (e) => quiet.includes(e.file.path)).length, 0, 'allowed opens are not reported');
    });

    test('not: true denies every path but the listed ones (scoped to tac)', async (t) => {
      if (!requireKernel(t, '5.7', 'BPF LSM')) return;
      const denied = run('/usr/bin/tac', [d('not/secret')]);
      assert.equal(denied.status, 1);
      assert.match(denied.stderr, /Operation not permitted/);
      const ok = run('/usr/bin/tac', [d('not/ok')]);
      assert.equal(ok.status, 0, ok.stderr);
      assert.equal(ok.stdout, 'not/ok\n');
      const e = await event('file_open', (x) => x.file.path === d('not/secret'), 'the not: true denial');
      assert.deepEqual(e.policy.rule, rule(P, 'tac-opens-only-usr-etc-and-ok'));
      assert.equal(e.process.comm, 'tac');
    });

    test('uid: the same open is denied to nobody and allowed to root', async (t) => {
      if (!requireKernel(t, '5.7', 'BPF LSM')) return;
      const asNobody = run('/usr/bin/cat', [d('uid/f')], { uid: NOBODY, gid: NOBODY });
      assert.equal(asNobody.status, 1);
      assert.match(asNobody.stderr, /Operation not permitted/);
      assert.equal(run('/usr/bin/cat', [d('uid/f')]).stdout, 'uid/f\n');
      const e = await event('file_open', (x) => x.file.path === d('uid/f'), 'the uid denial');
      assert.deepEqual(e.policy.rule, rule(P, 'nobody'));
      assert.equal(e.process.uid, NOBODY);
    });

    test('binary: cat may not open what head may (binary classes of non-exec hooks)', async (t) => {
      if (!requireKernel(t, '5.7', 'BPF LSM')) return;
      const cat = run('/usr/bin/cat', [d('bin/f')]);
      assert.equal(cat.status, 1);
      assert.match(cat.stderr, /Operation not permitted/);
      const head = run('/usr/bin/head', [d('bin/f')]);
      assert.equal(head.status, 0, head.stderr);
      assert.equal(head.stdout, 'bin/f\n');
      const e = await event('file_open', (x) => x.file.path === d('bin/f'), 'the binary denial');
      assert.deepEqual(e.policy.rule, rule(P, 'not-by-cat'));
      assert.equal(e.process.comm, 'cat');
      assert.equal(e.policy.context_unknown, false);
    });

    test('kill: the opener gets SIGKILL', async (t) => {
      if (!requireKernel(t, '5.7', 'BPF LSM')) return;
      const r = run('/usr/bin/cat', [d('kill')]);
      assert.equal(r.signal, 'SIGKILL');
      assert.equal(r.stdout, '');
      const e = await event('file_open', (x) => x.file.path === d('kill'), 'the kill');
      assert.equal(e.decision, 'denied');
      assert.deepEqual(e.policy.rule, rule(P, 'kill', 'kill'));
      assert.equal(e.policy.killed, true);
      assert.equal(e.process.pid, r.pid);
    });

    test('audit and monitor: the open succeeds and is reported', async (t) => {
      if (!requireKernel(t, '5.7', 'BPF LSM')) return;
      assert.equal(readFileSync(d('audit/f'), 'utf8'), 'audit/f\n');
      assert.equal(readFileSync(d('monitor'), 'utf8'), 'monitor\n');
      const audit = await event('file_open', (x) => x.file.path === d('audit/f'), 'the audit event');
      assert.equal(audit.decision, 'allowed');
      assert.deepEqual(audit.policy.audit, rule(P, 'audit', 'audit'));
      assert.equal(audit.policy.decided_by, 'default');
      assert.deepEqual(audit.file.access, ['read']);
      const monitor = await event('file_open', (x) => x.file.path === d('monitor'), 'the would-deny event');
      assert.equal(monitor.decision, 'allowed');
      assert.deepEqual(monitor.policy.would_deny, rule(P, 'monitor', 'deny', 'monitor'));
      assert.equal(monitor.policy.default_would_deny, false);
    });

    test("a rule's rate limit bounds its events, never its decisions", async (t) => {
      if (!requireKernel(t, '5.7', 'BPF LSM')) return;
      for (let i = 0; i < 6; i++) assert.equal(readFileSync(d('rate/f'), 'utf8'), 'rate/f\n');
      await event('file_open', (x) => x.file.path === d('rate/f'), 'a rate-limited audit event');
      const status = await control.status();
      assert.ok((status.counters['file_open']?.rate_limited ?? 0) >= 4, JSON.stringify(status.counters['file_open']));
      assert.equal(eventsOf('file_open', (x) => x.file.path === d('rate/f')).length, 2);
    });

    test('unlink(2) of a denied name fails with EPERM and the file stays; others go', async (t) => {
      if (!requireKernel(t, '5.7', 'BPF LSM')) return;
      const id = identity(d('unlink/keep'));
      assert.equal(errnoOf(() => unlinkSync(d('unlink/keep'))), 'EPERM');
      assert.ok(existsSync(d('unlink/keep')), 'the file is still there');
      unlinkSync(d('unlink/other'));
      assert.ok(!existsSync(d('unlink/other')));
      const e = await event('file_unlink', (x) => x.file.path === d('unlink/keep'), 'the unlink denial');
      assert.equal(e.decision, 'denied');
      assert.deepEqual(e.policy.rule, rule(P, 'keep'));
      assert.deepEqual({ dev: e.file.dev, ino: e.file.ino }, id);
      assert.equal(e.process.pid, process.pid);
      assert.equal(eventsOf('file_unlink', (x) => x.file.path === d('unlink/other')).length, 0);
    });

    test('the unlinked path is built across a mount point', async (t) => {
      if (!requireKernel(t, '5.7', 'BPF LSM')) return;
      assert.equal(mountResult(['--mount2', 'ramfs', 'krsi-unlink', d('unlink/mnt')]), 'ok');
      cleanups.push(() => run('umount', [d('unlink/mnt')]));
      writeFileSync(d('unlink/mnt/x.keep'), 'x');
      assert.equal(errnoOf(() => unlinkSync(d('unlink/mnt/x.keep'))), 'EPERM');
      assert.ok(existsSync(d('unlink/mnt/x.keep')));
      const e = await event('file_unlink', (x) => x.file.path === d('unlink/mnt/x.keep'), 'the denial inside the mount');
      assert.deepEqual(e.policy.rule, rule(P, 'keep-glob'));
      assert.equal(run('umount', [d('unlink/mnt')]).status, 0);
    });
  });

  describe('mount', () => {
    const d = (p = ''): string => join(dir, 'mount', p);
    const P = 'hooks-mount';
    const loops: string[] = [];
    let denied = '';

    before(async () => {
      for (const m of ['m1', 'm2']) mkdirSync(d(m), { recursive: true });
      for (const img of ['a.img', 'b.img']) {
        writeFileSync(d(img), Buffer.alloc(2 << 20));
        const mk = run('mkfs.ext2', ['-q', '-F', d(img)]);
        assert.equal(mk.status, 0, mk.stderr);
        const lo = run('losetup', ['-f', '--show', d(img)]);
        assert.equal(lo.status, 0, lo.stderr);
        const dev = lo.stdout.trim();
        loops.push(dev);
        cleanups.push(() => run('losetup', ['-d', dev]));
      }
      denied = formatDevice(fromStatDev(statSync(loops[0]!, { bigint: true }).rdev));
      await apply(`apiVersion: krsi.dev/v1
kind: Policy
metadata: { name: ${P} }
spec:
  rules:
    - { name: no-tmpfs, hook: mount, match: { fstype: [tmpfs] }, action: deny }
    - { name: src-glob, hook: mount, match: { source: { glob: ["krsi-src-*"] } }, action: deny }
    - { name: src-path, hook: mount, match: { source: { path: [/krsi/abs-source] } }, action: deny }
    - { name: loop-a, hook: mount, match: { device: ["${denied}"] }, action: deny }
    - { name: audit-ext2, hook: mount, match: { fstype: [ext2] }, action: audit }
`);
    });

    after(() => {
      for (const m of ['m1', 'm2']) if (isMounted(d(m))) run('umount', [d(m)]);
    });

    test('fstype: tmpfs cannot be mounted, by mount(2) or the new API; ramfs can', async (t) => {
      if (!requireKernel(t, '5.7', 'BPF LSM')) return;
      assert.equal(mountResult(['--mount2', 'tmpfs', 'krsi-t', d('m1')]), 'mount: EPERM');
      assert.equal(isMounted(d('m1')), false);
      assert.equal(mountResult(['tmpfs', '-', d('m1')]), 'create: EPERM');
      assert.equal(isMounted(d('m1')), false);
      assert.equal(mountResult(['--mount2', 'ramfs', 'krsi-ok', d('m1')]), 'ok');
      assert.equal(isMounted(d('m1')), true);
      assert.equal(run('umount', [d('m1')]).status, 0);

      const legacy = await event('mount', (e) => e.mount.fstype === 'tmpfs' && e.mount.source === 'krsi-t', 'the mount(2) denial');
      assert.equal(legacy.decision, 'denied');
      assert.deepEqual(legacy.policy.rule, rule(P, 'no-tmpfs'));
      assert.equal(legacy.mount.api, 'mount');
      assert.equal(legacy.mount.mountpoint, d('m1'));
      assert.equal(legacy.mount.block_device, null);
      assert.match(legacy.mount.device, /^0:\d+$/);
      const fresh = await event('mount', (e) => e.mount.fstype === 'tmpfs' && e.mount.api === 'fsconfig', 'the fsconfig denial');
      assert.deepEqual(fresh.policy.rule, rule(P, 'no-tmpfs'));
      assert.equal(fresh.mount.mountpoint, null, 'the new API names no mountpoint at create');
      assert.equal(fresh.mount.source, null, 'no source was set');
      assert.equal(eventsOf('mount', (e) => e.mount.source === 'krsi-ok').length, 0, 'an allowed mount is not reported');
    });

    test('source: by glob and exact path, whichever API sets it; a decoy context lends no source', async (t) => {
      if (!requireKernel(t, '5.7', 'BPF LSM')) return;
      assert.equal(mountResult(['--mount2', 'ramfs', 'krsi-src-1', d('m1')]), 'mount: EPERM');
      assert.equal(mountResult(['--mount2', 'ramfs', '/krsi/abs-source', d('m1')]), 'mount: EPERM');
      assert.equal(mountResult(['ramfs', 'krsi-src-2', d('m1')]), 'create: EPERM');
      // The source is set on one context, then another is given an innocent one.
      assert.equal(mountResult(['ramfs', 'krsi-src-3', d('m1'), 'innocent']), 'create: EPERM');
      assert.equal(isMounted(d('m1')), false);
      assert.equal(mountResult(['ramfs', 'krsi-fine', d('m1')]), 'ok');
      assert.equal(isMounted(d('m1')), true);
      assert.equal(run('umount', [d('m1')]).status, 0);

      const byGlob = await event('mount', (e) => e.mount.source === 'krsi-src-1', 'the source glob denial');
      assert.deepEqual(byGlob.policy.rule, rule(P, 'src-glob'));
      assert.equal(byGlob.mount.mountpoint, d('m1'));
      const byPath = await event('mount', (e) => e.mount.source === '/krsi/abs-source', 'the source path denial');
      assert.deepEqual(byPath.policy.rule, rule(P, 'src-path'));
      const api = await event('mount', (e) => e.mount.source === 'krsi-src-2', 'the fsconfig source denial');
      assert.equal(api.mount.api, 'fsconfig');
      assert.deepEqual(api.policy.rule, rule(P, 'src-glob'));
      const decoy = await event('mount', (e) => e.mount.source === 'krsi-src-3', 'the decoy case');
      assert.deepEqual(decoy.policy.rule, rule(P, 'src-glob'));
    });

    test('device: one loop device cannot be mounted, another can', async (t) => {
      if (!requireKernel(t, '5.7', 'BPF LSM')) return;
      const [a, b] = loops as [string, string];
      assert.equal(mountResult(['--mount2', 'ext2', a, d('m1')]), 'mount: EPERM');
      assert.equal(isMounted(d('m1')), false);
      assert.equal(mountResult(['--mount2', 'ext2', b, d('m2')]), 'ok');
      assert.equal(isMounted(d('m2')), true);
      assert.equal(run('umount', [d('m2')]).status, 0);

      const e = await event('mount', (x) => x.mount.source === a, 'the device denial');
      assert.deepEqual(e.policy.rule, rule(P, 'loop-a'));
      assert.equal(e.mount.block_device, denied);
      assert.equal(e.mount.fstype, 'ext2');
      const other = await event('mount', (x) => x.mount.source === b, 'the audited ext2 mount');
      assert.equal(other.decision, 'allowed');
      assert.deepEqual(other.policy.audit, rule(P, 'audit-ext2', 'audit'));
      assert.equal(other.mount.block_device, formatDevice(fromStatDev(statSync(b, { bigint: true }).rdev)));
    });
  });

  describe('module_load', () => {
    const d = (p = ''): string => join(dir, 'modules', p);
    const P = 'hooks-module';

    before(async () => {
      for (const m of ['dummy', 'veth']) run('modprobe', ['-r', m]);
      mkdirSync(d(), { recursive: true });
      // dummy under another name, uncompressed so that insmod uses finit_module(2).
      const src = run('modinfo', ['-n', 'dummy']).stdout.trim();
      assert.ok(src, 'modinfo finds dummy');
      if (src.endsWith('.xz')) {
        const x = spawnSync('xz', ['-dc', src], { maxBuffer: 64 << 20 });
        assert.equal(x.status, 0);
        writeFileSync(d('renamed.ko'), x.stdout);
      } else {
        copyFileSync(src, d('renamed.ko'));
      }
      await apply(`apiVersion: krsi.dev/v1
kind: Policy
metadata: { name: ${P} }
spec:
  rules:
    - { name: no-dummy, hook: module_load, match: { module: [dummy] }, action: deny }
    - { name: audit-veth, hook: module_load, match: { module: [veth] }, action: audit }
    - { name: no-copies, hook: module_load, match: { file: { prefix: ["${d()}/"] } }, action: deny }
`);
    });

    after(() => {
      for (const m of ['dummy', 'veth']) run('modprobe', ['-r', m]);
    });

    test('module: modprobe of a denied module fails with EPERM and loads nothing', async (t) => {
      if (!requireKernel(t, '5.7', 'BPF LSM')) return;
      const r = run('modprobe', ['dummy']);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /Operation not permitted/);
      assert.ok(!loadedModules().includes('dummy'));
      const e = await event('module_load', (x) => x.module.name === 'dummy', 'the module denial');
      assert.equal(e.decision, 'denied');
      assert.deepEqual(e.policy.rule, rule(P, 'no-dummy'));
      assert.equal(e.process.comm, 'modprobe');
      // kmod hands an uncompressed module to finit_module(2) and decompresses a
      // compressed one itself for init_module(2): 6.12's modules are .ko.xz.
      if (e.module.source === 'file') {
        assert.match(e.module.path ?? '', /\/dummy\.ko(\.xz|\.zst|\.gz)?$/);
        assert.match(e.module.ino ?? '', /^\d+$/);
      } else {
        assert.equal(e.module.path, null);
        assert.equal(e.module.ino, null);
      }
    });

    test('module: an audited module loads and is reported with its name', async (t) => {
      if (!requireKernel(t, '5.7', 'BPF LSM')) return;
      const r = run('modprobe', ['veth']);
      assert.equal(r.status, 0, r.stderr);
      assert.ok(loadedModules().includes('veth'));
      const e = await event('module_load', (x) => x.module.name === 'veth', 'the audit event');
      assert.equal(e.decision, 'allowed');
      assert.deepEqual(e.policy.audit, rule(P, 'audit-veth', 'audit'));
      assert.equal(run('modprobe', ['-r', 'veth']).status, 0);
    });

    test('file: insmod of a module file under a denied directory fails, whatever its name', async (t) => {
      if (!requireKernel(t, '5.7', 'BPF LSM')) return;
      const r = run('insmod', [d('renamed.ko')]);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /Operation not permitted/);
      assert.ok(!loadedModules().includes('dummy'));
      const e = await event('module_load', (x) => x.module.path === d('renamed.ko'), 'the file denial');
      assert.deepEqual(e.policy.rule, rule(P, 'no-copies'));
      assert.equal(e.module.name, 'renamed', 'a file load is named by its file');
      assert.equal(e.module.source, 'file');
      assert.deepEqual({ dev: e.module.dev, ino: e.module.ino }, identity(d('renamed.ko')));
    });
  });

  describe('connect', () => {
    const P = 'hooks-connect';
    const accepted = new Map<Server, number>();
    let any: Server; // 0.0.0.0: reachable at every address of 127.0.0.0/8
    let v4: Server; // 127.0.0.1, on a port of its own
    let v6: Server; // ::1
    const port = (s: Server): number => (s.address() as AddressInfo).port;
    const count = (s: Server): number => accepted.get(s) ?? 0;

    async function listen(host: string): Promise<Server> {
      const s = createServer((sock) => {
        accepted.set(s, count(s) + 1);
        sock.destroy();
      });
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(0, host, () => resolve());
      });
      return s;
    }

    /** Connects from this process: undefined on success, else the errno code. */
    function tryConnect(host: string, p: number): Promise<string | undefined> {
      return new Promise((resolve) => {
        const c = connect({ host, port: p });
        c.once('connect', () => {
          c.destroy();
          resolve(undefined);
        });
        c.once('error', (err: NodeJS.ErrnoException) => resolve(err.code));
      });
    }

    /** The connections a server has accepted, once n have arrived or `ms` have passed. */
    async function seen(s: Server, n: number, ms = 1000): Promise<number> {
      for (let waited = 0; waited < ms && count(s) < n; waited += 20) await new Promise((r) => setTimeout(r, 20));
      return count(s);
    }

    before(async () => {
      any = await listen('0.0.0.0');
      v4 = await listen('127.0.0.1');
      v6 = await listen('::1');
      await apply(`apiVersion: krsi.dev/v1
kind: Policy
metadata: { name: ${P} }
spec:
  lists:
    - { name: blocked, type: address }
  rules:
    - { name: net, hook: connect, match: { address: [127.0.0.2/31] }, action: deny }
    - { name: port, hook: connect, match: { port: [${port(v4)}] }, action: deny }
    - { name: v6, hook: connect, match: { address: ["::1/128"], port: [${port(v6)}] }, action: deny }
    - { name: listed, hook: connect, match: { address: { list: [blocked] } }, action: deny }
    - { name: audit, hook: connect, match: { address: [127.0.0.5] }, action: audit }
`);
    });

    after(async () => {
      for (const s of [any, v4, v6]) if (s) await new Promise((r) => s.close(r));
    });

    test('address: a CIDR denies its addresses with EPERM and the server sees nothing; others connect', async (t) => {
      if (!requireKernel(t, '5.7', 'BPF LSM')) return;
      const before = count(any);
      assert.equal(await tryConnect('127.0.0.3', port(any)), 'EPERM');
      assert.equal(await tryConnect('127.0.0.1', port(any)), undefined);
      assert.equal(await seen(any, before + 1), before + 1, 'only the allowed connection arrived');
      const e = await event('connect', (x) => x.connect.address === '127.0.0.3', 'the CIDR denial');
      assert.equal(e.decision, 'denied');
      assert.deepEqual(e.policy.rule, rule(P, 'net'));
      assert.deepEqual(e.connect, { family: 'inet', address: '127.0.0.3', port: port(any), socket_type: 'stream', protocol: 6 });
      assert.equal(e.process.pid, process.pid);
    });

    test('port: one port is denied, the same address on another port is not', async (t) => {
      if (!requireKernel(t, '5.7', 'BPF LSM')) return;
      assert.equal(await tryConnect('127.0.0.1', port(v4)), 'EPERM');
      assert.equal(await seen(v4, 1, 200), 0, 'the server saw nothing');
      const e = await event('connect', (x) => x.connect.port === port(v4), 'the port denial');
      assert.deepEqual(e.policy.rule, rule(P, 'port'));
    });

    test('IPv6: an address and a port of ::1', async (t) => {
      if (!requireKernel(t, '5.7', 'BPF LSM')) return;
      assert.equal(await tryConnect('::1', port(v6)), 'EPERM');
      assert.equal(await seen(v6, 1, 200), 0, 'the server saw nothing');
      const e = await event('connect', (x) => x.connect.family === 'inet6' && x.connect.port === port(v6), 'the IPv6 denial');
      assert.equal(e.connect.address, '::1');
      assert.deepEqual(e.policy.rule, rule(P, 'v6'));
    });

    test('a dynamic address list, changed through the control socket, takes effect at once', async (t) => {
      if (!requireKernel(t, '5.7', 'BPF LSM')) return;
      assert.equal(await tryConnect('127.0.0.4', port(any)), undefined);
      await control.listAdd('blocked', ['127.0.0.4']);
      assert.equal(await tryConnect('127.0.0.4', port(any)), 'EPERM');
      const e = await event('connect', (x) => x.connect.address === '127.0.0.4', 'the list denial');
      assert.deepEqual(e.policy.rule, rule(P, 'listed'));
      await control.listRemove('blocked', ['127.0.0.4']);
      assert.equal(await tryConnect('127.0.0.4', port(any)), undefined);
    });

    test('audit: the connection is made and reported', async (t) => {
      if (!requireKernel(t, '5.7', 'BPF LSM')) return;
      const before = count(any);
      assert.equal(await tryConnect('127.0.0.5', port(any)), undefined);
      assert.equal(await seen(any, before + 1), before + 1);
      const e = await event('connect', (x) => x.connect.address === '127.0.0.5', 'the audit event');
      assert.equal(e.decision, 'allowed');
      assert.deepEqual(e.policy.audit, rule(P, 'audit', 'audit'));
    });

    test('default deny, scoped by allow rules: bash may reach one port only', async (t) => {
      if (!requireKernel(t, '5.7', 'BPF LSM')) return;
      const D = 'hooks-connect-default';
      const generation = await apply(`apiVersion: krsi.dev/v1
kind: Policy
metadata: { name: ${D} }
spec:
  defaults: { connect: deny }
  rules:
    - { name: not-bash, hook: connect, match: { binary: { path: [/usr/bin/bash], not: true } }, action: allow }
    - { name: bash-to-any, hook: connect, match: { binary: { path: [/usr/bin/bash] }, port: [${port(any)}] }, action: allow }
`);
      try {
        const ok = run('/usr/bin/bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${port(any)}`]);
        assert.equal(ok.status, 0, ok.stderr);
        const refused = run('/usr/bin/bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${port(v4)}`]);
        assert.equal(refused.status, 1);
        assert.match(refused.stderr, /Operation not permitted/);
        assert.equal(await tryConnect('127.0.0.1', port(v4)), undefined, 'this process is not bash');

        const e = await event('connect', (x) => x.policy.generation === generation && x.connect.port === port(v4), 'the default denial');
        assert.equal(e.decision, 'denied');
        assert.equal(e.policy.decided_by, 'default');
        assert.equal(e.policy.default, 'deny');
        assert.equal(e.policy.rule, null);
        assert.equal(e.process.comm, 'bash');
      } finally {
        await apply(`apiVersion: krsi.dev/v1
kind: Policy
metadata: { name: hooks-none }
spec: {}
`);
      }
    });
  });

  test('the kernel counted what each hook denied, and lost no record', async (t) => {
    if (!requireKernel(t, '5.7', 'BPF LSM')) return;
    const c = await suite.countersSince();
    for (const hook of ['file_open', 'path_unlink', 'sb_kern_mount', 'socket_connect']) {
      assert.ok((c[hook]?.denied ?? 0) > 0, `${hook} denied something: ${JSON.stringify(c[hook])}`);
    }
    assert.ok((c['kernel_read_file']?.denied ?? 0) + (c['kernel_post_load_data']?.denied ?? 0) >= 2, 'module loads were denied');
    assert.equal(Object.values(c).reduce((n, h) => n + h.dropped, 0), 0);
  });
});

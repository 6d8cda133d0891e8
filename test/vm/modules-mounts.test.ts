// End to end, in a kernel with BPF LSM: kernel modules (issue 4 item 3) and
// block-device mounts after the lock point (item 4). The shared agent
// (test/lib/shared-agent.ts) runs throughout; each group applies its policy
// through the control socket and
// performs the real thing: insmod of modules from the VM kernel's own tree
// (6.1: .ko files; 6.12: .ko.xz, which kmod decompresses), a module that
// hides itself (test/fixtures/hide, built per kernel by `make test-modules`),
// and mounts of QEMU-emulated USB sticks (`krsi vm --usb-stick`, given by
// the Makefile: a removable one with vfat, a fixed one with ext4) and of
// loop devices, before and after `krsi lock-point`.
//
// The lock point cannot be undone: the mount group, which reaches it, runs last.
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ControlClient } from '../../src/control/client.js';
import { formatDevice, fromStatDev } from '../../src/events/devices.js';
import type { KrsiEvent } from '../../src/events/schema.js';
import { parsePolicyText } from '../../src/policy/load.js';
import type { AgentView } from '../lib/agent-process.js';
import { requireKernel, POLICY_PROGRAMS, vmSuite } from '../lib/kernel.js';
import { repoPath } from '../lib/paths.js';
import { joinSharedAgent, type SuiteAgent } from '../lib/shared-agent.js';

const fsmount = repoPath('build/test/fsmount');
const hideKo = repoPath(`build/test/modules/${release()}/krsi_hide.ko`);

type Kind = KrsiEvent['kind'];
type EventOf<K extends Kind> = Extract<KrsiEvent, { kind: K }>;

function run(cmd: string, args: string[]): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000 });
}

function loadedModules(): string[] {
  return readFileSync('/proc/modules', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '');
}

function isMounted(path: string): boolean {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[1] === path);
}

/** The fixture's verdict on a mount: "ok", or "STEP: ERRNO". */
function mountResult(args: string[]): string {
  const r = run(fsmount, args);
  assert.equal(r.error, undefined, `${fsmount} ran (make test-fixtures)`);
  return r.stdout.trim();
}

function deviceOf(path: string): string {
  return formatDevice(fromStatDev(statSync(path, { bigint: true }).rdev));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Unloads whatever an earlier, failed test may have left loaded. */
function unload(...names: string[]): void {
  for (const m of names) if (loadedModules().includes(m)) run('rmmod', [m]);
}

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

/** A module of the running kernel's tree: its file, and the bytes the kernel gets (kmod decompresses .ko.xz). */
function treeModule(name: string): { file: string; image: Buffer } {
  const file = run('modinfo', ['-n', name]).stdout.trim();
  assert.ok(file.startsWith(`/lib/modules/${release()}/`), `modinfo finds ${name} in the kernel's tree (${file})`);
  if (!file.endsWith('.xz')) return { file, image: readFileSync(file) };
  const x = spawnSync('xz', ['-dc', file], { maxBuffer: 64 << 20 });
  assert.equal(x.status, 0, `xz -dc ${file}`);
  return { file, image: x.stdout };
}

const rule = (policy: string, name: string, action = 'deny', mode = 'enforce') => ({ policy, rule: name, action, mode });

describe('kernel modules and mounts', { skip: vmSuite(POLICY_PROGRAMS.min, POLICY_PROGRAMS.feature) }, () => {
  const dir = mkdtempSync('/tmp/krsi-modmount-');
  const cleanups: Array<() => void> = [];
  let suite: SuiteAgent;
  let agent: AgentView;
  let control: ControlClient;

  async function apply(yaml: string): Promise<number> {
    const parsed = parsePolicyText(yaml, 'modules-mounts.test.yaml');
    assert.deepEqual(parsed.errors, [], 'the test policy is valid');
    const r = await control.applyPolicies(parsed.policies.map((p) => ({ policy: p.policy, source: 'modules-mounts.test' })));
    return r.generation;
  }

  async function event<K extends Kind>(kind: K, match: (e: EventOf<K>) => boolean, what: string, timeoutMs?: number): Promise<EventOf<K>> {
    return (await agent.waitFor((e) => e.kind === kind && match(e as EventOf<K>), what, timeoutMs)) as EventOf<K>;
  }

  function eventsOf<K extends Kind>(kind: K, match: (e: EventOf<K>) => boolean): EventOf<K>[] {
    return agent.events.filter((e) => e.kind === kind && match(e as EventOf<K>)) as EventOf<K>[];
  }

  before(async () => {
    // What the mount group needs, loaded before any module rule exists: the
    // USB host controller and storage drivers (the sticks appear as /dev/sdX),
    // the file systems and their code pages, loop devices.
    for (const m of ['xhci_pci', 'usb_storage', 'sd_mod', 'vfat', 'nls_cp437', 'nls_ascii', 'nls_utf8', 'ext4', 'loop']) run('modprobe', [m]);
    for (const m of ['nlmon', 'ifb', 'dummy']) run('modprobe', ['-r', m]);
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

  describe('module_load', () => {
    const P = 'modules';
    const d = (p = ''): string => join(dir, 'modules', p);
    let ifb: { file: string; image: Buffer };
    let nlmon: { file: string; image: Buffer };

    before(async () => {
      mkdirSync(d(), { recursive: true });
      ifb = treeModule('ifb');
      nlmon = treeModule('nlmon');
      await apply(`apiVersion: krsi.dev/v1
kind: Policy
metadata: { name: ${P} }
spec:
  lists:
    - { name: bad-module-content, type: sha256 }
  rules:
    - { name: audit-loads, hook: module_load, action: audit }
    - { name: no-nlmon, hook: module_load, match: { module: [nlmon] }, action: deny }
    - { name: bad-content, hook: module_load, match: { sha256: { list: [bad-module-content] } }, action: deny }
`);
    });

    after(() => {
      for (const m of ['nlmon', 'ifb', 'dummy']) run('modprobe', ['-r', m]);
    });

    test('load event: name, source, file, sha256 of a module from the kernel tree', async (t) => {
      if (!requireKernel(t, '6.0', 'bpf_ima_file_hash, bpf_loop in LSM programs')) return;
      unload('ifb', 'nlmon', 'dummy');
      const r = run('insmod', [ifb.file]);
      assert.equal(r.status, 0, r.stderr);
      assert.ok(loadedModules().includes('ifb'));
      const e = await event('module_load', (x) => x.module.name === 'ifb', 'the ifb load');
      assert.equal(e.decision, 'allowed');
      assert.deepEqual(e.policy.audit, rule(P, 'audit-loads', 'audit'));
      assert.equal(e.process.comm, 'insmod');
      assert.equal(e.module.sha256, sha256(ifb.image), 'the digest of the bytes the kernel got');
      assert.equal(e.module.size, ifb.image.length);
      // An uncompressed .ko goes to finit_module(2): the kernel reads the file,
      // IMA hashes it. A .ko.xz is decompressed by kmod and handed to
      // init_module(2): no file, the BPF program hashes the image.
      if (ifb.file.endsWith('.ko')) {
        assert.equal(e.module.source, 'file');
        // d_path: /lib is a symbolic link to /usr/lib on Debian.
        assert.equal(e.module.path, realpathSync(ifb.file));
        assert.equal(e.module.ino, statSync(ifb.file, { bigint: true }).ino.toString());
      } else {
        assert.equal(e.module.source, 'memory');
        assert.equal(e.module.path, null);
      }
      t.diagnostic(`Linux ${release()}: ${ifb.file} loaded by ${e.module.source}, sha256 ${e.module.sha256}`);
      t.diagnostic(`sample: ${JSON.stringify(e)}`);
      assert.equal(run('rmmod', ['ifb']).status, 0);
    });

    test('deny by name: insmod fails with EPERM, the module is absent', async (t) => {
      if (!requireKernel(t, '6.0', 'bpf_ima_file_hash, bpf_loop in LSM programs')) return;
      unload('ifb', 'nlmon', 'dummy');
      const r = run('insmod', [nlmon.file]);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /Operation not permitted/);
      assert.ok(!loadedModules().includes('nlmon'));
      assert.ok(!existsSync('/sys/module/nlmon'));
      const e = await event('module_load', (x) => x.module.name === 'nlmon', 'the nlmon denial');
      assert.equal(e.decision, 'denied');
      assert.deepEqual(e.policy.rule, rule(P, 'no-nlmon'));
      assert.equal(e.module.sha256, sha256(nlmon.image));
    });

    test('deny by sha256 list: the content is refused under any name, from file or memory', async (t) => {
      if (!requireKernel(t, '6.0', 'bpf_ima_file_hash, bpf_loop in LSM programs')) return;
      unload('ifb', 'nlmon', 'dummy');
      const digest = sha256(ifb.image);
      await control.listAdd('bad-module-content', [digest]);
      const r = run('insmod', [ifb.file]);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /Operation not permitted/);
      assert.ok(!loadedModules().includes('ifb'));
      const e = await event('module_load', (x) => x.module.name === 'ifb' && x.decision === 'denied', 'the ifb denial by content');
      assert.deepEqual(e.policy.rule, rule(P, 'bad-content'));
      assert.equal(e.module.sha256, digest);
      // The same bytes as a plain file under another name: finit_module(2),
      // IMA's digest of the file, the same content, denied too.
      writeFileSync(d('innocent.ko'), ifb.image);
      const copy = run('insmod', [d('innocent.ko')]);
      assert.notEqual(copy.status, 0);
      assert.match(copy.stderr, /Operation not permitted/);
      assert.ok(!loadedModules().includes('ifb'));
      const c = await event('module_load', (x) => x.module.path === d('innocent.ko'), 'the renamed copy denial');
      assert.equal(c.decision, 'denied');
      assert.equal(c.module.source, 'file');
      assert.equal(c.module.name, 'innocent');
      assert.equal(c.module.sha256, digest, 'IMA digest of the file = the image digest');
      assert.deepEqual(c.policy.rule, rule(P, 'bad-content'));
      // Off the list: loads again.
      await control.listRemove('bad-module-content', [digest]);
      const again = run('insmod', [ifb.file]);
      assert.equal(again.status, 0, again.stderr);
      assert.equal(run('rmmod', ['ifb']).status, 0);
    });

    test('allow list: only listed modules load; adding one lets it in', async (t) => {
      if (!requireKernel(t, '6.0', 'bpf_ima_file_hash, bpf_loop in LSM programs')) return;
      unload('ifb', 'nlmon', 'dummy');
      const A = 'modules-allow';
      await apply(`apiVersion: krsi.dev/v1
kind: Policy
metadata: { name: ${A} }
spec:
  lists:
    - { name: allowed-modules, type: module, entries: [dummy] }
  rules:
    - { name: only-allowed, hook: module_load, match: { module: { not: true, list: [allowed-modules] } }, action: deny }
`);
      const dummy = treeModule('dummy');
      const ok = run('insmod', [dummy.file]);
      assert.equal(ok.status, 0, ok.stderr);
      assert.ok(loadedModules().includes('dummy'));
      assert.equal(eventsOf('module_load', (x) => x.module.name === 'dummy' && x.decision === 'denied').length, 0);
      const denied = run('insmod', [ifb.file]);
      assert.notEqual(denied.status, 0);
      assert.match(denied.stderr, /Operation not permitted/);
      assert.ok(!loadedModules().includes('ifb'));
      const e = await event('module_load', (x) => x.module.name === 'ifb' && x.policy.rule?.policy === A, 'the unlisted denial');
      assert.equal(e.decision, 'denied');
      assert.deepEqual(e.policy.rule, rule(A, 'only-allowed'));
      await control.listAdd('allowed-modules', ['ifb']);
      const now = run('insmod', [ifb.file]);
      assert.equal(now.status, 0, now.stderr);
      assert.ok(loadedModules().includes('ifb'));
      for (const m of ['ifb', 'dummy']) assert.equal(run('rmmod', [m]).status, 0);
    });

    test('hidden module: loaded, then gone from /proc/modules and /sys/module with no unload: reported', async (t) => {
      if (!requireKernel(t, '6.0', 'bpf_ima_file_hash, bpf_loop in LSM programs')) return;
      unload('ifb', 'nlmon', 'dummy');
      assert.ok(existsSync(hideKo), `${hideKo} is built (make test-modules)`);
      await apply(`apiVersion: krsi.dev/v1
kind: Policy
metadata: { name: modules-audit }
spec:
  rules:
    - { name: audit-loads, hook: module_load, action: audit }
`);
      const r = run('insmod', [hideKo]);
      assert.equal(r.status, 0, r.stderr);
      // It hid itself in its init: the real effect, checked first.
      assert.ok(!loadedModules().includes('krsi_hide'), 'absent from /proc/modules');
      assert.ok(!existsSync('/sys/module/krsi_hide'), 'absent from /sys/module');
      assert.ok(!readdirSync('/sys/module').includes('krsi_hide'));
      const load = await event('module_load', (x) => x.module.name === 'krsi_hide', 'the krsi_hide load');
      assert.equal(load.decision, 'allowed');
      assert.equal(load.module.source, 'file');
      assert.equal(load.module.sha256, sha256(readFileSync(hideKo)));
      const h = await event('module_hidden', (x) => x.module.name === 'krsi_hide', 'the hidden-module report', 15_000);
      assert.deepEqual([...h.module.missing_from].sort(), ['proc_modules', 'sysfs']);
      assert.ok(h.module.loaded_at, 'when it was loaded');
      const loadedAt = Date.parse(h.module.loaded_at);
      assert.ok(Math.abs(loadedAt - Date.parse(load.time)) < 5_000, `loaded_at ${h.module.loaded_at} is the load's time ${load.time}`);
      assert.ok(Date.parse(h.time) >= loadedAt);
      assert.ok(h.module.taints.includes('O'), `out-of-tree taint: ${h.module.taints.join('')}`);
      assert.equal(h.process?.comm, 'insmod');
      t.diagnostic(`sample: ${JSON.stringify(h)}`);
      // Reported once, not at every check.
      await sleep(6_000);
      assert.equal(eventsOf('module_hidden', (x) => x.module.name === 'krsi_hide').length, 1);
      // A module that is loaded and unloaded normally is never reported.
      const dummy = treeModule('dummy');
      assert.equal(run('insmod', [dummy.file]).status, 0);
      assert.equal(run('rmmod', ['dummy']).status, 0);
      await sleep(1_000);
      const others = eventsOf('module_hidden', (x) => x.module.name !== 'krsi_hide');
      assert.deepEqual(others, [], 'no other module reported hidden');
    });
  });

  describe('mounts and the lock point', () => {
    const P = 'mounts';
    const d = (p = ''): string => join(dir, 'mount', p);
    const loops: string[] = [];
    let removable = ''; // /dev/sdX of the removable vfat stick
    let fixed = ''; // /dev/sdX of the fixed ext4 stick

    /** The USB sticks, by /sys/block/sdX/removable, once the USB bus has enumerated them. */
    async function sticks(): Promise<void> {
      const want = (process.env['KRSI_VM_USB_STICKS'] ?? '').split(',').filter(Boolean);
      assert.deepEqual(want, ['removable', 'fixed'], 'krsi vm --usb-stick build/test/usb-vfat.img,removable --usb-stick build/test/usb-ext4.img (the Makefile gives them)');
      for (let i = 0; i < 120; i++) {
        const disks = readdirSync('/sys/block').filter((b) => /^sd[a-z]$/.test(b) && Number(readFileSync(`/sys/block/${b}/size`, 'utf8')) > 0);
        if (disks.length >= 2 && disks.every((b) => existsSync(`/dev/${b}`))) {
          for (const b of disks) {
            if (readFileSync(`/sys/block/${b}/removable`, 'utf8').trim() === '1') removable = `/dev/${b}`;
            else fixed = `/dev/${b}`;
          }
          return;
        }
        await sleep(500);
      }
      assert.fail(`the USB sticks did not appear: /sys/block has ${readdirSync('/sys/block').join(' ')}`);
    }

    before(async () => {
      for (const m of ['m1', 'm2', 'm3', 'm4']) mkdirSync(d(m), { recursive: true });
      await sticks();
      for (const img of ['a.img', 'b.img']) {
        writeFileSync(d(img), Buffer.alloc(4 << 20));
        const mk = run('mkfs.ext4', ['-q', '-F', d(img)]);
        assert.equal(mk.status, 0, mk.stderr);
        const lo = run('losetup', ['-f', '--show', d(img)]);
        assert.equal(lo.status, 0, lo.stderr);
        const dev = lo.stdout.trim();
        loops.push(dev);
        cleanups.push(() => run('losetup', ['-d', dev]));
      }
      await apply(`apiVersion: krsi.dev/v1
kind: Policy
metadata: { name: ${P} }
spec:
  rules:
    - { name: no-removable-after-boot, hook: mount, afterLockPoint: true, match: { removable: true }, action: deny }
    - { name: no-usb-after-boot, hook: mount, afterLockPoint: true, match: { bus: [usb] }, action: deny }
    - { name: no-loop-a-after-boot, hook: mount, afterLockPoint: true, match: { device: ["${deviceOf(loops[0]!)}"], fstype: [ext4] }, action: deny }
`);
    });

    after(() => {
      for (const m of ['m1', 'm2', 'm3', 'm4']) if (isMounted(d(m))) run('umount', [d(m)]);
    });

    test('the sticks are USB disks: one removable, one fixed', () => {
      assert.ok(removable && fixed, `removable ${removable}, fixed ${fixed}`);
      for (const dev of [removable, fixed]) {
        const sys = readlinkSync(`/sys/block/${dev.slice(5)}`);
        assert.match(sys, /\/usb\d+\//, `${dev} hangs below a USB bus: ${sys}`);
      }
    });

    test('before the lock point: USB sticks and loop devices mount', async (t) => {
      if (!requireKernel(t, '6.0', 'bpf_loop in LSM programs')) return;
      for (const [fstype, dev, m] of [
        ['vfat', removable, 'm1'],
        ['ext4', fixed, 'm2'],
        ['ext4', loops[0]!, 'm3'],
        ['ext4', loops[1]!, 'm4'],
      ] as const) {
        assert.equal(mountResult(['--mount2', fstype, dev, d(m)]), 'ok', `${fstype} ${dev}`);
        assert.ok(isMounted(d(m)));
        assert.equal(run('umount', [d(m)]).status, 0);
      }
      assert.equal(eventsOf('mount', (e) => e.decision === 'denied').length, 0, 'nothing denied before the lock point');
    });

    test('krsi lock-point: one-way', async () => {
      const r = agent.krsi('lock-point');
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^lock point reached at \d{4}-/);
      const again = agent.krsi('lock-point', '--json');
      assert.equal(again.status, 0, again.stderr);
      assert.equal((JSON.parse(again.stdout) as { already: boolean }).already, true);
      assert.equal((await control.status()).lockPoint.reached, true);
    });

    test('after it: the removable USB stick is refused (EPERM), by mount(2) and by fsconfig', async (t) => {
      if (!requireKernel(t, '6.0', 'bpf_loop in LSM programs')) return;
      assert.equal(mountResult(['--mount2', 'vfat', removable, d('m1')]), 'mount: EPERM');
      assert.equal(isMounted(d('m1')), false);
      assert.equal(mountResult(['vfat', removable, d('m1')]), 'create: EPERM');
      assert.equal(isMounted(d('m1')), false);
      const e = await event('mount', (x) => x.mount.source === removable && x.mount.api === 'mount', 'the removable stick denial');
      assert.equal(e.decision, 'denied');
      assert.equal(e.policy.rule?.policy, P);
      assert.ok(['no-removable-after-boot', 'no-usb-after-boot'].includes(e.policy.rule?.rule ?? ''), `rule ${e.policy.rule?.rule}`);
      assert.equal(e.mount.fstype, 'vfat');
      assert.equal(e.mount.block_device, deviceOf(removable));
      assert.equal(e.mount.removable, true);
      assert.ok(e.mount.bus?.includes('usb'), `buses ${e.mount.bus?.join(',')}`);
      assert.ok(e.mount.bus?.includes('scsi'), `buses ${e.mount.bus?.join(',')}`);
      assert.equal(e.mount.mountpoint, d('m1'));
      t.diagnostic(`sample: ${JSON.stringify(e)}`);
      const api = await event('mount', (x) => x.mount.source === removable && x.mount.api === 'fsconfig', 'the fsconfig denial');
      assert.equal(api.decision, 'denied');
      assert.equal(api.mount.removable, true);
    });

    test('after it: the fixed USB stick is refused by its bus', async (t) => {
      if (!requireKernel(t, '6.0', 'bpf_loop in LSM programs')) return;
      assert.equal(mountResult(['--mount2', 'ext4', fixed, d('m2')]), 'mount: EPERM');
      assert.equal(isMounted(d('m2')), false);
      const e = await event('mount', (x) => x.mount.source === fixed, 'the fixed stick denial');
      assert.equal(e.decision, 'denied');
      assert.deepEqual(e.policy.rule, rule(P, 'no-usb-after-boot'));
      assert.equal(e.mount.fstype, 'ext4');
      assert.equal(e.mount.block_device, deviceOf(fixed));
      assert.equal(e.mount.removable, false);
      assert.ok(e.mount.bus?.includes('usb'), `buses ${e.mount.bus?.join(',')}`);
    });

    test('after it: loop devices per rule; tmpfs, proc and ramfs still mount', async (t) => {
      if (!requireKernel(t, '6.0', 'bpf_loop in LSM programs')) return;
      assert.equal(mountResult(['--mount2', 'ext4', loops[0]!, d('m3')]), 'mount: EPERM');
      assert.equal(isMounted(d('m3')), false);
      assert.equal(mountResult(['--mount2', 'ext4', loops[1]!, d('m4')]), 'ok');
      assert.ok(isMounted(d('m4')));
      assert.equal(run('umount', [d('m4')]).status, 0);
      const e = await event('mount', (x) => x.mount.source === loops[0], 'the loop denial');
      assert.deepEqual(e.policy.rule, rule(P, 'no-loop-a-after-boot'));
      assert.equal(e.mount.block_device, deviceOf(loops[0]!));
      assert.equal(e.mount.removable, false);
      assert.ok(!e.mount.bus?.includes('usb'), `a loop device is on no USB bus: ${e.mount.bus?.join(',')}`);
      for (const fstype of ['tmpfs', 'proc', 'ramfs']) {
        assert.equal(mountResult(['--mount2', fstype, `krsi-${fstype}`, d('m1')]), 'ok', fstype);
        assert.equal(run('umount', [d('m1')]).status, 0);
      }
      assert.equal(eventsOf('mount', (x) => x.decision === 'denied' && x.mount.block_device === null).length, 0, 'no mount without a block device was denied');
    });
  });
});

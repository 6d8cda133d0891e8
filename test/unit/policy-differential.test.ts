// The compiler against the semantics: random policy sets and random events,
// decided once by the policy model's evaluator and once by the kernel's
// table algorithm over the compiled generation. They must agree on every
// field of every decision.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ListStore } from '../../src/lists/store.js';
import { compilePolicies, type ListInfo } from '../../src/policy/compile.js';
import { evaluatePolicies, type BinaryFacts, type EventFacts } from '../../src/policy/evaluate.js';
import { PolicySchema, type HookName, type ListType, type Policy } from '../../src/policy/schema.js';
import { evaluateTables } from '../lib/table-eval.js';
import { prng } from '../lib/prng.js';


const LONG = `/tmp/${'d'.repeat(140)}/${'e'.repeat(140)}/bin`;
const PATHS = ['/usr/bin/ls', '/usr/bin/cat', '/usr/bin/sh', '/tmp/a', '/tmp/b', '/tmp/x/y', '/home/u/bin/z', '/opt/app/bin/python3', LONG, '/tmp/ü/ß'];
const SELECTOR_PATHS = PATHS.filter((p) => p !== LONG);
const PREFIXES = ['/usr/', '/usr/bin/', '/tmp/', '/tmp/x/', '/home/', '/'];
const GLOBS = ['/usr/bin/*', '/tmp/**', '**/bin/*', '/home/*/bin/?', '/opt/*/bin/py*', '/tmp/[ab]'];
const SHAS = ['a'.repeat(64), 'b'.repeat(64), 'c'.repeat(64)];
const DEVS = ['8:1', '0:37'];
const ENVS = ['LD_PRELOAD', 'LD_AUDIT', 'PATH', 'HOME', 'X'];
const FSTYPES = ['ext4', 'vfat', 'tmpfs'];
const MODULES = ['ext4', 'usb_storage', 'dummy'];
const BUSES = ['usb', 'scsi', 'pci', 'virtio'];
const BUS_CHAINS: Array<string[] | undefined> = [['scsi', 'usb', 'pci'], ['virtio', 'pci'], [], ['pci'], undefined];
const ADDRS = ['10.0.0.1', '10.1.2.3', '192.168.1.7', '::1', 'fe80::1', '2001:db8::5'];
const NETS = ['10.0.0.0/8', '10.0.0.0/24', '192.168.0.0/16', '::1/128', 'fe80::/10', '2001:db8::/32', '0.0.0.0/0'];

const LISTS: Array<{ name: string; type: ListType; pool: string[] }> = [
  { name: 'paths', type: 'path', pool: SELECTOR_PATHS },
  { name: 'inodes', type: 'inode', pool: ['8:1:11', '8:1:12', '0:37:5'] },
  { name: 'hashes', type: 'sha256', pool: SHAS },
  { name: 'uids', type: 'uid', pool: ['0', '1000', '65534'] },
  { name: 'envs', type: 'env', pool: ENVS },
  { name: 'modules', type: 'module', pool: MODULES },
  { name: 'ports', type: 'port', pool: ['22', '80', '443'] },
  { name: 'addrs', type: 'address', pool: ADDRS },
];

function binaries(r: () => number): BinaryFacts[] {
  return PATHS.map((path, i) => ({
    path,
    dev: DEVS[i % 2]!,
    ino: BigInt(10 + (i % 4)),
    ...(i % 3 === 0 ? { sha256: SHAS[i % 3]! } : {}),
  })).filter(() => r() < 0.9);
}

function generate(seed: number): { policies: Policy[]; lists: ListStore; listInfo: Map<string, ListInfo>; events: EventFacts[] } {
  const r = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const some = <T>(xs: readonly T[], max = 2): T[] => [...new Set(Array.from({ length: 1 + Math.floor(r() * max) }, () => pick(xs)))];
  const maybe = <T>(p: number, f: () => T): T | undefined => (r() < p ? f() : undefined);

  const listOf = (types: ListType[]): string[] | undefined => {
    const fit = LISTS.filter((l) => types.includes(l.type));
    return fit.length && r() < 0.25 ? [pick(fit).name] : undefined;
  };
  const binarySel = () => {
    const sel = {
      path: maybe(0.3, () => some(SELECTOR_PATHS)),
      prefix: maybe(0.3, () => some(PREFIXES)),
      glob: maybe(0.3, () => some(GLOBS)),
      inode: maybe(0.15, () => [{ dev: pick(DEVS), ino: 10 + Math.floor(r() * 4) }]),
      sha256: maybe(0.15, () => some(SHAS)),
      list: listOf(['path', 'inode', 'sha256']),
      not: maybe(0.15, () => true),
    };
    if (!sel.path && !sel.prefix && !sel.glob && !sel.inode && !sel.sha256 && !sel.list) sel.prefix = ['/tmp/'];
    return sel;
  };
  const pathSel = () => {
    const sel = { path: maybe(0.4, () => some(SELECTOR_PATHS)), prefix: maybe(0.4, () => some(PREFIXES)), glob: maybe(0.4, () => some(GLOBS)), list: listOf(['path']), not: maybe(0.15, () => true) };
    if (!sel.path && !sel.prefix && !sel.glob && !sel.list) sel.glob = ['**'];
    return sel;
  };
  const setSel = <T>(pool: readonly T[], types: ListType[]) =>
    r() < 0.5 ? some(pool) : { in: some(pool), list: listOf(types), not: maybe(0.3, () => true) };

  const hooksUsed: HookName[] = ['exec', 'file_open', 'file_unlink', 'mount', 'module_load', 'connect', 'mmap_exec', 'ptrace', 'bpf', 'setid'];
  const policies: Policy[] = [];
  const defaults: Partial<Record<HookName, 'allow' | 'deny'>> = {};
  for (const h of hooksUsed) if (r() < 0.2) defaults[h] = pick(['allow', 'deny'] as const);
  const nPolicies = 1 + Math.floor(r() * 3);
  for (let p = 0; p < nPolicies; p++) {
    const rules = [];
    const nRules = Math.floor(r() * 8);
    for (let i = 0; i < nRules; i++) {
      const hook = pick(hooksUsed);
      const match: Record<string, unknown> = {};
      if (r() < 0.5) match['binary'] = binarySel();
      if (r() < 0.2) match['parent'] = binarySel();
      if (r() < 0.2) match['ancestor'] = binarySel();
      if (r() < 0.3) match['uid'] = setSel([0, 1000, 65534], ['uid']);
      if (r() < 0.2) match['gid'] = setSel([0, 100], ['gid']);
      if (r() < 0.2) match['cgroup'] = { id: some([1, 42, 43]) };
      if (hook === 'exec' && r() < 0.4) match['env'] = setSel(ENVS, ['env']);
      if (hook === 'exec' && r() < 0.3) match['fileless'] = r() < 0.7;
      if (hook === 'file_unlink' && r() < 0.5) match['self'] = r() < 0.7;
      if ((hook === 'file_open' || hook === 'file_unlink' || hook === 'module_load') && r() < 0.6) match['file'] = pathSel();
      if (hook === 'mmap_exec' && r() < 0.7) match['library'] = binarySel();
      if (hook === 'ptrace' && r() < 0.6) match['target'] = binarySel();
      if (hook === 'bpf' && r() < 0.6) match['prog_type'] = setSel(['kprobe', 'tracing', 'lsm', 'socket_filter'], []);
      if (hook === 'setid') {
        if (r() < 0.5) match['new_uid'] = setSel([0, 1000, 65534], ['uid']);
        if (r() < 0.3) match['new_gid'] = setSel([0, 100], ['gid']);
      }
      if (hook === 'mount') {
        if (r() < 0.5) match['fstype'] = setSel(FSTYPES, ['fstype']);
        if (r() < 0.4) match['source'] = pathSel();
        if (r() < 0.4) match['device'] = setSel(['8:16', '8:17', '7:0'], ['device']);
        if (r() < 0.4) match['bus'] = r() < 0.5 ? some(BUSES) : { in: some(BUSES), not: maybe(0.4, () => true) };
        if (r() < 0.3) match['removable'] = r() < 0.5;
      }
      if (hook === 'module_load' && r() < 0.6) match['module'] = setSel(MODULES, ['module']);
      if (hook === 'module_load' && r() < 0.4) match['sha256'] = setSel(SHAS, ['sha256']);
      if (hook === 'connect') {
        if (r() < 0.6) match['address'] = r() < 0.5 ? some(NETS) : { in: some(NETS), list: listOf(['address']), not: maybe(0.3, () => true) };
        if (r() < 0.6) match['port'] = setSel([22, 80, '8000-8010', 443], ['port']);
      }
      const actions = hook === 'exec' ? ['audit', 'allow', 'deny', 'kill', 'secureexec'] : ['audit', 'allow', 'deny', 'kill'];
      rules.push({
        name: `r${i}`,
        hook,
        match,
        action: pick(actions),
        ...(r() < 0.2 ? { mode: pick(['enforce', 'monitor'] as const) } : {}),
        ...(r() < 0.2 ? { afterLockPoint: true } : {}),
      });
    }
    const doc = {
      apiVersion: 'krsi.dev/v1',
      kind: 'Policy',
      metadata: { name: `p${p}` },
      spec: {
        mode: r() < 0.2 ? 'monitor' : 'enforce',
        ...(p === 0 && Object.keys(defaults).length ? { defaults } : {}),
        lists: p === 0 ? LISTS.map((l) => ({ name: l.name, type: l.type })) : [],
        rules,
      },
    };
    const parsed = PolicySchema.safeParse(JSON.parse(JSON.stringify(doc)));
    if (!parsed.success) throw new Error(`seed ${seed}: generated an invalid policy: ${JSON.stringify(parsed.error.issues)}`);
    policies.push(parsed.data);
  }

  const lists = ListStore.memory();
  const listInfo = new Map<string, ListInfo>();
  for (const l of LISTS) {
    lists.declare({ name: l.name, type: l.type });
    const stored = lists.get(l.name)!;
    listInfo.set(l.name, { id: stored.id, type: l.type });
    const entries = l.pool.filter(() => r() < 0.4);
    if (entries.length) lists.add(l.name, entries);
  }

  const events: EventFacts[] = [];
  const bins = binaries(r);
  for (let i = 0; i < 60; i++) {
    const hook = pick(hooksUsed);
    const facts: EventFacts = {
      hook,
      binary: pick(bins.length ? bins : [{ path: '/usr/bin/ls' }]),
      uid: pick([0, 1000, 65534, 7]),
      gid: pick([0, 100, 5]),
      cgroups: some([1n, 42n, 43n, 99n], 3),
      ...(r() < 0.8 ? { parent: pick(bins.length ? bins : [{ path: '/usr/bin/sh' }]) } : {}),
      ...(r() < 0.8 ? { ancestors: bins.filter(() => r() < 0.3) } : {}),
    };
    if (hook === 'exec') Object.assign(facts, { env: some(ENVS, 3), fileless: r() < 0.3 });
    if (hook === 'file_unlink') facts.self = r() < 0.3;
    if (hook === 'file_open' || hook === 'file_unlink' || hook === 'module_load') facts.file = pick(PATHS);
    if (hook === 'mmap_exec') facts.library = pick(bins.length ? bins : [{ path: '/usr/lib/libc.so.6' }]);
    if (hook === 'ptrace' && r() < 0.85) facts.target = pick(bins.length ? bins : [{ path: '/usr/bin/sh' }]);
    if (hook === 'bpf') facts.prog_type = pick([1, 2, 26, 29, 6]);
    if (hook === 'setid') Object.assign(facts, { new_uid: pick([0, 1000, 65534, 7]), new_gid: pick([0, 100, 5]) });
    if (hook === 'mount') {
      Object.assign(facts, { fstype: pick(FSTYPES), source: pick(PATHS), device: pick(['8:16', '8:17', '7:0', '0:5']) });
      const chain = pick(BUS_CHAINS);
      if (chain !== undefined) Object.assign(facts, { bus: chain, removable: r() < 0.5 });
    }
    if (hook === 'module_load') {
      facts.module = pick(MODULES);
      if (r() < 0.8) facts.sha256 = pick(SHAS);
    }
    if (r() < 0.5) facts.lockPoint = true;
    if (hook === 'connect') Object.assign(facts, { address: pick(ADDRS), port: pick([22, 80, 443, 8005, 9999]) });
    events.push(facts);
  }
  return { policies, lists, listInfo, events };
}

test('compiled tables decide exactly as the policy semantics, on random policies and events', () => {
  let compared = 0;
  for (let seed = 1; seed <= 300; seed++) {
    const { policies, lists, listInfo, events } = generate(seed);
    let gen;
    try {
      gen = compilePolicies(policies, { generation: 1n, lists: listInfo });
    } catch (err) {
      assert.fail(`seed ${seed}: compile failed: ${(err as Error).message}`);
    }
    for (const facts of events) {
      const model = evaluatePolicies(policies, facts, lists);
      const kernel = evaluateTables(gen, lists, facts);
      const name = (bit: number | null): string | null => (bit === null ? null : `${gen.rules[facts.hook][bit]!.policy}/${gen.rules[facts.hook][bit]!.rule}`);
      const ref = (r: { policy: string; rule: string } | null) => (r ? `${r.policy}/${r.rule}` : null);
      const where = `seed ${seed}, event ${JSON.stringify(facts, (_, v) => (typeof v === 'bigint' ? `${v}n` : v))}`;
      assert.equal(kernel.verdict, model.verdict, `verdict: ${where}`);
      assert.equal(name(kernel.rule), ref(model.decidedBy), `deciding rule: ${where}`);
      assert.equal(name(kernel.would), ref(model.wouldDeny), `would deny: ${where}`);
      assert.equal(kernel.defaultWouldDeny, model.defaultWouldDeny, `default would deny: ${where}`);
      assert.equal(name(kernel.audit), ref(model.audit), `audit: ${where}`);
      assert.equal(kernel.secureexec, model.secureexec, `secureexec: ${where}`);
      const matched = [];
      for (let b = 0; b < 64; b++) if (kernel.matched & (1n << BigInt(b))) matched.push(name(b));
      assert.deepEqual(matched, model.matched.map(ref), `matched: ${where}`);
      compared++;
    }
  }
  assert.ok(compared >= 18000);
});

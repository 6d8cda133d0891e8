// The kernel's table algorithm (bpf/lib/policy.bpf.c), transcribed to run
// over a CompiledGeneration in user space: tests compare it with the policy
// model's evaluator (src/policy/evaluate.ts) on many random events, which
// checks the compiler without a kernel. The kernel itself is then compared
// with the evaluator in the VM suites.
import {
  KRSI_ACTION_ALLOW,
  KRSI_ACTION_DENY,
  KRSI_ACTION_KILL,
  KRSI_DEFAULT_DENY,
  KRSI_DEFAULT_MONITOR_DENY,
  KRSI_DIMF_CLASSES,
  KRSI_DIMF_GLOBS,
  KRSI_DIMF_LISTS,
  KRSI_DIMF_NETS,
  KRSI_DIMF_PREFIXES,
  KRSI_DIMF_STRINGS,
  KRSI_DIMF_VALUES,
  KRSI_DIM_ADDRESS,
  KRSI_DIM_ANCESTOR,
  KRSI_DIM_BINARY,
  KRSI_DIM_BUS,
  KRSI_DIM_CGROUP,
  KRSI_DIM_COUNT,
  KRSI_DIM_DEVICE,
  KRSI_CLASS_TARGET,
  KRSI_DIM_ENV,
  KRSI_DIM_FILE,
  KRSI_DIM_FILELESS,
  KRSI_DIM_FSTYPE,
  KRSI_DIM_GID,
  KRSI_DIM_LIBRARY,
  KRSI_DIM_MODULE,
  KRSI_DIM_NEW_GID,
  KRSI_DIM_NEW_UID,
  KRSI_DIM_PARENT,
  KRSI_DIM_PORT,
  KRSI_DIM_REMOVABLE,
  KRSI_DIM_SHA256,
  KRSI_DIM_PROG_TYPE,
  KRSI_DIM_SELF,
  KRSI_DIM_SOURCE,
  KRSI_DIM_TARGET,
  KRSI_DIM_UID,
  KRSI_LIST_STRINGS,
  KRSI_LIST_VALUES,
  KRSI_PHOOK_CLASSES,
  KRSI_RULE_NONE,
  KrsiDfaStateLayout,
  type KrsiDimPolicy,
  type KrsiHookPolicy,
} from '../../src/abi/generated.js';
import { entryKey } from '../../src/lists/entries.js';
import type { ListStore } from '../../src/lists/store.js';
import { HOOK_IDS, addressWords, parseDevice, sha256Words, type CompiledGeneration } from '../../src/policy/compile.js';
import type { BinaryFacts, EventFacts } from '../../src/policy/evaluate.js';
import { fnv1a64 } from '../../src/policy/hash.js';
import { parseCidr } from '../../src/policy/schema.js';

export interface KernelDecision {
  verdict: 'allow' | 'deny';
  /** bit of the deciding rule, or null for the default */
  rule: number | null;
  action: number;
  would: number | null;
  defaultWouldDeny: boolean;
  audit: number | null;
  secureexec: boolean;
  matched: bigint;
}

const lowest = (m: bigint): number | null => {
  if (m === 0n) return null;
  let i = 0;
  while (!(m & (1n << BigInt(i)))) i++;
  return i;
};

class Tables {
  private readonly strings = new Map<string, bigint>();
  private readonly prefixes: CompiledGeneration['prefixes'];
  private readonly values = new Map<string, bigint>();

  constructor(
    readonly gen: CompiledGeneration,
    private readonly lists: ListStore,
  ) {
    for (const e of gen.strings) this.strings.set(`${e.table}/${e.bytes.toString('hex')}`, e.mask);
    for (const e of gen.values) this.values.set(`${e.table}/${e.v.join(',')}`, e.mask);
    this.prefixes = gen.prefixes;
  }

  value(table: number, v: bigint[]): bigint {
    return this.values.get(`${table}/${[...v, 0n, 0n, 0n, 0n].slice(0, 4).join(',')}`) ?? 0n;
  }

  string(table: number, s: Buffer): bigint {
    return this.strings.get(`${table}/${s.toString('hex')}`) ?? 0n;
  }

  /** The LPM trie: the longest prefix of s (up to 255 bytes) in table. */
  prefix(table: number, s: Buffer): bigint {
    const head = s.subarray(0, 255);
    let best: { len: number; mask: bigint } | null = null;
    for (const p of this.prefixes) {
      if (p.table === table && p.bytes.length <= head.length && head.subarray(0, p.bytes.length).equals(p.bytes)) {
        if (!best || p.bytes.length > best.len) best = { len: p.bytes.length, mask: p.mask };
      }
    }
    return best?.mask ?? 0n;
  }

  net(table: number, addr: Uint8Array): bigint {
    let best: { bits: number; mask: bigint } | null = null;
    for (const n of this.gen.nets) {
      if (n.table !== table) continue;
      let ok = true;
      for (let b = 0; b < n.bits && ok; b++) {
        const m = 0x80 >> (b & 7);
        ok = ((n.addr[b >> 3] ?? 0) & m) === ((addr[b >> 3] ?? 0) & m);
      }
      if (ok && (!best || n.bits > best.bits)) best = { bits: n.bits, mask: n.mask };
    }
    return best?.mask ?? 0n;
  }

  dfa(start: number, s: Buffer): bigint {
    let state = start;
    for (const c of s) state = this.gen.dfa.readUInt16LE(state * KrsiDfaStateLayout.size + 8 + 2 * c);
    return this.gen.dfa.readBigUInt64LE(state * KrsiDfaStateLayout.size);
  }

  /** A list entry present in the kernel's list maps (list id, key as the agent writes it). */
  listed(id: number, kind: number, key: Buffer): boolean {
    for (const list of this.lists.all()) {
      if (list.id !== id) continue;
      for (const entry of list.entries.keys()) {
        const k = entryKey(list.type, list.id, entry);
        if ((k.map === 'list_strings') === (kind === KRSI_LIST_STRINGS) && k.key.equals(key)) return true;
      }
    }
    return false;
  }
}

function valueKey(list: number, v: bigint[]): Buffer {
  const b = Buffer.alloc(40);
  b.writeUInt32LE(list, 0);
  [...v, 0n, 0n, 0n, 0n].slice(0, 4).forEach((x, i) => b.writeBigUInt64LE(x, 8 + 8 * i));
  return b;
}

function strKey(list: number, s: Buffer): Buffer {
  const b = Buffer.alloc(260);
  b.writeUInt32LE(list, 0);
  s.copy(b, 4, 0, Math.min(s.length, 255));
  return b;
}

function listsValues(t: Tables, d: KrsiDimPolicy, v: bigint[]): bigint {
  if (!(d.flags & KRSI_DIMF_LISTS)) return 0n;
  let m = 0n;
  for (const l of d.lists) if (l.kind === KRSI_LIST_VALUES && t.listed(l.list, l.kind, valueKey(l.list, v))) m |= l.rules;
  return m;
}

function listsStrings(t: Tables, d: KrsiDimPolicy, s: Buffer): bigint {
  if (!(d.flags & KRSI_DIMF_LISTS)) return 0n;
  let m = 0n;
  for (const l of d.lists) if (l.kind === KRSI_LIST_STRINGS && t.listed(l.list, l.kind, strKey(l.list, s))) m |= l.rules;
  return m;
}

function matchValue(t: Tables, table: number, d: KrsiDimPolicy, v: bigint[]): bigint {
  return (d.flags & KRSI_DIMF_VALUES ? t.value(table, v) : 0n) | listsValues(t, d, v);
}

function matchPath(t: Tables, table: number, d: KrsiDimPolicy, path: string): bigint {
  const s = Buffer.from(path, 'utf8');
  let m = 0n;
  if (d.flags & KRSI_DIMF_STRINGS && s.length < 256) m |= t.string(table, s);
  if (d.flags & KRSI_DIMF_PREFIXES) m |= t.prefix(table, s);
  if (d.flags & KRSI_DIMF_GLOBS) m |= t.dfa(d.dfaStart, s);
  if (s.length < 256) m |= listsStrings(t, d, s);
  return m;
}

function matchBinary(t: Tables, hookId: number, d: KrsiDimPolicy, b: BinaryFacts, dimId = KRSI_DIM_BINARY): bigint {
  const table = hookId * KRSI_DIM_COUNT + dimId;
  let m = 0n;
  if (b.dev !== undefined && b.ino !== undefined) m |= matchValue(t, table, d, [b.ino, BigInt(parseDevice(b.dev))]);
  if (b.sha256) m |= matchValue(t, table, d, sha256Words(b.sha256));
  m |= matchPath(t, table, d, b.path);
  return m;
}

/** The binary classes of an executable, as exec_committed computes them. */
export function classesOf(t: Tables, b: BinaryFacts): bigint {
  const hp = t.gen.hooks[KRSI_PHOOK_CLASSES]!;
  if (hp.rules === 0n) return 0n;
  const d = hp.dim[KRSI_DIM_BINARY]!;
  const matched = matchBinary(t, KRSI_PHOOK_CLASSES, d, b);
  return hp.rules & ((hp.rules & ~d.constrained) | ((matched ^ d.negated) & d.constrained));
}

export function evaluateTables(gen: CompiledGeneration, lists: ListStore, facts: EventFacts): KernelDecision {
  const t = new Tables(gen, lists);
  const hookId = HOOK_IDS[facts.hook];
  const hp: KrsiHookPolicy = gen.hooks[hookId]!;
  // krsi_policy_begin: rules after the lock point are no candidates before it.
  let cand = facts.lockPoint ? hp.rules : hp.rules & ~hp.afterLock;
  const narrow = (dim: number, matched: bigint | null): void => {
    const d = hp.dim[dim]!;
    if (!(d.constrained & cand)) return;
    if (matched === null) cand &= hp.rules & ~d.constrained;
    else cand &= (hp.rules & ~d.constrained) | ((matched ^ d.negated) & d.constrained);
  };
  // Unknown binary classes fail closed (narrow_unknown_classes).
  const narrowClasses = (dim: number, matched: bigint | null): void => {
    const d = hp.dim[dim]!;
    if (matched === null && d.constrained & cand) cand &= (hp.rules & ~d.constrained) | (d.constrained & (hp.deny | hp.kill | hp.secureexec));
    else narrow(dim, matched);
  };
  const table = (dim: number): number => hookId * KRSI_DIM_COUNT + dim;
  const dim = (n: number): KrsiDimPolicy => hp.dim[n]!;
  const classRules = (which: number, bits: bigint): bigint => {
    let m = 0n;
    for (let i = 0; i < 64; i++) if (bits & (1n << BigInt(i))) m |= hp.classRules[which]![i]!;
    return m;
  };

  if (facts.uid !== undefined) narrow(KRSI_DIM_UID, matchValue(t, table(KRSI_DIM_UID), dim(KRSI_DIM_UID), [BigInt(facts.uid)]));
  if (facts.gid !== undefined) narrow(KRSI_DIM_GID, matchValue(t, table(KRSI_DIM_GID), dim(KRSI_DIM_GID), [BigInt(facts.gid)]));
  if (facts.cgroups) {
    let m = 0n;
    for (const id of facts.cgroups) m |= matchValue(t, table(KRSI_DIM_CGROUP), dim(KRSI_DIM_CGROUP), [id]);
    narrow(KRSI_DIM_CGROUP, m);
  }
  // Lineage: classes computed from what the process ran.
  const bd = dim(KRSI_DIM_BINARY);
  if (facts.hook === 'exec') {
    if (facts.binary) narrow(KRSI_DIM_BINARY, matchBinary(t, hookId, bd, facts.binary));
  } else if (bd.flags & KRSI_DIMF_CLASSES) {
    narrowClasses(KRSI_DIM_BINARY, facts.binary ? classRules(0, classesOf(t, facts.binary)) : null);
  }
  narrowClasses(KRSI_DIM_PARENT, facts.parent ? classRules(1, classesOf(t, facts.parent)) : null);
  if (facts.ancestors) {
    let bits = 0n;
    for (const a of facts.ancestors) bits |= classesOf(t, a);
    narrowClasses(KRSI_DIM_ANCESTOR, classRules(2, bits));
  } else {
    narrowClasses(KRSI_DIM_ANCESTOR, null);
  }
  if (facts.env) {
    let m = 0n;
    for (const name of facts.env) m |= matchValue(t, table(KRSI_DIM_ENV), dim(KRSI_DIM_ENV), [fnv1a64(Buffer.from(name, 'utf8'))]);
    narrow(KRSI_DIM_ENV, m);
  }
  if (facts.file !== undefined) narrow(KRSI_DIM_FILE, matchPath(t, table(KRSI_DIM_FILE), dim(KRSI_DIM_FILE), facts.file));
  if (facts.source !== undefined) narrow(KRSI_DIM_SOURCE, matchPath(t, table(KRSI_DIM_SOURCE), dim(KRSI_DIM_SOURCE), facts.source));
  for (const [key, d] of [
    ['fstype', KRSI_DIM_FSTYPE],
    ['module', KRSI_DIM_MODULE],
  ] as const) {
    const v = facts[key];
    if (v === undefined) continue;
    const s = Buffer.from(v, 'utf8');
    narrow(d, (dim(d).flags & KRSI_DIMF_STRINGS ? t.string(table(d), s) : 0n) | listsStrings(t, dim(d), s));
  }
  if (facts.device !== undefined) narrow(KRSI_DIM_DEVICE, matchValue(t, table(KRSI_DIM_DEVICE), dim(KRSI_DIM_DEVICE), [BigInt(parseDevice(facts.device))]));
  if (facts.address !== undefined) {
    const a = parseCidr(facts.address)!.bytes;
    const d = dim(KRSI_DIM_ADDRESS);
    narrow(KRSI_DIM_ADDRESS, (d.flags & KRSI_DIMF_NETS ? t.net(table(KRSI_DIM_ADDRESS), a) : 0n) | matchValue(t, table(KRSI_DIM_ADDRESS), d, addressWords(a)));
  }
  if (facts.port !== undefined) narrow(KRSI_DIM_PORT, matchValue(t, table(KRSI_DIM_PORT), dim(KRSI_DIM_PORT), [BigInt(facts.port)]));
  // sha256_dim: an unknown digest matches nothing, so negated rules pass.
  if (facts.hook === 'module_load') {
    narrow(KRSI_DIM_SHA256, facts.sha256 === undefined ? 0n : matchValue(t, table(KRSI_DIM_SHA256), dim(KRSI_DIM_SHA256), sha256Words(facts.sha256)));
  }
  if (facts.bus !== undefined) {
    const d = dim(KRSI_DIM_BUS);
    let m = 0n;
    for (const b of facts.bus) if (d.flags & KRSI_DIMF_STRINGS) m |= t.string(table(KRSI_DIM_BUS), Buffer.from(b, 'utf8'));
    narrow(KRSI_DIM_BUS, m);
  } else {
    narrow(KRSI_DIM_BUS, null);
  }
  if (facts.removable !== undefined) {
    narrow(KRSI_DIM_REMOVABLE, matchValue(t, table(KRSI_DIM_REMOVABLE), dim(KRSI_DIM_REMOVABLE), [facts.removable ? 1n : 0n]));
  } else {
    narrow(KRSI_DIM_REMOVABLE, null);
  }
  for (const [key, d] of [
    ['fileless', KRSI_DIM_FILELESS],
    ['self', KRSI_DIM_SELF],
  ] as const) {
    const v = facts[key];
    if (v !== undefined) narrow(d, matchValue(t, table(d), dim(d), [v ? 1n : 0n]));
  }
  if (facts.library) narrow(KRSI_DIM_LIBRARY, matchBinary(t, hookId, dim(KRSI_DIM_LIBRARY), facts.library, KRSI_DIM_LIBRARY));
  if (dim(KRSI_DIM_TARGET).flags & KRSI_DIMF_CLASSES) {
    narrow(KRSI_DIM_TARGET, facts.target ? classRules(KRSI_CLASS_TARGET, classesOf(t, facts.target)) : null);
  }
  for (const [key, d] of [
    ['prog_type', KRSI_DIM_PROG_TYPE],
    ['new_uid', KRSI_DIM_NEW_UID],
    ['new_gid', KRSI_DIM_NEW_GID],
  ] as const) {
    const v = facts[key];
    if (v !== undefined) narrow(d, matchValue(t, table(d), dim(d), [BigInt(v)]));
  }

  const m = cand;
  const enforced = m & ~hp.monitor;
  const denying = enforced & (hp.deny | hp.kill);
  let verdict: 'allow' | 'deny' = 'allow';
  let rule: number | null = null;
  let action = KRSI_ACTION_ALLOW;
  let defaultWouldDeny = false;
  if (denying) {
    verdict = 'deny';
    if (enforced & hp.kill) {
      rule = lowest(enforced & hp.kill);
      action = KRSI_ACTION_KILL;
    } else {
      rule = lowest(denying);
      action = KRSI_ACTION_DENY;
    }
  } else if (enforced & hp.allow) {
    rule = lowest(enforced & hp.allow);
  } else if (hp.defaultAction === KRSI_DEFAULT_DENY) {
    verdict = 'deny';
    action = KRSI_ACTION_DENY;
  } else if (hp.defaultAction === KRSI_DEFAULT_MONITOR_DENY) {
    defaultWouldDeny = true;
  }
  const wouldMask = m & hp.monitor & (hp.deny | hp.kill);
  return {
    verdict,
    rule,
    action,
    would: lowest(wouldMask),
    defaultWouldDeny: defaultWouldDeny && wouldMask === 0n,
    audit: lowest(m & hp.audit),
    secureexec: verdict === 'allow' && (enforced & hp.secureexec) !== 0n,
    matched: m,
  };
}

export { KRSI_RULE_NONE };

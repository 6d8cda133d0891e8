// Policies into the tables bpf/lib/policy.bpf.c reads: one generation.
//
// Every rule of a hook is one bit of a u64. For each selector dimension of a
// hook the compiler records which rules it constrains (and negates), and
// fills the tables that turn an event's value into the set of rules whose
// selector it satisfies: exact strings, prefixes (an LPM trie, where the
// longest match must answer for every shorter one, so each prefix's mask
// includes the masks of the prefixes it extends), glob automata, values
// (ids, inodes, digests, ports), networks, dynamic lists.
//
// Selectors on a process's executable other than the one being exec'd (the
// binary of non-exec hooks, parent, ancestor) become binary classes: the
// kernel evaluates the classes once per exec, remembers them per task, and a
// rule asks whether the acting task (its parent, an ancestor) is of a class.
import { statSync } from 'node:fs';
import {
  KRSI_ACTION_ALLOW,
  KRSI_ACTION_AUDIT,
  KRSI_ACTION_DENY,
  KRSI_ACTION_KILL,
  KRSI_ACTION_SECUREEXEC,
  KRSI_CLASSES_MAX,
  KRSI_DEFAULT_ALLOW,
  KRSI_DEFAULT_DENY,
  KRSI_DEFAULT_MONITOR_DENY,
  KRSI_DFA_STATES_MAX,
  KRSI_DIMF_CLASSES,
  KRSI_DIMF_GLOBS,
  KRSI_DIMF_LISTS,
  KRSI_DIMF_NETS,
  KRSI_DIMF_PREFIXES,
  KRSI_DIMF_SHA256,
  KRSI_DIMF_STRINGS,
  KRSI_DIMF_VALUES,
  KRSI_CLASS_ANCESTOR,
  KRSI_CLASS_BINARY,
  KRSI_CLASS_PARENT,
  KRSI_CLASS_ROWS,
  KRSI_CLASS_TARGET,
  KRSI_DIM_BINARY,
  KRSI_DIM_COUNT,
  KRSI_DIM_LIBRARY,
  KRSI_DIM_LISTS_MAX,
  KRSI_LIST_STRINGS,
  KRSI_LIST_VALUES,
  KRSI_PHOOK_CLASSES,
  KRSI_PHOOK_COUNT,
  KRSI_PREFIX_MAX,
  KRSI_RULES_MAX,
  KRSI_STR_MAX,
  type KrsiDimPolicy,
  type KrsiHookPolicy,
} from '../abi/generated.js';
import { toKernelDev } from '../events/devices.js';
import { POLICY_HOOKS, SELECTORS } from '../families/index.js';
import { InputError } from '../errors.js';
import { progTypeNumber, type BpfProgTypeName } from './bpf-prog-types.js';
import { compileGlobs, encodeDfa, DfaTooLargeError, GlobError } from './glob.js';
import { fnv1a64 } from './hash.js';
import {
  HOOKS,
  parseCidr,
  type ActionName,
  type BinarySelector,
  type HookName,
  type ListType,
  type Match,
  type Mode,
  type PathSelector,
  type Policy,
  type Rule,
} from './schema.js';

export const HOOK_IDS = Object.fromEntries(POLICY_HOOKS.map((h) => [h.name, h.id])) as Readonly<Record<HookName, number>>;

export const DIM_IDS = Object.fromEntries(Object.entries(SELECTORS).map(([key, sel]) => [key, sel.dim])) as Readonly<Record<keyof Match, number>>;

const ACTION_IDS: Readonly<Record<ActionName, number>> = {
  audit: KRSI_ACTION_AUDIT,
  allow: KRSI_ACTION_ALLOW,
  deny: KRSI_ACTION_DENY,
  kill: KRSI_ACTION_KILL,
  secureexec: KRSI_ACTION_SECUREEXEC,
};

/** Glob automaton states allowed for one selector dimension. */
export const MAX_DFA_STATES_PER_TABLE = 4096;

/** A dynamic list as the compiler needs it: a stable id and a type. */
export interface ListInfo {
  id: number;
  type: ListType;
}

export interface RuleRef {
  policy: string;
  rule: string;
  action: ActionName;
  mode: Mode;
}

/** A binary class: one binary selector (without its `not`), and who uses it. */
export interface BinaryClass {
  bit: number;
  selector: BinarySelector;
  usedBy: Array<{ hook: HookName; rule: string; policy: string; as: 'binary' | 'parent' | 'ancestor' | 'target' }>;
}

export interface StringEntry {
  table: number;
  bytes: Buffer;
  mask: bigint;
}
export interface PrefixEntry {
  table: number;
  bytes: Buffer;
  mask: bigint;
}
export interface ValueEntry {
  table: number;
  v: [bigint, bigint, bigint, bigint];
  mask: bigint;
}
export interface NetEntry {
  table: number;
  addr: Uint8Array;
  /** Bits of addr that must match (0..128). */
  bits: number;
  mask: bigint;
}

export interface CompiledGeneration {
  generation: bigint;
  /** Indexed by KRSI_PHOOK_*: what the kernel's policy_hooks inner map holds. */
  hooks: KrsiHookPolicy[];
  strings: StringEntry[];
  prefixes: PrefixEntry[];
  values: ValueEntry[];
  nets: NetEntry[];
  /** Encoded struct krsi_dfa_state array; state 0 is a dead state. */
  dfa: Buffer;
  dfaStates: number;
  /** Rules by hook and bit, for naming the rule an event reports. */
  rules: Record<HookName, RuleRef[]>;
  classes: BinaryClass[];
  /** Exec (or binary class) selectors name digests: the exec programs take them. */
  needsSha256: boolean;
  /** Library selectors name digests: the mmap programs take them. */
  needsLibrarySha256: boolean;
  /** FNV-1a hashes of the env names env selectors use (env lists' entries are the lists'). */
  envNames: bigint[];
  /** Some enforcing exec rule with an env selector denies, kills or asks for secureexec. */
  envBackstop: boolean;
  /** Lists the generation uses, by name. */
  lists: Map<string, ListInfo>;
}

export class PolicyCompileError extends InputError {
  constructor(
    message: string,
    readonly policy?: string,
    readonly rule?: string,
  ) {
    super(`${policy ? `policy ${policy}${rule ? ` rule ${rule}` : ''}: ` : ''}${message}`);
    this.name = 'PolicyCompileError';
  }
}

const U64_MASK = (1n << 64n) - 1n;
const bit = (i: number): bigint => 1n << BigInt(i);

/** Accumulates table entries by key, OR-ing masks of duplicates. */
class Entries<E extends { mask: bigint }> {
  private readonly byKey = new Map<string, E>();
  add(key: string, entry: E): void {
    const seen = this.byKey.get(key);
    if (seen) seen.mask |= entry.mask;
    else this.byKey.set(key, { ...entry });
  }
  values(): E[] {
    return [...this.byKey.values()];
  }
}

function emptyDim(): KrsiDimPolicy {
  return {
    constrained: 0n,
    negated: 0n,
    flags: 0,
    dfaStart: 0,
    lists: Array.from({ length: KRSI_DIM_LISTS_MAX }, () => ({ list: 0, kind: 0, rules: 0n })),
  };
}

function emptyHook(generation: bigint): KrsiHookPolicy {
  return {
    generation,
    rules: 0n,
    audit: 0n,
    allow: 0n,
    deny: 0n,
    kill: 0n,
    secureexec: 0n,
    monitor: 0n,
    afterLock: 0n,
    defaultAction: KRSI_DEFAULT_ALLOW,
    dims: 0,
    dim: Array.from({ length: KRSI_DIM_COUNT }, emptyDim),
    classRules: Array.from({ length: KRSI_CLASS_ROWS }, () => Array.from({ length: KRSI_CLASSES_MAX }, () => 0n)),
    rate: Array.from({ length: KRSI_RULES_MAX }, () => ({ events: 0, periodMs: 0 })),
  };
}

/** A string as the kernel compares it: bytes, at most 255, no NUL. */
function kernelString(s: string, where: () => PolicyCompileError): Buffer {
  const b = Buffer.from(s, 'utf8');
  if (b.length === 0 || b.length >= KRSI_STR_MAX || b.includes(0)) throw where();
  return b;
}

export function sha256Words(hex: string): [bigint, bigint, bigint, bigint] {
  const b = Buffer.from(hex, 'hex');
  return [b.readBigUInt64LE(0), b.readBigUInt64LE(8), b.readBigUInt64LE(16), b.readBigUInt64LE(24)];
}

export function addressWords(addr: Uint8Array): [bigint, bigint, bigint, bigint] {
  const b = Buffer.from(addr.buffer, addr.byteOffset, 16);
  return [b.readBigUInt64LE(0), b.readBigUInt64LE(8), 0n, 0n];
}

export function parseDevice(text: string): number {
  const [major, minor] = text.split(':').map(Number) as [number, number];
  return toKernelDev({ major, minor });
}

/** A cgroup v2 directory's id is its inode number in cgroupfs. */
export function cgroupIdOf(path: string): bigint {
  try {
    const st = statSync(path, { bigint: true });
    if (!st.isDirectory()) throw new Error('not a directory');
    return st.ino;
  } catch (err) {
    throw new InputError(`cgroup ${path}: ${(err as Error).message}`);
  }
}

/** The ports a port selector names; ranges are expanded. */
export function expandPorts(ports: ReadonlyArray<number | string>): number[] {
  const out: number[] = [];
  for (const p of ports) {
    if (typeof p === 'number') out.push(p);
    else {
      const [lo, hi] = p.split('-').map(Number) as [number, number];
      for (let x = lo; x <= hi; x++) out.push(x);
    }
  }
  return out;
}

interface SetSelector<T> {
  values: T[];
  lists: string[];
  not: boolean;
}

/** `[a, b]` or `{in, list, not}`: the same thing in one shape. */
export function setSelector<T>(sel: T[] | { in?: T[] | undefined; list?: string[] | undefined; not?: boolean | undefined }): SetSelector<T> {
  if (Array.isArray(sel)) return { values: sel, lists: [], not: false };
  return { values: sel.in ?? [], lists: sel.list ?? [], not: sel.not ?? false };
}

/** A binary selector without its `not`, canonical, as a class key. */
function classKey(sel: BinarySelector): string {
  const { not: _not, ...rest } = sel;
  void _not;
  const canon = Object.fromEntries(
    Object.entries(rest)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => [k, Array.isArray(v) ? [...v].map((x) => (typeof x === 'object' ? `${x.dev}/${x.ino}` : x)).sort() : v]),
  );
  return JSON.stringify(canon);
}

export interface CompileOptions {
  generation: bigint;
  lists: ReadonlyMap<string, ListInfo>;
  /** Resolves a cgroup path to its id (stat of cgroupfs by default). */
  cgroupId?: (path: string) => bigint;
}

interface Table {
  hook: number;
  dim: number;
}

export function compilePolicies(policies: readonly Policy[], opts: CompileOptions): CompiledGeneration {
  const cgroupId = opts.cgroupId ?? cgroupIdOf;
  const hooks = Array.from({ length: KRSI_PHOOK_COUNT }, () => emptyHook(opts.generation));
  const strings = new Entries<StringEntry>();
  const prefixes = new Entries<PrefixEntry>();
  const values = new Entries<ValueEntry>();
  const nets = new Entries<NetEntry>();
  const globs = new Map<number, Array<{ glob: string; mask: bigint; policy: string; rule: string }>>();
  const rules = Object.fromEntries(HOOKS.map((h) => [h, [] as RuleRef[]])) as unknown as Record<HookName, RuleRef[]>;
  const classes = new Map<string, BinaryClass>();
  const usedLists = new Map<string, ListInfo>();
  const envNames = new Set<bigint>();
  let needsSha256 = false;
  let needsLibrarySha256 = false;
  let envBackstop = false;
  const needDigests = (t: Table): void => {
    if (t.dim === KRSI_DIM_LIBRARY) needsLibrarySha256 = true;
    else needsSha256 = true;
  };

  const tableId = (t: Table): number => t.hook * KRSI_DIM_COUNT + t.dim;

  const listInfo = (name: string, policy: string, rule: string): ListInfo => {
    const info = opts.lists.get(name);
    if (!info) throw new PolicyCompileError(`list ${name} is not declared`, policy, rule);
    usedLists.set(name, info);
    return info;
  };

  /**
   * Records that the rules in `mask` consult list `name` on dimension t.
   * A sha256 list on an executable needs IMA's digest of every exec
   * (needsSha256); a module's digest is always taken (execHash false).
   */
  const addListRef = (t: Table, name: string, mask: bigint, policy: string, rule: string, execHash = true): void => {
    const info = listInfo(name, policy, rule);
    const dim = hooks[t.hook]!.dim[t.dim]!;
    const kind = listKind(info.type);
    let slot = dim.lists.find((l) => l.list === info.id && l.kind === kind);
    if (!slot) {
      slot = dim.lists.find((l) => l.kind === 0);
      if (!slot) {
        throw new PolicyCompileError(`one selector dimension can use at most ${KRSI_DIM_LISTS_MAX} dynamic lists`, policy, rule);
      }
      slot.list = info.id;
      slot.kind = kind;
    }
    slot.rules |= mask;
    dim.flags |= KRSI_DIMF_LISTS;
    if (info.type === 'sha256' && execHash) {
      dim.flags |= KRSI_DIMF_SHA256;
      needDigests(t);
    }
  };

  const addValue = (t: Table, v: [bigint, bigint, bigint, bigint], mask: bigint): void => {
    const table = tableId(t);
    values.add(`${table}/${v.join(',')}`, { table, v, mask });
    hooks[t.hook]!.dim[t.dim]!.flags |= KRSI_DIMF_VALUES;
  };
  const addString = (t: Table, bytes: Buffer, mask: bigint): void => {
    const table = tableId(t);
    strings.add(`${table}/${bytes.toString('hex')}`, { table, bytes, mask });
    hooks[t.hook]!.dim[t.dim]!.flags |= KRSI_DIMF_STRINGS;
  };

  /** Path-valued selectors: exact, prefix, glob, and for binaries inode and sha256. */
  const addPathSelector = (t: Table, sel: PathSelector | BinarySelector, mask: bigint, policy: string, rule: string): void => {
    const err = (what: string) => () => new PolicyCompileError(`${what} must be 1-255 bytes without NUL`, policy, rule);
    for (const p of sel.path ?? []) addString(t, kernelString(p, err(`path ${p}`)), mask);
    for (const p of sel.prefix ?? []) {
      const bytes = kernelString(p, err(`prefix ${p}`));
      if (bytes.length > KRSI_PREFIX_MAX) throw err(`prefix ${p}`)();
      const table = tableId(t);
      prefixes.add(`${table}/${bytes.toString('hex')}`, { table, bytes, mask });
      hooks[t.hook]!.dim[t.dim]!.flags |= KRSI_DIMF_PREFIXES;
    }
    for (const g of sel.glob ?? []) {
      const table = tableId(t);
      const list = globs.get(table) ?? [];
      list.push({ glob: g, mask, policy, rule });
      globs.set(table, list);
      hooks[t.hook]!.dim[t.dim]!.flags |= KRSI_DIMF_GLOBS;
    }
    if ('inode' in sel) {
      for (const i of sel.inode ?? []) addValue(t, [i.ino, BigInt(parseDevice(i.dev)), 0n, 0n], mask);
    }
    if ('sha256' in sel && sel.sha256) {
      for (const h of sel.sha256) addValue(t, sha256Words(h), mask);
      hooks[t.hook]!.dim[t.dim]!.flags |= KRSI_DIMF_SHA256;
      needDigests(t);
    }
    for (const l of sel.list ?? []) addListRef(t, l, mask, policy, rule);
  };

  const classFor = (sel: BinarySelector, use: BinaryClass['usedBy'][number]): BinaryClass => {
    const key = classKey(sel);
    let c = classes.get(key);
    if (!c) {
      if (classes.size >= KRSI_CLASSES_MAX) {
        throw new PolicyCompileError(`more than ${KRSI_CLASSES_MAX} distinct binary, parent and ancestor selectors`, use.policy, use.rule);
      }
      const { not: _not, ...selector } = sel;
      void _not;
      c = { bit: classes.size, selector, usedBy: [] };
      classes.set(key, c);
    }
    c.usedBy.push(use);
    return c;
  };

  // Defaults: explicit per hook; two policies must not say different things.
  const defaults = new Map<HookName, { action: 'allow' | 'deny'; mode: Mode; policy: string }>();
  for (const p of policies) {
    for (const [hook, action] of Object.entries(p.spec.defaults ?? {}) as Array<[HookName, 'allow' | 'deny' | undefined]>) {
      if (!action) continue;
      const seen = defaults.get(hook);
      if (seen && seen.action !== action) {
        throw new PolicyCompileError(`defaults.${hook} is ${action} here and ${seen.action} in policy ${seen.policy}`, p.metadata.name);
      }
      defaults.set(hook, { action, mode: p.spec.mode, policy: p.metadata.name });
    }
  }
  for (const [hook, d] of defaults) {
    hooks[HOOK_IDS[hook]]!.defaultAction =
      d.action === 'allow' ? KRSI_DEFAULT_ALLOW : d.mode === 'monitor' ? KRSI_DEFAULT_MONITOR_DENY : KRSI_DEFAULT_DENY;
  }

  for (const policy of policies) {
    for (const rule of policy.spec.rules) {
      compileRule(policy, rule);
    }
  }

  function compileRule(policy: Policy, rule: Rule): void {
    const where = (msg: string): PolicyCompileError => new PolicyCompileError(msg, policy.metadata.name, rule.name);
    const hookId = HOOK_IDS[rule.hook];
    const hp = hooks[hookId]!;
    const index = rules[rule.hook].length;
    if (index >= KRSI_RULES_MAX) throw where(`hook ${rule.hook} has more than ${KRSI_RULES_MAX} rules across all policies`);
    const mode = rule.mode ?? policy.spec.mode;
    rules[rule.hook].push({ policy: policy.metadata.name, rule: rule.name, action: rule.action, mode });
    const m = bit(index);
    hp.rules |= m;
    switch (ACTION_IDS[rule.action]) {
      case KRSI_ACTION_AUDIT:
        hp.audit |= m;
        break;
      case KRSI_ACTION_ALLOW:
        hp.allow |= m;
        break;
      case KRSI_ACTION_DENY:
        hp.deny |= m;
        break;
      case KRSI_ACTION_KILL:
        hp.kill |= m;
        break;
      case KRSI_ACTION_SECUREEXEC:
        hp.secureexec |= m;
        break;
    }
    if (mode === 'monitor') hp.monitor |= m;
    if (rule.afterLockPoint) hp.afterLock |= m;
    if (rule.rateLimit) hp.rate[index] = { events: rule.rateLimit.events, periodMs: rule.rateLimit.perSeconds * 1000 };

    for (const [key, sel] of Object.entries(rule.match) as Array<[keyof Match, Match[keyof Match]]>) {
      if (sel === undefined) continue;
      const dimId = DIM_IDS[key];
      const dim = hp.dim[dimId]!;
      const t: Table = { hook: hookId, dim: dimId };
      dim.constrained |= m;
      hp.dims |= 1 << dimId;
      switch (key) {
        case 'binary':
        case 'parent':
        case 'ancestor': {
          const bsel = sel as BinarySelector;
          if (bsel.not) dim.negated |= m;
          if (key === 'binary' && rule.hook === 'exec') {
            addPathSelector(t, bsel, m, policy.metadata.name, rule.name);
          } else {
            const which = key === 'binary' ? KRSI_CLASS_BINARY : key === 'parent' ? KRSI_CLASS_PARENT : KRSI_CLASS_ANCESTOR;
            const c = classFor(bsel, { hook: rule.hook, rule: rule.name, policy: policy.metadata.name, as: key });
            hp.classRules[which]![c.bit] = hp.classRules[which]![c.bit]! | m;
            dim.flags |= KRSI_DIMF_CLASSES;
          }
          break;
        }
        case 'target': {
          const bsel = sel as BinarySelector;
          if (bsel.not) dim.negated |= m;
          const c = classFor(bsel, { hook: rule.hook, rule: rule.name, policy: policy.metadata.name, as: 'target' });
          hp.classRules[KRSI_CLASS_TARGET]![c.bit] = hp.classRules[KRSI_CLASS_TARGET]![c.bit]! | m;
          dim.flags |= KRSI_DIMF_CLASSES;
          break;
        }
        case 'library': {
          const bsel = sel as BinarySelector;
          if (bsel.not) dim.negated |= m;
          addPathSelector(t, bsel, m, policy.metadata.name, rule.name);
          break;
        }
        case 'fileless':
        case 'self':
          addValue(t, [sel ? 1n : 0n, 0n, 0n, 0n], m);
          break;
        case 'prog_type': {
          const s = setSelector(sel as BpfProgTypeName[] | { in?: BpfProgTypeName[]; list?: string[]; not?: boolean });
          if (s.not) dim.negated |= m;
          for (const v of s.values) addValue(t, [BigInt(progTypeNumber(v)), 0n, 0n, 0n], m);
          for (const l of s.lists) addListRef(t, l, m, policy.metadata.name, rule.name);
          break;
        }
        case 'new_uid':
        case 'new_gid': {
          const s = setSelector(sel as number[] | { in?: number[]; list?: string[]; not?: boolean });
          if (s.not) dim.negated |= m;
          for (const id of s.values) addValue(t, [BigInt(id), 0n, 0n, 0n], m);
          for (const l of s.lists) addListRef(t, l, m, policy.metadata.name, rule.name);
          break;
        }
        case 'file':
        case 'source': {
          const psel = sel as PathSelector;
          if (psel.not) dim.negated |= m;
          addPathSelector(t, psel, m, policy.metadata.name, rule.name);
          break;
        }
        case 'uid':
        case 'gid': {
          const s = setSelector(sel as number[] | { in?: number[]; list?: string[]; not?: boolean });
          if (s.not) dim.negated |= m;
          for (const id of s.values) addValue(t, [BigInt(id), 0n, 0n, 0n], m);
          for (const l of s.lists) addListRef(t, l, m, policy.metadata.name, rule.name);
          break;
        }
        case 'cgroup': {
          const c = sel as NonNullable<Match['cgroup']>;
          for (const p of c.path ?? []) addValue(t, [cgroupId(p), 0n, 0n, 0n], m);
          for (const id of c.id ?? []) addValue(t, [id, 0n, 0n, 0n], m);
          for (const l of c.list ?? []) addListRef(t, l, m, policy.metadata.name, rule.name);
          break;
        }
        case 'env': {
          const s = setSelector(sel as string[] | { in?: string[]; list?: string[]; not?: boolean });
          if (s.not) dim.negated |= m;
          for (const name of s.values) {
            const h = fnv1a64(Buffer.from(name, 'utf8'));
            addValue(t, [h, 0n, 0n, 0n], m);
            envNames.add(h);
          }
          for (const l of s.lists) addListRef(t, l, m, policy.metadata.name, rule.name);
          if (mode === 'enforce' && ['deny', 'kill', 'secureexec'].includes(rule.action)) envBackstop = true;
          break;
        }
        case 'fstype':
        case 'module': {
          const s = setSelector(sel as string[] | { in?: string[]; list?: string[]; not?: boolean });
          if (s.not) dim.negated |= m;
          for (const v of s.values) addString(t, kernelString(v, () => where(`${key} ${v} must be 1-255 bytes without NUL`)), m);
          for (const l of s.lists) addListRef(t, l, m, policy.metadata.name, rule.name);
          break;
        }
        case 'device': {
          const s = setSelector(sel as string[] | { in?: string[]; list?: string[]; not?: boolean });
          if (s.not) dim.negated |= m;
          for (const d of s.values) addValue(t, [BigInt(parseDevice(d)), 0n, 0n, 0n], m);
          for (const l of s.lists) addListRef(t, l, m, policy.metadata.name, rule.name);
          break;
        }
        case 'address': {
          const s = setSelector(sel as string[] | { in?: string[]; list?: string[]; not?: boolean });
          if (s.not) dim.negated |= m;
          for (const a of s.values) {
            const cidr = parseCidr(a);
            if (!cidr) throw where(`bad address ${a}`);
            const table = tableId(t);
            const addr = maskAddress(cidr.bytes, cidr.prefixLen);
            nets.add(`${table}/${Buffer.from(addr).toString('hex')}/${cidr.prefixLen}`, { table, addr, bits: cidr.prefixLen, mask: m });
            dim.flags |= KRSI_DIMF_NETS;
          }
          for (const l of s.lists) addListRef(t, l, m, policy.metadata.name, rule.name);
          break;
        }
        case 'sha256': {
          // The module's digest: taken at every load, needsSha256 is for execs.
          const s = setSelector(sel as string[] | { in?: string[]; list?: string[]; not?: boolean });
          if (s.not) dim.negated |= m;
          for (const h of s.values) addValue(t, sha256Words(h), m);
          for (const l of s.lists) addListRef(t, l, m, policy.metadata.name, rule.name, false);
          break;
        }
        case 'bus': {
          const s = setSelector(sel as string[] | { in: string[]; not?: boolean });
          if (s.not) dim.negated |= m;
          for (const b of s.values) addString(t, kernelString(b, () => where(`bus ${b} must be 1-15 bytes without NUL`)), m);
          break;
        }
        case 'removable': {
          addValue(t, [sel ? 1n : 0n, 0n, 0n, 0n], m);
          break;
        }
        case 'port': {
          const s = setSelector(sel as Array<number | string> | { in?: Array<number | string>; list?: string[]; not?: boolean });
          if (s.not) dim.negated |= m;
          const ports = expandPorts(s.values);
          if (ports.length > 65536) throw where('port ranges name more than 65536 ports');
          for (const p of ports) addValue(t, [BigInt(p), 0n, 0n, 0n], m);
          for (const l of s.lists) addListRef(t, l, m, policy.metadata.name, rule.name);
          break;
        }
      }
    }
  }

  // The classes' own table: a pseudo-hook whose "rules" are the classes,
  // evaluated on the binary dimension at every exec.
  const classHook = hooks[KRSI_PHOOK_CLASSES]!;
  for (const c of classes.values()) {
    const m = bit(c.bit);
    classHook.rules |= m;
    classHook.dim[KRSI_DIM_BINARY]!.constrained |= m;
    classHook.dims |= 1 << KRSI_DIM_BINARY;
    addPathSelector({ hook: KRSI_PHOOK_CLASSES, dim: KRSI_DIM_BINARY }, c.selector, m, c.usedBy[0]!.policy, c.usedBy[0]!.rule);
  }

  // Prefixes: the LPM trie answers with the longest match only.
  const prefixList = prefixes.values();
  for (const p of prefixList) {
    for (const q of prefixList) {
      if (q !== p && q.table === p.table && q.bytes.length < p.bytes.length && p.bytes.subarray(0, q.bytes.length).equals(q.bytes)) {
        p.mask |= q.mask;
      }
    }
  }
  const netList = nets.values();
  for (const n of netList) {
    for (const o of netList) {
      if (o !== n && o.table === n.table && o.bits < n.bits && sameBits(o.addr, n.addr, o.bits)) n.mask |= o.mask;
    }
  }

  // Glob automata, one per table, laid end to end after a shared dead state.
  const dfaParts: Buffer[] = [encodeDfa({ states: [{ next: new Uint16Array(256), accept: 0n }], start: 0 }, 0)];
  let dfaStates = 1;
  for (const [table, list] of [...globs].sort(([a], [b]) => a - b)) {
    let dfa;
    try {
      dfa = compileGlobs(list, { maxStates: MAX_DFA_STATES_PER_TABLE });
    } catch (err) {
      const first = list[0]!;
      if (err instanceof GlobError) throw new PolicyCompileError(`glob ${err.glob}: ${err.message}`, first.policy, first.rule);
      if (err instanceof DfaTooLargeError) {
        throw new PolicyCompileError(`the globs of this selector need more than ${MAX_DFA_STATES_PER_TABLE} automaton states; split them or use prefixes`, first.policy, first.rule);
      }
      throw err;
    }
    if (dfaStates + dfa.states.length > KRSI_DFA_STATES_MAX) {
      throw new PolicyCompileError(`glob automata need more than ${KRSI_DFA_STATES_MAX} states in all`);
    }
    const hookId = Math.floor(table / KRSI_DIM_COUNT);
    const dimId = table % KRSI_DIM_COUNT;
    hooks[hookId]!.dim[dimId]!.dfaStart = dfaStates + dfa.start;
    dfaParts.push(encodeDfa(dfa, dfaStates));
    dfaStates += dfa.states.length;
  }

  // LPM keys (prefixes, networks) carry the table id in one byte.
  for (const e of [...prefixList, ...netList]) {
    if (e.table > 0xff) throw new Error(`table ${e.table} has prefixes or networks but does not fit the LPM keys' byte`);
  }

  for (const h of hooks) {
    for (const m of [h.rules, h.audit, h.allow, h.deny, h.kill, h.secureexec, h.monitor, h.afterLock]) {
      if (m > U64_MASK) throw new Error('rule mask overflow');
    }
  }

  return {
    generation: opts.generation,
    hooks,
    strings: strings.values(),
    prefixes: prefixList,
    values: values.values(),
    nets: netList,
    dfa: Buffer.concat(dfaParts),
    dfaStates,
    rules,
    classes: [...classes.values()],
    needsSha256,
    needsLibrarySha256,
    envNames: [...envNames],
    envBackstop,
    lists: usedLists,
  };
}

/** Where a list's entries live in the kernel. */
export function listKind(type: ListType): number {
  return type === 'path' || type === 'fstype' || type === 'module' ? KRSI_LIST_STRINGS : KRSI_LIST_VALUES;
}

function maskAddress(addr: Uint8Array, bits: number): Uint8Array {
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    out[i] = (addr[i] ?? 0) & ((0xff << (8 - keep)) & 0xff);
  }
  return out;
}

function sameBits(a: Uint8Array, b: Uint8Array, bits: number): boolean {
  const ma = maskAddress(a, bits);
  const mb = maskAddress(b, bits);
  return Buffer.from(ma).equals(Buffer.from(mb));
}

// The policy semantics in TypeScript, written from the policy model, not from
// the compiled tables: it answers `krsi policy test` and `krsi explain`, and
// the kernel's decisions are tested against it. Same algorithm as
// bpf/lib/policy.bpf.c: a rule matches when every selector it has matches;
// an enforced deny or kill wins, then an enforced allow, then the default.
import type { z } from 'zod';
import type { Facts } from '../families/index.js';
import { progTypeName, progTypeNumber, type BpfProgTypeName } from './bpf-prog-types.js';
import { globToRegExp, toByteString } from './glob.js';
import { expandPorts, setSelector } from './compile.js';
import {
  HOOKS,
  parseCidr,
  type ActionName,
  type BinarySelector,
  type HookName,
  type Match,
  type Mode,
  type PathSelector,
  type Policy,
} from './schema.js';

/** What is known about an executable. */
export interface BinaryFacts {
  path: string;
  /** major:minor of its file system */
  dev?: string;
  ino?: bigint;
  /** sha256 of its content, lower-case hex */
  sha256?: string;
}

/**
 * One event, as the kernel sees it. A field left undefined for a selector a
 * rule has means "unknown": the rule then matches neither way, except that
 * unknown lineage (binary outside exec, parent, ancestors) fails closed, as
 * in the kernel: rules that deny, kill or secure-exec match. Its fields are
 * the hook families' facts (src/families/).
 */
export type EventFacts = { hook: HookName } & {
  -readonly [K in keyof Facts]?: Exclude<z.output<Facts[K]>, undefined>;
};

/** Dynamic list membership, with entries in their canonical text form. */
export interface ListMembership {
  has(list: string, entry: string): boolean;
}

export const noLists: ListMembership = { has: () => false };

export interface RuleRef {
  policy: string;
  rule: string;
  action: ActionName;
  mode: Mode;
}

export type SelectorResult = boolean | 'unknown';

export interface SelectorTrace {
  selector: keyof Match;
  result: SelectorResult;
  /** What matched, or why nothing did. */
  reason: string;
}

export interface RuleTrace extends RuleRef {
  matched: boolean;
  /** false: an afterLockPoint rule before the lock point, which does not take part yet. */
  inForce?: false;
  selectors: SelectorTrace[];
}

export interface Decision {
  verdict: 'allow' | 'deny';
  /** The deciding rule; null when the hook's default decided. */
  decidedBy: RuleRef | null;
  action: ActionName;
  defaultAction: 'allow' | 'deny' | 'monitor-deny';
  killed: boolean;
  secureexec: boolean;
  wouldDeny: RuleRef | null;
  /** No rule decided and a monitor-mode policy's default would have denied. */
  defaultWouldDeny: boolean;
  audit: RuleRef | null;
  matched: RuleRef[];
  /** Every rule of the hook, in evaluation order, and why it matched or not. */
  trace: RuleTrace[];
}

const bytes = (s: string): Buffer => Buffer.from(s, 'utf8');

function matchPathSelector(sel: PathSelector | BinarySelector, facts: BinaryFacts | string, lists: ListMembership): { hit: boolean; reason: string } {
  const path = typeof facts === 'string' ? facts : facts.path;
  const b = bytes(path);
  for (const p of sel.path ?? []) if (b.length < 256 && b.equals(bytes(p))) return { hit: true, reason: `path ${p}` };
  for (const p of sel.prefix ?? []) {
    const pb = bytes(p);
    if (b.length >= pb.length && b.subarray(0, pb.length).equals(pb)) return { hit: true, reason: `prefix ${p}` };
  }
  for (const g of sel.glob ?? []) if (globToRegExp(g).test(toByteString(path))) return { hit: true, reason: `glob ${g}` };
  if (typeof facts !== 'string') {
    if ('inode' in sel) {
      for (const i of sel.inode ?? []) {
        if (facts.dev === i.dev && facts.ino === i.ino) return { hit: true, reason: `inode ${i.dev}/${i.ino}` };
      }
    }
    if ('sha256' in sel && facts.sha256) {
      for (const h of sel.sha256 ?? []) if (h === facts.sha256) return { hit: true, reason: `sha256 ${h}` };
    }
  }
  for (const l of sel.list ?? []) {
    if (b.length < 256 && lists.has(l, path)) return { hit: true, reason: `list ${l} has ${path}` };
    if (typeof facts !== 'string') {
      if (facts.dev !== undefined && facts.ino !== undefined && lists.has(l, `${facts.dev}:${facts.ino}`)) {
        return { hit: true, reason: `list ${l} has inode ${facts.dev}:${facts.ino}` };
      }
      if (facts.sha256 && lists.has(l, facts.sha256)) return { hit: true, reason: `list ${l} has sha256 ${facts.sha256}` };
    }
  }
  return { hit: false, reason: `${path} matches none of its forms` };
}

/** Whether an executable satisfies a binary selector's forms (its `not` aside). */
export function binaryMatches(sel: BinarySelector, facts: BinaryFacts, lists: ListMembership): boolean {
  return matchPathSelector(sel, facts, lists).hit;
}

function negate(sel: { not?: boolean | undefined }, r: { hit: boolean; reason: string }): SelectorTrace['result'] {
  return sel.not ? !r.hit : r.hit;
}

function inSet<T>(
  sel: T[] | { in?: T[] | undefined; list?: string[] | undefined; not?: boolean | undefined },
  value: T,
  text: string,
  lists: ListMembership,
  equals: (a: T, b: T) => boolean = (a, b) => a === b,
): { result: boolean; reason: string } {
  const s = setSelector(sel);
  let hit = s.values.some((v) => equals(v, value));
  let reason = hit ? `${text} is listed` : `${text} is not listed`;
  if (!hit) {
    const l = s.lists.find((name) => lists.has(name, text));
    if (l) {
      hit = true;
      reason = `list ${l} has ${text}`;
    }
  }
  return { result: s.not ? !hit : hit, reason: s.not ? `not: ${reason}` : reason };
}

function addressMatches(cidrText: string, address: string): boolean {
  const net = parseCidr(cidrText);
  const addr = parseCidr(address);
  if (!net || !addr) return false;
  for (let bitIndex = 0; bitIndex < net.prefixLen; bitIndex++) {
    const byte = bitIndex >> 3;
    const mask = 0x80 >> (bitIndex & 7);
    if (((net.bytes[byte] ?? 0) & mask) !== ((addr.bytes[byte] ?? 0) & mask)) return false;
  }
  return true;
}

function evaluateSelector(key: keyof Match, sel: NonNullable<Match[keyof Match]>, facts: EventFacts, lists: ListMembership): SelectorTrace {
  const unknown = (what: string): SelectorTrace => ({ selector: key, result: 'unknown', reason: `${what} is unknown` });
  switch (key) {
    case 'binary':
    case 'parent':
    case 'library':
    case 'target': {
      const f = facts[key];
      if (!f) return unknown(key);
      const r = matchPathSelector(sel as BinarySelector, f, lists);
      return { selector: key, result: negate(sel as BinarySelector, r), reason: r.reason };
    }
    case 'ancestor': {
      if (!facts.ancestors) return unknown('the ancestry');
      const hit = facts.ancestors.map((a) => matchPathSelector(sel as BinarySelector, a, lists)).find((r) => r.hit);
      const r = hit ?? { hit: false, reason: 'no ancestor matches' };
      return { selector: key, result: negate(sel as BinarySelector, r), reason: r.reason };
    }
    case 'file':
    case 'source': {
      const v = facts[key];
      if (v === undefined) return unknown(key);
      const r = matchPathSelector(sel as PathSelector, v, lists);
      return { selector: key, result: negate(sel as PathSelector, r), reason: r.reason };
    }
    case 'fileless':
    case 'self': {
      const v = facts[key];
      if (v === undefined) return unknown(key);
      return { selector: key, result: v === sel, reason: `${key} is ${v}` };
    }
    case 'prog_type': {
      const v = facts.prog_type;
      if (v === undefined) return unknown('the program type');
      const s = setSelector(sel as BpfProgTypeName[]);
      const hit = s.values.some((name) => progTypeNumber(name) === v);
      return { selector: key, result: s.not ? !hit : hit, reason: `${progTypeName(v)} is ${hit ? '' : 'not '}listed` };
    }
    case 'new_uid':
    case 'new_gid':
    case 'uid':
    case 'gid': {
      const v = facts[key];
      if (v === undefined) return unknown(key);
      const r = inSet(sel as number[], v, String(v), lists);
      return { selector: key, result: r.result, reason: r.reason };
    }
    case 'cgroup': {
      const ids = facts.cgroups;
      if (!ids) return unknown('the cgroup');
      const c = sel as NonNullable<Match['cgroup']>;
      if (c.path?.length) return unknown('a cgroup path (resolve it to an id)');
      for (const id of ids) {
        if ((c.id ?? []).includes(id)) return { selector: key, result: true, reason: `cgroup ${id}` };
        const l = (c.list ?? []).find((name) => lists.has(name, id.toString()));
        if (l) return { selector: key, result: true, reason: `list ${l} has cgroup ${id}` };
      }
      return { selector: key, result: false, reason: 'no cgroup of the task is listed' };
    }
    case 'env': {
      const names = facts.env;
      if (!names) return unknown('the environment');
      const s = setSelector(sel as string[]);
      const hitName = names.find((n) => s.values.includes(n) || s.lists.some((l) => lists.has(l, n)));
      const hit = hitName !== undefined;
      return { selector: key, result: s.not ? !hit : hit, reason: hit ? `${hitName} is set` : 'none of the names is set' };
    }
    case 'fstype':
    case 'module':
    case 'device': {
      const v = facts[key];
      if (v === undefined) return unknown(key);
      const r = inSet(sel as string[], v, v, lists);
      return { selector: key, result: r.result, reason: r.reason };
    }
    case 'address': {
      const v = facts.address;
      if (v === undefined) return unknown('the address');
      const s = setSelector(sel as string[]);
      let hit = s.values.some((c) => addressMatches(c, v));
      if (!hit) hit = s.lists.some((l) => lists.has(l, v));
      return { selector: key, result: s.not ? !hit : hit, reason: hit ? `${v} is in a listed network` : `${v} is in no listed network` };
    }
    case 'sha256': {
      // An unknown digest is on no list (the kernel's sha256_dim): deny-unless-listed rules still deny.
      const s = setSelector(sel as string[]);
      const v = facts.sha256;
      const hit = v !== undefined && (s.values.includes(v) || s.lists.some((l) => lists.has(l, v)));
      const why = v === undefined ? 'the digest is unknown: on no list' : hit ? `sha256 ${v} is listed` : `sha256 ${v} is not listed`;
      return { selector: key, result: s.not ? !hit : hit, reason: s.not ? `not: ${why}` : why };
    }
    case 'bus': {
      const v = facts.bus;
      if (v === undefined) return unknown('the bus (no block device)');
      const s = setSelector(sel as string[]);
      const hitBus = v.find((b) => s.values.includes(b));
      const hit = hitBus !== undefined;
      const why = hit ? `on bus ${hitBus}` : `on none of the buses (${v.join(', ') || 'no bus'})`;
      return { selector: key, result: s.not ? !hit : hit, reason: s.not ? `not: ${why}` : why };
    }
    case 'removable': {
      const v = facts.removable;
      if (v === undefined) return unknown('removable (no block device)');
      return { selector: key, result: v === sel, reason: v ? 'the disk is removable' : 'the disk is not removable' };
    }
    case 'port': {
      const v = facts.port;
      if (v === undefined) return unknown('the port');
      const s = setSelector(sel as Array<number | string>);
      let hit = expandPorts(s.values).includes(v);
      if (!hit) hit = s.lists.some((l) => lists.has(l, String(v)));
      return { selector: key, result: s.not ? !hit : hit, reason: hit ? `port ${v} is listed` : `port ${v} is not listed` };
    }
  }
}

/** The rules of `hook` in the order the compiler numbers them (bit order). */
export function rulesOf(policies: readonly Policy[], hook: HookName): Array<{ policy: Policy; rule: Policy['spec']['rules'][number] }> {
  return policies.flatMap((policy) => policy.spec.rules.filter((r) => r.hook === hook).map((rule) => ({ policy, rule })));
}

/**
 * A process's binary classes (its binary, parent or ancestors, outside exec)
 * can be unknown in the kernel: task storage that could not be allocated, a
 * process that raced a generation swap. That fails closed: the selector
 * counts as met for rules that restrict and as missed for the others.
 */
function failsClosed(hook: HookName, selector: keyof Match, action: ActionName): boolean {
  const lineage = selector === 'parent' || selector === 'ancestor' || (selector === 'binary' && hook !== 'exec');
  return lineage && (action === 'deny' || action === 'kill' || action === 'secureexec');
}

export function evaluatePolicies(policies: readonly Policy[], facts: EventFacts, lists: ListMembership = noLists): Decision {
  if (!HOOKS.includes(facts.hook)) throw new Error(`unknown hook ${facts.hook}`);
  const trace: RuleTrace[] = rulesOf(policies, facts.hook).map(({ policy, rule }) => {
    const selectors = (Object.entries(rule.match) as Array<[keyof Match, Match[keyof Match]]>)
      .filter(([, sel]) => sel !== undefined)
      .map(([key, sel]) => evaluateSelector(key, sel!, facts, lists));
    const inForce = !rule.afterLockPoint || facts.lockPoint === true;
    return {
      policy: policy.metadata.name,
      rule: rule.name,
      action: rule.action,
      mode: rule.mode ?? policy.spec.mode,
      matched: inForce && selectors.every((s) => s.result === true || (s.result === 'unknown' && failsClosed(facts.hook, s.selector, rule.action))),
      ...(inForce ? {} : { inForce: false as const }),
      selectors,
    };
  });
  const ref = (t: RuleTrace): RuleRef => ({ policy: t.policy, rule: t.rule, action: t.action, mode: t.mode });
  const matched = trace.filter((t) => t.matched);
  const enforced = matched.filter((t) => t.mode === 'enforce');
  const killer = enforced.find((t) => t.action === 'kill');
  const denier = killer ?? enforced.find((t) => t.action === 'deny');
  const allower = enforced.find((t) => t.action === 'allow');

  let defaultAction: Decision['defaultAction'] = 'allow';
  for (const p of policies) {
    const d = p.spec.defaults?.[facts.hook];
    if (d === 'deny') defaultAction = p.spec.mode === 'monitor' ? 'monitor-deny' : 'deny';
  }

  let verdict: Decision['verdict'];
  let decidedBy: RuleRef | null = null;
  let action: ActionName;
  if (denier) {
    verdict = 'deny';
    decidedBy = ref(denier);
    action = denier.action;
  } else if (allower) {
    verdict = 'allow';
    decidedBy = ref(allower);
    action = 'allow';
  } else {
    verdict = defaultAction === 'deny' ? 'deny' : 'allow';
    action = verdict;
  }
  const would = matched.find((t) => t.mode === 'monitor' && (t.action === 'deny' || t.action === 'kill'));
  const audit = matched.find((t) => t.action === 'audit');
  return {
    verdict,
    decidedBy,
    action,
    defaultAction,
    killed: action === 'kill',
    secureexec: verdict === 'allow' && enforced.some((t) => t.action === 'secureexec'),
    wouldDeny: would ? ref(would) : null,
    defaultWouldDeny: !denier && !allower && defaultAction === 'monitor-deny' && !would,
    audit: audit ? ref(audit) : null,
    matched: matched.map(ref),
    trace,
  };
}

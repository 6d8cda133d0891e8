// Policy test fixtures, for `krsi policy test`: policies, the contents of
// their dynamic lists, and events with the decision each should get. The
// decisions come from evaluatePolicies (src/policy/evaluate.ts), the policy
// semantics the kernel is tested against: no agent and no kernel needed,
// which is what a CI job has.
//
//   policies:                      # files or directories (relative to this file), or policy documents
//     - ../policies/
//   lists:                         # optional: what these lists hold during the tests
//     blocked-destinations: [203.0.113.0/24]
//   cases:
//     - name: a shell under nginx is killed
//       event: {hook: exec, binary: /usr/bin/dash, ancestors: [/usr/sbin/nginx]}
//       expect: {decision: deny, rule: webserver-no-shell/kill-shell-under-web-server, action: kill}
import { readFile, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node as YamlNode } from 'yaml';
import { z } from 'zod';
import { EventFactsSchema } from '../../control/protocol.js';
import { FACTS } from '../../families/index.js';
import { evaluatePolicies, type Decision, type EventFacts, type ListMembership, type RuleRef, type RuleTrace } from '../../policy/evaluate.js';
import { checkPolicy, loadPolicies, validatePolicySet, type LoadedPolicy, type PolicyError, type PolicyPath } from '../../policy/load.js';
import { ACTIONS, parseCidr, type Cidr, type ListType, type Policy } from '../../policy/schema.js';

const MAX_FIXTURE_BYTES = 16 * 1024 * 1024;

const ruleRef = z.string().regex(/^[a-z0-9][a-z0-9-]*\/[a-z0-9][a-z0-9-]*$/, 'policy/rule, e.g. egress/deny-blocked-destinations');

const ExpectSchema = z
  .object({
    decision: z.enum(['allow', 'deny']),
    /** The deciding rule, or "default" when the hook's default decides. */
    rule: z.union([z.literal('default'), ruleRef]).optional(),
    action: z.enum(ACTIONS).optional(),
    secureexec: z.boolean().optional(),
    killed: z.boolean().optional(),
    /** A monitor-mode rule that would have denied ("default": a monitor-mode default); null: none. */
    wouldDeny: z.union([z.literal('default'), ruleRef]).nullable().optional(),
    /** The first audit rule that matched; null: none. */
    audit: ruleRef.nullable().optional(),
  })
  .strict();
export type Expectation = z.output<typeof ExpectSchema>;

const CaseSchema = z
  .object({
    name: z.string().min(1),
    event: EventFactsSchema,
    expect: ExpectSchema,
  })
  .strict();

const FixtureSchema = z
  .object({
    policies: z.array(z.union([z.string().min(1), z.record(z.string(), z.unknown())])).min(1),
    lists: z.record(z.string(), z.array(z.union([z.string(), z.number()]))).optional(),
    cases: z.array(CaseSchema).min(1),
  })
  .strict();

const KNOWN_KEYS: Array<{ at: (path: PolicyPath) => boolean; keys: string[] }> = [
  { at: (p) => p.length === 0, keys: Object.keys(FixtureSchema.shape) },
  { at: (p) => p.length === 2 && p[0] === 'cases', keys: Object.keys(CaseSchema.shape) },
  { at: (p) => p.length === 3 && p[0] === 'cases' && p[2] === 'event', keys: ['hook', ...Object.keys(FACTS)] },
  { at: (p) => p.length === 3 && p[0] === 'cases' && p[2] === 'expect', keys: Object.keys(ExpectSchema.shape) },
  { at: (p) => p.length >= 4 && p[0] === 'cases' && p[2] === 'event', keys: ['path', 'dev', 'ino', 'sha256'] },
];

export interface FixtureCase {
  name: string;
  facts: EventFacts;
  expect: Expectation;
}

export interface Fixture {
  file: string;
  policies: Policy[];
  lists: ListMembership;
  cases: FixtureCase[];
}

export interface CaseResult {
  name: string;
  ok: boolean;
  /** Why it failed: one line each. */
  problems: string[];
  decision: Decision;
}

// --- positions ----------------------------------------------------------------

type Locate = (path: PolicyPath, at?: 'value' | 'key') => { line: number; column: number };

function locator(doc: Document, text: string, lineCounter: LineCounter): Locate {
  const position = (offset: number | undefined): { line: number; column: number } => {
    if (offset === undefined) return { line: 1, column: 1 };
    const { line, col } = lineCounter.linePos(Math.max(0, Math.min(offset, text.length)));
    return { line: Math.max(1, line), column: Math.max(1, col) };
  };
  return (path, at = 'value') => {
    let node: unknown = doc.contents;
    let offset = start(node);
    for (let i = 0; i < path.length; i++) {
      const seg = path[i] as string | number;
      if (isAlias(node)) node = node.resolve(doc);
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
        if (!pair) break;
        const keyOffset = start(pair.key) ?? offset;
        if ((i === path.length - 1 && at === 'key') || pair.value === null) {
          offset = keyOffset;
          break;
        }
        node = pair.value;
        offset = start(node) ?? keyOffset;
      } else if (isSeq(node) && typeof seg === 'number' && node.items[seg] !== undefined) {
        node = node.items[seg];
        offset = start(node) ?? offset;
      } else break;
    }
    return position(offset);
  };
}

function start(node: unknown): number | undefined {
  return (node as YamlNode | null | undefined)?.range?.[0];
}

// --- schema issues ------------------------------------------------------------

interface Problem {
  path: PolicyPath;
  message: string;
  at: 'value' | 'key';
}

function valueAt(root: unknown, path: PolicyPath): unknown {
  let v = root;
  for (const seg of path) {
    if (v === null || typeof v !== 'object' || !Object.hasOwn(v, seg)) return undefined;
    v = (v as Record<string | number, unknown>)[seg];
  }
  return v;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  return String(value);
}

function explainIssue(issue: z.core.$ZodIssue, base: PolicyPath, root: unknown): Problem[] {
  const path: PolicyPath = [...base, ...issue.path.map((k) => (typeof k === 'number' ? k : String(k)))];
  const value = valueAt(root, path);
  const last = path[path.length - 1];
  switch (issue.code) {
    case 'invalid_union': {
      const branches = issue.errors.filter((b) => b.length > 0 && !b.every((i) => i.path.length === 0 && (i.code === 'invalid_type' || i.code === 'invalid_value')));
      const best = branches.sort((a, b) => Math.max(...b.map((i) => i.path.length)) - Math.max(...a.map((i) => i.path.length)))[0];
      if (best) return best.flatMap((i) => explainIssue(i, path, root));
      if (value === undefined && typeof last === 'string') return [{ path, message: `missing required key "${last}"`, at: 'value' }];
      if (path[0] === 'policies' && path.length === 2) return [{ path, message: `expected a policy file path or a policy document, got ${describe(value)}`, at: 'value' }];
      const expected = [
        ...new Set(
          issue.errors.flat().flatMap((i) => (i.code === 'invalid_type' ? [i.expected] : i.code === 'invalid_value' ? i.values.map((v) => JSON.stringify(v)) : [])),
        ),
      ];
      return [{ path, message: `expected ${expected.join(' or ') || 'something else'}, got ${describe(value)}`, at: 'value' }];
    }
    case 'unrecognized_keys': {
      const known = KNOWN_KEYS.find((k) => k.at(path))?.keys ?? [];
      return issue.keys.map((key) => ({
        path: [...path, key],
        message: `unknown key "${key}"${known.length ? `; expected one of ${known.join(', ')}` : ''}`,
        at: 'key' as const,
      }));
    }
    case 'invalid_type':
      if (value === undefined && typeof last === 'string') return [{ path, message: `missing required key "${last}"`, at: 'value' }];
      return [{ path, message: `expected ${issue.expected}, got ${describe(value)}`, at: 'value' }];
    case 'invalid_value': {
      if (value === undefined && typeof last === 'string') return [{ path, message: `missing required key "${last}"`, at: 'value' }];
      const values = issue.values.map((v) => (typeof v === 'string' ? v : JSON.stringify(v)));
      return [{ path, message: values.length === 1 ? `expected ${values[0]}, got ${describe(value)}` : `expected one of ${values.join(', ')}; got ${describe(value)}`, at: 'value' }];
    }
    case 'too_small':
      if (issue.origin === 'array') return [{ path, message: 'must not be empty', at: 'value' }];
      if (issue.origin === 'number' || issue.origin === 'int') return [{ path, message: `must be at least ${String(issue.minimum)}, got ${describe(value)}`, at: 'value' }];
      return [{ path, message: issue.message, at: 'value' }];
    case 'too_big':
      if (issue.origin === 'number' || issue.origin === 'int') {
        const hint = Number(issue.maximum) === Number.MAX_SAFE_INTEGER ? ' (write a 64-bit number as a quoted decimal string)' : '';
        return [{ path, message: `must be at most ${String(issue.maximum)}, got ${describe(value)}${hint}`, at: 'value' }];
      }
      return [{ path, message: issue.message, at: 'value' }];
    case 'invalid_format':
      return [{ path, message: `${describe(value)} is not valid: expected ${issue.message}`, at: 'value' }];
    default:
      return [{ path, message: issue.message, at: 'value' }];
  }
}

// --- lists --------------------------------------------------------------------

interface TestList {
  type: ListType;
  entries: Set<string>;
  nets: Cidr[];
  ports: Array<[number, number]>;
}

/** Why `entry` cannot be in a list of this type, if it cannot. */
function badEntry(type: ListType, entry: string): string | undefined {
  const u32 = (s: string): boolean => /^\d{1,10}$/.test(s) && Number(s) <= 0xffff_ffff;
  switch (type) {
    case 'path':
      return entry.startsWith('/') ? undefined : 'a path list takes absolute paths';
    case 'inode':
      return /^\d+:\d+:\d+$/.test(entry) ? undefined : 'an inode list takes major:minor:inode (8:1:1234)';
    case 'sha256':
      return /^[0-9a-f]{64}$/.test(entry) ? undefined : 'a sha256 list takes 64 lower-case hex digits';
    case 'uid':
    case 'gid':
      return u32(entry) ? undefined : `a ${type} list takes numeric ids`;
    case 'cgroup':
      return /^\d{1,20}$/.test(entry) ? undefined : 'a cgroup list takes cgroup ids';
    case 'device':
      return /^\d+:\d+$/.test(entry) ? undefined : 'a device list takes major:minor';
    case 'address':
      return parseCidr(entry) ? undefined : 'an address list takes IPv4 or IPv6 addresses and networks';
    case 'port':
      return portRange(entry) ? undefined : 'a port list takes ports (1-65535) and ranges (8000-8100)';
    default:
      return entry === '' ? 'an entry is empty' : undefined;
  }
}

function portRange(entry: string): [number, number] | undefined {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(entry);
  if (!m) return undefined;
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  return lo >= 1 && hi <= 65535 && lo <= hi ? [lo, hi] : undefined;
}

function inNet(net: Cidr, addr: Cidr): boolean {
  for (let bit = 0; bit < net.prefixLen; bit++) {
    const mask = 0x80 >> (bit & 7);
    if (((net.bytes[bit >> 3] ?? 0) & mask) !== ((addr.bytes[bit >> 3] ?? 0) & mask)) return false;
  }
  return true;
}

function makeList(type: ListType, entries: Iterable<string>): TestList {
  const list: TestList = { type, entries: new Set(), nets: [], ports: [] };
  for (const e of entries) {
    list.entries.add(e);
    if (type === 'address') {
      const net = parseCidr(e);
      if (net) list.nets.push(net);
    } else if (type === 'port') {
      const range = portRange(e);
      if (range) list.ports.push(range);
    }
  }
  return list;
}

/** List membership as the kernel's maps answer it: networks contain addresses, ranges contain ports, the rest is exact. */
function membership(lists: ReadonlyMap<string, TestList>): ListMembership {
  return {
    has(name, entry) {
      const list = lists.get(name);
      if (!list) return false;
      if (list.type === 'address') {
        const addr = parseCidr(entry);
        return addr !== null && list.nets.some((net) => inNet(net, addr));
      }
      if (list.type === 'port') {
        const port = Number(entry);
        return list.ports.some(([lo, hi]) => port >= lo && port <= hi);
      }
      return list.entries.has(entry);
    },
  };
}

// --- loading ------------------------------------------------------------------

/** Reads, validates and prepares one fixture file: every problem is reported, with its position. */
export async function loadFixture(file: string): Promise<{ fixture?: Fixture; errors: PolicyError[] }> {
  const errors: PolicyError[] = [];
  const at = (line: number, column: number, message: string, path: PolicyPath = []): PolicyError => ({ file, line, column, path, message });
  let text: string;
  try {
    const info = await stat(file);
    if (!info.isFile()) return { errors: [at(0, 0, 'not a file')] };
    if (info.size > MAX_FIXTURE_BYTES) return { errors: [at(0, 0, `file is larger than ${MAX_FIXTURE_BYTES} bytes`)] };
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { errors: [at(0, 0, code === 'ENOENT' ? 'no such file or directory' : code === 'EACCES' ? 'permission denied' : `cannot read: ${String(err)}`)] };
  }

  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, strict: true, version: '1.2', merge: false, logLevel: 'error' });
  const locate = locator(doc, text, lineCounter);
  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      const { line, col } = lineCounter.linePos(e.pos[0]);
      errors.push(at(line, col, `YAML: ${(e.message.split('\n')[0] ?? e.message).replace(/ at line \d+, column \d+:?$/, '')}`));
    }
    return { errors };
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    return { errors: [at(1, 1, `YAML: ${err instanceof Error ? err.message : String(err)}`)] };
  }
  const parsed = FixtureSchema.safeParse(value);
  if (!parsed.success) {
    const seen = new Set<string>();
    for (const issue of parsed.error.issues) {
      for (const p of explainIssue(issue, [], value)) {
        const key = `${p.path.join('\0')}\0${p.message}`;
        if (seen.has(key)) continue;
        seen.add(key);
        // A missing key is reported where it is missing: at the mapping that lacks it.
        const where = p.message.startsWith('missing required key') ? p.path.slice(0, -1) : p.path;
        errors.push({ file, ...locate(where, p.at), path: p.path, message: `${where.length ? `${where.join('.')}: ` : ''}${p.message}` });
      }
    }
    return { errors: sortErrors(errors) };
  }
  const fixture = parsed.data;

  // Policies: paths relative to the fixture, and inline documents.
  const dir = dirname(file);
  const loaded: LoadedPolicy[] = [];
  const pathItems = fixture.policies.flatMap((p, i) => (typeof p === 'string' ? [{ i, given: p, path: resolve(dir, p) }] : []));
  if (pathItems.length > 0) {
    const result = await loadPolicies(pathItems.map((p) => p.path));
    loaded.push(...result.policies);
    for (const e of result.errors) {
      // A path that cannot be read is the fixture's error: point at where it is named.
      const item = e.line === 0 ? pathItems.find((p) => p.path === e.file) : undefined;
      errors.push(item ? { ...e, file, ...locate(['policies', item.i]), message: `policies.${item.i}: ${item.given}: ${e.message}` } : e);
    }
  }
  fixture.policies.forEach((p, i) => {
    if (typeof p === 'string') return;
    const { policy, issues } = checkPolicy(p);
    const pos = locate(['policies', i]);
    if (policy) {
      loaded.push({ policy, source: { file, line: pos.line, document: i + 1 } });
      return;
    }
    for (const issue of issues) {
      const path: PolicyPath = ['policies', i, ...issue.path];
      const e: PolicyError = { file, ...locate(path, issue.message.startsWith('unknown key') ? 'key' : 'value'), path, message: issue.message };
      if (issue.policy !== undefined) e.policy = issue.policy;
      if (issue.rule !== undefined) e.rule = issue.rule;
      errors.push(e);
    }
  });
  // The set as a whole (names, lists, defaults), when each part is valid.
  if (errors.length === 0) for (const e of validatePolicySet(loaded)) errors.push(e.file === '' ? { ...e, file } : e);

  // Lists: declared by the policies, with their initial entries unless the fixture says what they hold.
  const lists = new Map<string, TestList>();
  for (const { policy } of loaded) {
    for (const decl of policy.spec.lists) {
      const list = lists.get(decl.name);
      if (list) for (const e of decl.entries ?? []) list.entries.add(e);
      else lists.set(decl.name, makeList(decl.type, decl.entries ?? []));
    }
  }
  for (const [name, list] of lists) lists.set(name, makeList(list.type, list.entries));
  for (const [name, entries] of Object.entries(fixture.lists ?? {})) {
    const declared = lists.get(name);
    if (!declared) {
      const names = [...lists.keys()];
      errors.push({
        file,
        ...locate(['lists', name], 'key'),
        path: ['lists', name],
        message: `lists.${name}: no policy of this fixture declares a list ${name}${names.length ? ` (declared: ${names.join(', ')})` : ''}`,
      });
      continue;
    }
    const texts = entries.map(String);
    texts.forEach((entry, j) => {
      const bad = badEntry(declared.type, entry);
      if (bad) errors.push({ file, ...locate(['lists', name, j]), path: ['lists', name, j], message: `lists.${name}.${j}: ${JSON.stringify(entry)}: ${bad}` });
    });
    lists.set(name, makeList(declared.type, texts));
  }

  if (errors.length > 0) return { errors: sortErrors(errors) };
  return {
    fixture: {
      file,
      policies: loaded.map((l) => l.policy),
      lists: membership(lists),
      cases: fixture.cases.map((c) => ({ name: c.name, facts: c.event, expect: c.expect })),
    },
    errors: [],
  };
}

function sortErrors(errors: PolicyError[]): PolicyError[] {
  return errors.sort((a, b) => (a.file === b.file ? a.line - b.line || a.column - b.column : 0));
}

// --- running ------------------------------------------------------------------

export const refText = (r: RuleRef | null): string => (r ? `${r.policy}/${r.rule}` : 'default');

/** Compares a decision with what a case expects; every mismatch is one line. */
export function checkExpectation(expect: Expectation, d: Decision): string[] {
  const problems: string[] = [];
  const by = refText(d.decidedBy);
  if (d.verdict !== expect.decision || (expect.rule !== undefined && expect.rule !== by)) {
    problems.push(`expected ${expect.decision}${expect.rule === undefined ? '' : ` by ${expect.rule}`}, got ${d.verdict} by ${by}`);
  }
  if (expect.action !== undefined && expect.action !== d.action) problems.push(`expected action ${expect.action}, got ${d.action}`);
  if (expect.secureexec !== undefined && expect.secureexec !== d.secureexec) {
    problems.push(expect.secureexec ? 'expected secureexec, got none' : 'expected no secureexec, got secureexec');
  }
  if (expect.killed !== undefined && expect.killed !== d.killed) problems.push(expect.killed ? 'expected the process killed, it was not' : 'expected no kill, got one');
  if (expect.wouldDeny !== undefined) {
    const got = d.wouldDeny ? refText(d.wouldDeny) : d.defaultWouldDeny ? 'default' : null;
    if (got !== expect.wouldDeny) problems.push(`expected would-deny by ${expect.wouldDeny ?? 'none'}, got ${got ?? 'none'}`);
  }
  if (expect.audit !== undefined) {
    const got = d.audit ? refText(d.audit) : null;
    if (got !== expect.audit) problems.push(`expected audit by ${expect.audit ?? 'none'}, got ${got ?? 'none'}`);
  }
  return problems;
}

export function runFixture(fixture: Fixture): CaseResult[] {
  return fixture.cases.map((c) => {
    const decision = evaluatePolicies(fixture.policies, c.facts, fixture.lists);
    const problems = checkExpectation(c.expect, decision);
    return { name: c.name, ok: problems.length === 0, problems, decision };
  });
}

const MARK = { true: '✔', false: '✘', unknown: '?' } as const;

/** The rules of the event's hook and each selector's outcome, one line a rule. */
export function traceLines(trace: readonly RuleTrace[]): string[] {
  return trace.map((t) => {
    const selectors = t.selectors.map((s) => `${MARK[String(s.result) as keyof typeof MARK]} ${s.selector}: ${s.reason}`);
    return `${t.matched ? MARK.true : MARK.false} ${t.policy}/${t.rule} (${t.action}${t.mode === 'monitor' ? ', monitor' : ''})${selectors.length ? `: ${selectors.join('; ')}` : ': no selectors'}`;
  });
}

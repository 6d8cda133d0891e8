// Loading policies from YAML and JSON files: every problem becomes an error
// with a position (file:line:column, the policy, the rule), and a load with
// errors reports all of them; nothing here throws. Whether anything is applied
// when there are errors is the caller's decision (krsi applies nothing).
//
// Two levels of checks: each document against PolicySchema (parsePolicyText),
// then the set of all loaded policies together (validatePolicySet): names,
// lists, defaults and the per-hook rule budget are global.
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseAllDocuments, visit, type Document, type Node as YamlNode } from 'yaml';
import { z } from 'zod';
import { SELECTORS } from '../families/index.js';
import { HOOKS, PolicySchema, type HookName, type ListType, type Match, type Policy } from './schema.js';

export type PolicyPath = (string | number)[];

/** A problem with a policy, independent of where it was written. */
export interface PolicyIssue {
  policy?: string;
  rule?: string;
  /** Where in the policy document: ['spec', 'rules', 0, 'match', 'uid', 0]. */
  path: PolicyPath;
  message: string;
}

/** A problem with a policy file. `line` and `column` are 1-based; both are 0 when the error concerns the whole file (it cannot be read). */
export interface PolicyError extends PolicyIssue {
  file: string;
  line: number;
  column: number;
}

export interface LoadedPolicy {
  policy: Policy;
  /** `document` is the policy's 1-based position in its file: YAML documents and elements of a top-level list, in order. */
  source: { file: string; line: number; document: number };
}

export interface LoadResult {
  policies: LoadedPolicy[];
  errors: PolicyError[];
}

export const POLICY_FILE_SUFFIXES: readonly string[] = ['.yaml', '.yml', '.json'];
/** The kernel evaluates a hook's rules as the bits of a u64. */
export const MAX_RULES_PER_HOOK = 64;
/** Errors reported per file, at most; past it, one more says how many were left out (a file of garbage gives thousands). */
export const MAX_ERRORS_PER_FILE = 200;
/** Larger files are refused rather than read. */
export const MAX_POLICY_FILE_BYTES = 16 * 1024 * 1024;

/** Which list types each selector can reference: a list's entries must be of the kind the selector compares. */
export const SELECTOR_LIST_TYPES = Object.fromEntries(Object.entries(SELECTORS).map(([key, sel]) => [key, sel.lists as readonly ListType[]])) as Readonly<
  Record<keyof Match, readonly ListType[]>
>;

// --- formatting ---------------------------------------------------------------

/** `file:line:col: policy <p> rule <r>: message`, leaving out what is unknown. */
export function formatPolicyError(e: PolicyError): string {
  const where = e.line > 0 ? `${e.file}:${e.line}:${e.column}` : e.file;
  const who = [e.policy === undefined ? '' : `policy ${printable(e.policy)}`, e.rule === undefined ? '' : `rule ${printable(e.rule)}`]
    .filter(Boolean)
    .join(' ');
  return `${where}: ${who ? `${who}: ` : ''}${e.message}`;
}

/** `policy <p> rule <r> at spec.rules.0.match.uid: message`, for issues without a file (the TypeScript API). */
export function formatPolicyIssue(e: PolicyIssue): string {
  const parts = [
    e.policy === undefined ? '' : `policy ${printable(e.policy)}`,
    e.rule === undefined ? '' : `rule ${printable(e.rule)}`,
    e.path.length ? `at ${printable(e.path.join('.'), 200)}` : '',
  ].filter(Boolean);
  return parts.length ? `${parts.join(' ')}: ${e.message}` : e.message;
}

/** Names and values from a document, made safe to print on one line. */
function printable(s: string, max = 64): string {
  const escaped = s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return escaped.length > max ? `${escaped.slice(0, max)}…` : escaped;
}

function quote(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return `"${printable(value.replace(/["\\]/g, (c) => `\\${c}`), 48)}"`;
    case 'number':
    case 'boolean':
    case 'bigint':
      return String(value);
    case 'undefined':
      return 'nothing';
    default:
      if (value === null) return 'null';
      if (Array.isArray(value)) return 'a list';
      if (value instanceof Uint8Array) return 'binary data';
      if (value instanceof Date) return 'a date';
      return 'a mapping';
  }
}

// --- schema issues ----------------------------------------------------------

type Issue = z.core.$ZodIssue;

/** An issue with where to point: at the value, or at the key (an unknown key). */
interface Problem {
  path: PolicyPath;
  message: string;
  at: 'value' | 'key';
}

/** Validates one document and explains what is wrong with it, precisely. */
export function checkPolicy(value: unknown): { policy?: Policy; issues: PolicyIssue[] } {
  const result = PolicySchema.safeParse(value);
  if (result.success) return { policy: result.data, issues: [] };
  return { issues: explainIssues(result.error.issues, value).map((p) => withNames(value, { path: p.path, message: p.message })) };
}

function explainIssues(issues: readonly Issue[], root: unknown): Problem[] {
  const problems: Problem[] = [];
  const seen = new Set<string>();
  for (const issue of issues) {
    for (const p of explainIssue(issue, [], root)) {
      const key = `${p.path.join('\0')}\0${p.message}`;
      if (!seen.has(key)) {
        seen.add(key);
        problems.push(p);
      }
    }
  }
  return problems;
}

function explainIssue(issue: Issue, base: PolicyPath, root: unknown): Problem[] {
  const path: PolicyPath = [...base, ...issue.path.map((k) => (typeof k === 'number' ? k : String(k)))];
  const value = valueAt(root, path);
  switch (issue.code) {
    case 'invalid_union': {
      // Zod reports every alternative; the one whose shape the value has is
      // the one the user meant (a list of uids with a name in it is a list of
      // uids with a bad entry, not a bad mapping).
      const branches = issue.errors.filter((b) => b.length > 0 && !b.every((i) => i.path.length === 0 && i.code === 'invalid_type'));
      const best = branches.sort((a, b) => depth(b) - depth(a) || a.length - b.length)[0];
      if (best) return best.flatMap((i) => explainIssue(i, path, root));
      const expected = [...new Set(issue.errors.flat().flatMap((i) => (i.code === 'invalid_type' ? [typeName(i.expected)] : [])))];
      if (expected.length) return [{ path, message: `expected ${expected.join(' or ')}, got ${quote(value)}`, at: 'value' }];
      return [{ path, message: `invalid value ${quote(value)}`, at: 'value' }];
    }
    case 'unrecognized_keys': {
      const known = objectKeysAt(path, root);
      return issue.keys.map((key) => {
        const hint = suggest(key, known);
        return {
          path: [...path, key],
          message: `unknown key ${quote(key)}${hint ? ` (did you mean "${hint}"?)` : known.length ? `; expected one of ${known.join(', ')}` : ''}`,
          at: 'key' as const,
        };
      });
    }
    case 'invalid_type': {
      const last = path[path.length - 1];
      if (value === undefined && typeof last === 'string' && path.length > 0) {
        return [{ path, message: `missing required key "${last}"`, at: 'value' }];
      }
      return [{ path, message: `expected ${typeName(issue.expected)}, got ${quote(value)}`, at: 'value' }];
    }
    case 'invalid_value': {
      const values = issue.values.map((v) => (typeof v === 'string' ? v : String(v)));
      const last = path[path.length - 1];
      const message =
        value === undefined && typeof last === 'string'
          ? `missing required key "${last}" (${values.length === 1 ? `"${values[0]}"` : `one of ${values.join(', ')}`})`
          : values.length === 1
            ? `expected "${values[0]}", got ${quote(value)}`
            : `expected one of ${values.join(', ')}; got ${quote(value)}`;
      return [{ path, message, at: 'value' }];
    }
    case 'too_small': {
      const min = Number(issue.minimum);
      const message =
        issue.origin === 'array'
          ? min === 1
            ? 'must not be empty'
            : `must have at least ${min} entries`
          : issue.origin === 'string'
            ? issue.message
            : `must be at least ${min}, got ${quote(value)}`;
      return [{ path, message, at: 'value' }];
    }
    case 'too_big': {
      const max = Number(issue.maximum);
      const message =
        issue.origin === 'array' ? `must have at most ${max} entries` : issue.origin === 'string' ? issue.message : `must be at most ${max}, got ${quote(value)}`;
      return [{ path, message, at: 'value' }];
    }
    case 'invalid_format':
      return [{ path, message: `${quote(value)} is not valid: expected ${issue.message}`, at: 'value' }];
    default:
      return [{ path, message: issue.message, at: 'value' }];
  }
}

function depth(issues: readonly Issue[]): number {
  return Math.max(...issues.map((i) => i.path.length));
}

function typeName(expected: string): string {
  switch (expected) {
    case 'array':
      return 'a list';
    case 'object':
      return 'a mapping';
    case 'int':
      return 'an integer';
    case 'number':
      return 'a number';
    case 'string':
      return 'a string';
    case 'boolean':
      return 'true or false';
    default:
      return expected;
  }
}

function valueAt(root: unknown, path: PolicyPath): unknown {
  let v = root;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = Object.hasOwn(v, seg) ? (v as Record<string | number, unknown>)[seg] : undefined;
  }
  return v;
}

/** The policy and rule an issue is about, as the document names them (even when those names are themselves invalid). */
function withNames(root: unknown, issue: PolicyIssue): PolicyIssue {
  const out: PolicyIssue = { ...issue };
  const policy = valueAt(root, ['metadata', 'name']);
  if (typeof policy === 'string') out.policy = policy;
  const [a, b, index] = issue.path;
  if (a === 'spec' && b === 'rules' && typeof index === 'number') {
    const rule = valueAt(root, ['spec', 'rules', index, 'name']);
    if (typeof rule === 'string') out.rule = rule;
  }
  return out;
}

// Schema introspection: the keys an object accepts at a path, for "unknown
// key" hints. Only wrapper, object, array and union nodes are walked.
interface SchemaDef {
  type: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  options?: z.ZodType[];
}

function defOf(schema: z.ZodType): SchemaDef {
  return schema._zod.def as unknown as SchemaDef;
}

/** The schema a value at this level is checked against, through optional/default/pipe wrappers and unions (chosen by the value's shape). */
export function unwrapSchema(schema: z.ZodType, value: unknown): z.ZodType {
  for (let i = 0; i < 32; i++) {
    const def = defOf(schema);
    if (def.innerType && ['optional', 'default', 'nullable', 'readonly', 'prefault', 'catch', 'nonoptional'].includes(def.type)) {
      schema = def.innerType;
    } else if (def.type === 'pipe' && def.in) {
      schema = def.in;
    } else if (def.type === 'union' && def.options) {
      const want = Array.isArray(value) ? 'array' : value !== null && typeof value === 'object' ? 'object' : undefined;
      const option = def.options.find((o) => defOf(unwrapSchema(o, value)).type === want) ?? def.options[0];
      if (!option) return schema;
      schema = option;
    } else return schema;
  }
  return schema;
}

function objectKeysAt(path: PolicyPath, root: unknown): string[] {
  let schema: z.ZodType = PolicySchema;
  let value = root;
  for (const seg of path) {
    schema = unwrapSchema(schema, value);
    const def = defOf(schema);
    if (def.type === 'object' && def.shape && typeof seg === 'string' && Object.hasOwn(def.shape, seg)) {
      schema = def.shape[seg] as z.ZodType;
    } else if (def.type === 'array' && def.element && typeof seg === 'number') {
      schema = def.element;
    } else return [];
    value = valueAt(value, [seg]);
  }
  const def = defOf(unwrapSchema(schema, value));
  return def.type === 'object' && def.shape ? Object.keys(def.shape) : [];
}

function suggest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const k of known) {
    const d = editDistance(key.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 3 || a.length > 64) return Infinity;
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length] ?? Infinity;
}

// --- positions --------------------------------------------------------------

type Locate = (path: PolicyPath, at?: 'value' | 'key') => { line: number; column: number };

/** Where each loaded policy's nodes are, for the set-level checks; keyed by the policy object. */
const locators = new WeakMap<Policy, Locate>();

/** The offset of the node at `path` (below `base`, the policy's own node), or of the nearest node above it that exists. */
function nodeOffset(doc: Document, base: PolicyPath, path: PolicyPath, at: 'value' | 'key'): number | undefined {
  let node: unknown = doc.contents;
  let offset = rangeStart(node);
  const segments = [...base, ...path];
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i] as string | number;
    const last = i === segments.length - 1;
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) return offset;
      const keyOffset = rangeStart(pair.key) ?? offset;
      const value = pair.value;
      // `key:` with nothing after it: point at the key, not at the end of the line.
      const empty = value === null || (isScalar(value) && value.value === null && value.range?.[0] === value.range?.[1]);
      if ((last && at === 'key') || empty) return keyOffset;
      node = value;
      offset = rangeStart(node) ?? keyOffset;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg];
      if (item === undefined || item === null) return offset;
      node = item;
      offset = rangeStart(node) ?? offset;
    } else return offset;
  }
  return offset;
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as YamlNode | null | undefined)?.range;
  return range ? range[0] : undefined;
}

// --- parsing ------------------------------------------------------------------

/**
 * Parses and validates the policies of one file's text (YAML, possibly several
 * documents; JSON is YAML). The set-level checks are not run: a file may use
 * lists declared in another; loadPolicies runs them over all files.
 */
export function parsePolicyText(text: string, file: string): LoadResult {
  const policies: LoadedPolicy[] = [];
  const errors: PolicyError[] = [];
  try {
    parseInto(text, file, policies, errors);
  } catch (e) {
    errors.push({ file, line: 1, column: 1, path: [], message: `cannot parse: ${errorMessage(e)}` });
  }
  errors.sort((a, b) => a.line - b.line || a.column - b.column); // stable: same-place errors keep their order
  if (errors.length > MAX_ERRORS_PER_FILE) {
    const rest = errors.length - MAX_ERRORS_PER_FILE;
    const next = errors[MAX_ERRORS_PER_FILE] as PolicyError;
    errors.length = MAX_ERRORS_PER_FILE;
    errors.push({ file, line: next.line, column: next.column, path: [], message: `${rest} more errors in this file not shown` });
  }
  return { policies, errors };
}

function parseInto(text: string, file: string, policies: LoadedPolicy[], errors: PolicyError[]): void {
  if (text.startsWith('\ufeff')) text = text.slice(1);
  const lineCounter = new LineCounter();
  const position = (offset: number | undefined): { line: number; column: number } => {
    if (offset === undefined || !Number.isFinite(offset)) return { line: 1, column: 1 };
    const { line, col } = lineCounter.linePos(Math.max(0, Math.min(offset, text.length)));
    return { line: Math.max(1, line), column: Math.max(1, col) };
  };
  // The YAML parser recurses once per level of nesting; near the end of the
  // stack, V8 can die outright (a regexp compiled there fails as "out of
  // memory") instead of throwing. So deep nesting is refused before parsing.
  const deep = tooDeepText(text);
  if (deep !== undefined) {
    lineCounter.addNewLine(0);
    for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) lineCounter.addNewLine(i + 1);
    errors.push({ file, ...position(deep), path: [], message: `nested more than ${MAX_NESTING} levels deep` });
    return;
  }
  const docs = parseAllDocuments(text, {
    lineCounter,
    prettyErrors: false,
    uniqueKeys: true,
    strict: true,
    version: '1.2',
    schema: 'core',
    merge: false,
    logLevel: 'error', // warnings are collected below, never printed
  });
  const isJson = extname(file).toLowerCase() === '.json';
  let count = 0;
  let documents = 0;
  for (const doc of docs) {
    const yamlProblems = [...doc.errors, ...doc.warnings];
    for (const e of yamlProblems) {
      errors.push({ file, ...position(e.pos[0]), path: [], message: yamlMessage(e.message) });
    }
    if (isEmptyDocument(doc)) continue; // `---` with nothing, or only comments, after it
    documents++;
    if (isJson && documents === 2) {
      errors.push({ file, ...position(rangeStart(doc.contents)), path: [], message: 'a JSON file holds one policy or a list of policies' });
    }
    if (doc.errors.length > 0) continue; // the structure is unreliable: its YAML errors say enough
    const deepNode = tooDeepDocument(doc);
    if (deepNode !== undefined) {
      errors.push({ file, ...position(deepNode.offset), path: [], message: deepNode.message });
      continue;
    }
    const complexKey = firstComplexKey(doc);
    if (complexKey !== undefined) {
      errors.push({ file, ...position(complexKey), path: [], message: 'YAML: a key must be a plain value, not a list or a mapping' });
      continue;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (e) {
      errors.push({ file, ...position(rangeStart(doc.contents)), path: [], message: yamlMessage(errorMessage(e)) });
      continue;
    }
    const items: { value: unknown; base: PolicyPath }[] = Array.isArray(value)
      ? value.map((v, i) => ({ value: v, base: [i] }))
      : [{ value, base: [] }];
    for (const item of items) {
      count++;
      const locate: Locate = (path, at = 'value') => position(nodeOffset(doc, item.base, path, at));
      const start = locate([]);
      const result = PolicySchema.safeParse(item.value);
      if (result.success) {
        const loaded: LoadedPolicy = { policy: result.data, source: { file, line: start.line, document: count } };
        locators.set(result.data, locate);
        policies.push(loaded);
        continue;
      }
      for (const p of explainIssues(result.error.issues, item.value)) {
        errors.push({ file, ...locate(p.path, p.at), ...withNames(item.value, { path: p.path, message: p.message }) });
      }
    }
  }
}

/** Policies nest about ten levels; anything near this is not a policy. */
const MAX_NESTING = 64;

/**
 * Where the text nests more than MAX_NESTING levels, if it does: block
 * indentation levels (compact `- ` entries count as levels too) and flow
 * collections, skipping quoted strings, block scalars, comments and the
 * brackets of plain text. It over-estimates rather than under-estimates what
 * the parser will recurse into.
 */
function tooDeepText(text: string): number | undefined {
  const n = text.length;
  const isBreak = (c: string | undefined): boolean => c === '\n' || c === '\r';
  const isSpace = (c: string | undefined): boolean => c === ' ' || c === '\t';
  let flow = 0;
  const indents: number[] = [];
  let blockScalarIndent: number | undefined; // inside `key: |` text: lines indented deeper than this
  let i = 0;
  while (i < n) {
    let j = i;
    while (j < n && text.charCodeAt(j) === 0x20) j++;
    const indent = j - i;
    const blank = j >= n || isBreak(text[j]);
    let nodeStart = true; // where a block node may begin: `[` or `{` there opens a flow collection
    if (blockScalarIndent !== undefined && (blank || indent > blockScalarIndent)) {
      while (j < n && !isBreak(text[j])) j++;
      i = j + 1;
      continue;
    }
    blockScalarIndent = undefined;
    if (flow === 0 && !blank && text[j] !== '#') {
      while (indents.length > 0 && (indents[indents.length - 1] as number) >= indent) indents.pop();
      indents.push(indent);
      while (j + 1 < n && (text[j] === '-' || text[j] === '?' || text[j] === ':') && isSpace(text[j + 1])) {
        j += 2;
        while (j < n && isSpace(text[j])) j++;
        indents.push(j - i);
        if (indents.length > MAX_NESTING) return j;
      }
      if (indents.length > MAX_NESTING) return j;
    }
    if (flow === 0 && (text.startsWith('---', j) || text.startsWith('...', j)) && (j + 3 >= n || isSpace(text[j + 3]) || isBreak(text[j + 3]))) {
      j += 3; // a document marker; `--- [` starts the document with a flow collection
    }
    let prev = ' ';
    for (; j < n && !isBreak(text[j]); j++) {
      const c = text[j] as string;
      if (isSpace(c)) {
        prev = c;
        continue;
      }
      if ((c === '&' || c === '!') && (flow > 0 || nodeStart)) {
        // An anchor or a tag: the node it belongs to still starts after it.
        while (j + 1 < n && !isSpace(text[j + 1]) && !isBreak(text[j + 1]) && !(flow > 0 && ',[]{}'.includes(text[j + 1] as string))) j++;
        prev = ' ';
        continue;
      }
      if (c === '#' && isSpace(prev)) {
        while (j < n && !isBreak(text[j])) j++;
        break;
      }
      const tokenStart = flow > 0 ? ' \t[{,:'.includes(prev) : nodeStart;
      if ((c === '"' || c === "'") && tokenStart) {
        for (j++; j < n; j++) {
          if (c === '"' && text[j] === '\\') j++;
          else if (text[j] === c) {
            if (c === "'" && text[j + 1] === "'") j++;
            else break;
          }
        }
        prev = c;
        nodeStart = false;
        continue;
      }
      if (flow === 0 && nodeStart && (c === '|' || c === '>')) {
        blockScalarIndent = indent;
        while (j < n && !isBreak(text[j])) j++;
        break;
      }
      if ((c === '[' || c === '{') && (flow > 0 || nodeStart)) {
        if (++flow + indents.length > MAX_NESTING) return j;
      } else if ((c === ']' || c === '}') && flow > 0) {
        flow--;
      } else if (flow === 0) {
        // Plain text, or a key: `: ` starts a value, where a flow collection may begin.
        nodeStart = c === ':' && (j + 1 >= n || isSpace(text[j + 1]) || isBreak(text[j + 1]));
        prev = c;
        continue;
      }
      nodeStart = false;
      prev = c;
    }
    i = j + 1;
  }
  return undefined;
}

/**
 * Where a parsed document nests more than MAX_NESTING levels, aliases
 * followed (an alias can repeat a deep node, or name the node it is in), if
 * it does. Iterative, and linear in the document's nodes.
 */
function tooDeepDocument(doc: Document): { offset: number; message: string } | undefined {
  const done = new Set<unknown>();
  const active = new Set<unknown>();
  const kids = (node: unknown): unknown[] => {
    if (isAlias(node)) return [node.resolve(doc)];
    if (isMap(node)) return node.items.flatMap((p) => [p.key, p.value]);
    if (isSeq(node)) return node.items;
    return [];
  };
  const stack: { node: unknown; children: unknown[]; next: number }[] = [];
  let at: unknown;
  const enter = (node: unknown): string | undefined => {
    if (node === null || node === undefined || typeof node !== 'object' || done.has(node)) return undefined;
    if (active.has(node)) return 'an alias refers to a node that contains it';
    if (stack.length >= MAX_NESTING) return `nested more than ${MAX_NESTING} levels deep`;
    active.add(node);
    stack.push({ node, children: kids(node), next: 0 });
    at = node;
    return undefined;
  };
  let problem = enter(doc.contents);
  while (problem === undefined && stack.length > 0) {
    const top = stack[stack.length - 1] as (typeof stack)[number];
    if (top.next < top.children.length) {
      problem = enter(top.children[top.next++]);
    } else {
      stack.pop();
      active.delete(top.node);
      done.add(top.node);
    }
  }
  if (problem === undefined) return undefined;
  const offset = [...stack].reverse().map((f) => rangeStart(f.node)).find((o) => o !== undefined) ?? rangeStart(at) ?? 0;
  return { offset, message: problem };
}

/** The offset of the first mapping key that is a collection (which toJS would turn into a string), if any. */
function firstComplexKey(doc: Document): number | undefined {
  let found: number | undefined;
  visit(doc, {
    Pair(_, pair) {
      if (pair.key !== null && !isScalar(pair.key) && !isAlias(pair.key)) {
        found = rangeStart(pair.key) ?? 0;
        return visit.BREAK;
      }
      if (isAlias(pair.key)) {
        const target = pair.key.resolve(doc);
        if (target && !isScalar(target)) {
          found = rangeStart(pair.key) ?? 0;
          return visit.BREAK;
        }
      }
      return undefined;
    },
  });
  return found;
}

function isEmptyDocument(doc: Document): boolean {
  const contents = doc.contents;
  if (contents === null) return true;
  const range = contents.range;
  return isScalar(contents) && contents.value === null && (range === undefined || range === null || range[0] === range[1]);
}

function yamlMessage(message: string): string {
  const first = message.split('\n')[0] ?? message;
  return `YAML: ${first.replace(/ at line \d+, column \d+:?$/, '')}`;
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

// --- files ------------------------------------------------------------------

/**
 * Loads policy files and directories (their .yaml, .yml and .json files,
 * recursively, hidden ones skipped, in path order), validates every document,
 * then the set as a whole. Never throws.
 */
export async function loadPolicies(paths: readonly string[]): Promise<LoadResult> {
  const policies: LoadedPolicy[] = [];
  const errors: PolicyError[] = [];
  const order = new Map<string, number>(); // files in the order they were found, for sorting errors
  try {
    const seen = new Set<string>();
    for (const path of paths) {
      for (const found of await policyFiles(path)) {
        if (!order.has(found.file)) order.set(found.file, order.size);
        if (found.error !== undefined) {
          errors.push({ file: found.file, line: 0, column: 0, path: [], message: found.error });
          continue;
        }
        let real: string;
        try {
          real = await realpath(found.file);
        } catch {
          real = found.file;
        }
        if (seen.has(real)) continue;
        seen.add(real);
        const text = await readPolicyFile(found.file, errors);
        if (text === undefined) continue;
        const result = parsePolicyText(text, found.file);
        policies.push(...result.policies);
        errors.push(...result.errors);
      }
    }
    errors.push(...validatePolicySet(policies));
  } catch (e) {
    errors.push({ file: paths.join(', '), line: 0, column: 0, path: [], message: `cannot load policies: ${errorMessage(e)}` });
  }
  for (const e of errors) if (!order.has(e.file)) order.set(e.file, order.size);
  errors.sort((a, b) => (order.get(a.file) ?? 0) - (order.get(b.file) ?? 0) || a.line - b.line || a.column - b.column);
  return { policies, errors };
}

/** The policy files a path stands for, in order, each with the error that makes it unusable, if any. */
async function policyFiles(path: string): Promise<{ file: string; error?: string }[]> {
  let info;
  try {
    info = await stat(path);
  } catch (e) {
    return [{ file: path, error: fsMessage(e) }];
  }
  if (info.isFile()) {
    return [isPolicyFileName(path) ? { file: path } : { file: path, error: `not a policy file: the name must end in ${POLICY_FILE_SUFFIXES.join(', ')}` }];
  }
  if (!info.isDirectory()) return [{ file: path, error: 'not a file or directory' }];
  const found: { file: string; error?: string }[] = [];
  const visited = new Set<string>();
  const walk = async (dir: string): Promise<void> => {
    let real: string;
    let entries;
    try {
      real = await realpath(dir);
      entries = await readdir(dir, { withFileTypes: true });
    } catch (e) {
      found.push({ file: dir, error: fsMessage(e) });
      return;
    }
    if (visited.has(real)) return; // a symlink loop
    visited.add(real);
    for (const entry of entries) {
      if (entry.name.startsWith('.')) continue;
      const child = join(dir, entry.name);
      let isDir = entry.isDirectory();
      let isFile = entry.isFile();
      if (entry.isSymbolicLink()) {
        try {
          const target = await stat(child);
          isDir = target.isDirectory();
          isFile = target.isFile();
        } catch (e) {
          if (isPolicyFileName(entry.name)) found.push({ file: child, error: fsMessage(e) });
          continue;
        }
      }
      if (isDir) await walk(child);
      else if (isFile && isPolicyFileName(entry.name)) found.push({ file: child });
    }
  };
  await walk(path);
  return found.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
}

function isPolicyFileName(path: string): boolean {
  return POLICY_FILE_SUFFIXES.includes(extname(path).toLowerCase());
}

async function readPolicyFile(file: string, errors: PolicyError[]): Promise<string | undefined> {
  try {
    const info = await stat(file);
    if (info.size > MAX_POLICY_FILE_BYTES) {
      errors.push({ file, line: 0, column: 0, path: [], message: `file is larger than ${MAX_POLICY_FILE_BYTES} bytes` });
      return undefined;
    }
    const bytes = await readFile(file);
    const bad = firstInvalidUtf8(bytes);
    if (bad !== undefined) {
      const before = new TextDecoder().decode(bytes.subarray(0, bad));
      const lines = before.split('\n');
      errors.push({ file, line: lines.length, column: (lines[lines.length - 1]?.length ?? 0) + 1, path: [], message: `invalid UTF-8 at byte ${bad}` });
      return undefined;
    }
    return new TextDecoder().decode(bytes);
  } catch (e) {
    errors.push({ file, line: 0, column: 0, path: [], message: fsMessage(e) });
    return undefined;
  }
}

/** Offset of the first byte that is not part of a valid UTF-8 sequence, if any. */
function firstInvalidUtf8(bytes: Uint8Array): number | undefined {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return undefined;
  } catch {
    // fall through to find where
  }
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i] as number;
    const n = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    if (n === 0 || i + n > bytes.length) return i;
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(i, i + n));
    } catch {
      return i;
    }
    i += n;
  }
  return i;
}

function fsMessage(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return 'no such file or directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ENOTDIR':
      return 'not a directory';
    case 'ELOOP':
      return 'too many levels of symbolic links';
    case 'EISDIR':
      return 'is a directory';
    default:
      return `cannot read: ${errorMessage(e)}`;
  }
}

// --- the set ------------------------------------------------------------------

/**
 * Checks that only the policies together can fail: duplicate policy names,
 * lists (declared, one type per name, of a type the selector takes), defaults
 * two policies set differently, and at most MAX_RULES_PER_HOOK rules per hook.
 * Errors point at the offending node when the policy was loaded from a file.
 */
export function validatePolicySet(loaded: readonly LoadedPolicy[]): PolicyError[] {
  const errors: PolicyError[] = [];
  try {
    checkSet(loaded, errors);
  } catch (e) {
    errors.push({ file: '', line: 0, column: 0, path: [], message: `cannot check the policy set: ${errorMessage(e)}` });
  }
  return errors;
}

function checkSet(loaded: readonly LoadedPolicy[], errors: PolicyError[]): void {
  const report = (l: LoadedPolicy, path: PolicyPath, message: string, rule?: string, at: 'value' | 'key' = 'value'): void => {
    const pos = locators.get(l.policy)?.(path, at) ?? { line: l.source.line, column: l.source.line > 0 ? 1 : 0 };
    const e: PolicyError = { file: l.source.file, ...pos, policy: l.policy.metadata.name, path, message };
    if (rule !== undefined) e.rule = rule;
    errors.push(e);
  };
  const where = (l: LoadedPolicy): string =>
    l.source.file ? `${l.source.file}:${locators.get(l.policy)?.([]).line ?? l.source.line}` : `policy ${l.source.document} of the set`;

  // Policy names.
  const names = new Map<string, LoadedPolicy>();
  for (const l of loaded) {
    const name = l.policy.metadata.name;
    const first = names.get(name);
    if (first) report(l, ['metadata', 'name'], `another policy is named ${name} (${where(first)})`);
    else names.set(name, l);
  }

  // List declarations: global by name, one type per name.
  const lists = new Map<string, { l: LoadedPolicy; type: ListType }>();
  for (const l of loaded) {
    l.policy.spec.lists.forEach((list, i) => {
      const first = lists.get(list.name);
      if (!first) lists.set(list.name, { l, type: list.type });
      else if (first.type !== list.type) {
        report(
          l,
          ['spec', 'lists', i, 'type'],
          `list ${list.name} is declared with type ${first.type} by policy ${first.l.policy.metadata.name} (${where(first.l)}); a list has one type`,
        );
      }
    });
  }

  // List references, defaults, rule budget.
  const defaults = new Map<HookName, { l: LoadedPolicy; value: 'allow' | 'deny' }>();
  const perHook = new Map<HookName, number>();
  for (const l of loaded) {
    l.policy.spec.rules.forEach((rule, r) => {
      for (const [selector, value] of Object.entries(rule.match) as [keyof Match, unknown][]) {
        const refs = value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as { list?: unknown }).list : undefined;
        if (!Array.isArray(refs)) continue;
        refs.forEach((ref: unknown, j) => {
          if (typeof ref !== 'string') return;
          const path = ['spec', 'rules', r, 'match', selector, 'list', j];
          const decl = lists.get(ref);
          const accepted = SELECTOR_LIST_TYPES[selector] ?? [];
          if (!decl) report(l, path, `list ${ref} is not declared by any policy (spec.lists)`, rule.name);
          else if (!accepted.includes(decl.type)) {
            report(l, path, `list ${ref} has type ${decl.type}; the ${selector} selector takes lists of type ${accepted.join(', ')}`, rule.name);
          }
        });
      }
      const count = (perHook.get(rule.hook) ?? 0) + 1;
      perHook.set(rule.hook, count);
      if (count === MAX_RULES_PER_HOOK + 1) {
        const total = loaded.reduce((n, p) => n + p.policy.spec.rules.filter((x) => x.hook === rule.hook).length, 0);
        report(l, ['spec', 'rules', r], `hook ${rule.hook} has ${total} rules across all policies; at most ${MAX_RULES_PER_HOOK}`, rule.name);
      }
    });
    for (const hook of HOOKS) {
      const value = l.policy.spec.defaults?.[hook];
      if (value === undefined) continue;
      const first = defaults.get(hook);
      if (!first) defaults.set(hook, { l, value });
      else if (first.value !== value) {
        report(
          l,
          ['spec', 'defaults', hook],
          `the default for ${hook} is ${value} here but ${first.value} in policy ${first.l.policy.metadata.name} (${where(first.l)}); policies must agree on a hook's default`,
        );
      }
    }
  }
}

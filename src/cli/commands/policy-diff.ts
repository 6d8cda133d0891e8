// krsi policy diff: local policy files against the running agent's set, by
// policy name, then by rule and list name; like diff(1), exit 0 when there is
// no difference and 1 when there is.
import type { Command } from 'commander';
import type { Policy } from '../../policy/schema.js';
import { CliError, ExitCode } from '../exit-codes.js';
import { addSocketOption, json, out, withAgent, type SocketOptions } from './agent-connection.js';
import { loadChecked, printPolicyErrors } from './policy-validate.js';

export interface NamedChange {
  name: string;
  /** The keys that differ (`match`, `action`, `entries`). */
  fields: string[];
}

export interface ItemsDiff {
  added: string[];
  removed: string[];
  changed: NamedChange[];
}

export interface PolicyChange {
  name: string;
  /** Differences outside rules and lists: `metadata.description`, `spec.mode`, `spec.defaults`. */
  fields: string[];
  rules: ItemsDiff & { reordered: boolean };
  lists: ItemsDiff;
}

export interface PolicySetDiff {
  same: boolean;
  added: string[];
  removed: string[];
  changed: PolicyChange[];
}

/** JSON with keys sorted and bigints as strings: equal policies give equal text. */
export function normalizedJson(value: unknown): string {
  const norm = (v: unknown): unknown => {
    if (typeof v === 'bigint') return v.toString();
    if (Array.isArray(v)) return v.map(norm);
    if (v !== null && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(v).sort()) {
        const x = (v as Record<string, unknown>)[key];
        if (x !== undefined) out[key] = norm(x);
      }
      return out;
    }
    return v;
  };
  return JSON.stringify(norm(value));
}

function differingKeys(a: Record<string, unknown>, b: Record<string, unknown>): string[] {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
  return keys.filter((k) => normalizedJson(a[k]) !== normalizedJson(b[k]));
}

function diffItems<T extends { name: string }>(before: readonly T[], after: readonly T[]): ItemsDiff {
  const old = new Map(before.map((x) => [x.name, x]));
  const now = new Map(after.map((x) => [x.name, x]));
  const changed: NamedChange[] = [];
  for (const [name, x] of now) {
    const y = old.get(name);
    if (y !== undefined) {
      const fields = differingKeys(y as unknown as Record<string, unknown>, x as unknown as Record<string, unknown>);
      if (fields.length) changed.push({ name, fields });
    }
  }
  return {
    added: [...now.keys()].filter((n) => !old.has(n)),
    removed: [...old.keys()].filter((n) => !now.has(n)),
    changed,
  };
}

/** What changes from `current` (the agent's) to `local`. */
export function diffPolicySets(current: readonly Policy[], local: readonly Policy[]): PolicySetDiff {
  const old = new Map(current.map((p) => [p.metadata.name, p]));
  const now = new Map(local.map((p) => [p.metadata.name, p]));
  const changed: PolicyChange[] = [];
  for (const [name, p] of now) {
    const q = old.get(name);
    if (q === undefined || normalizedJson(p) === normalizedJson(q)) continue;
    const fields: string[] = [];
    if (normalizedJson(q.metadata) !== normalizedJson(p.metadata)) fields.push(...differingKeys(q.metadata, p.metadata).map((k) => `metadata.${k}`));
    if (q.spec.mode !== p.spec.mode) fields.push('spec.mode');
    if (normalizedJson(q.spec.defaults ?? {}) !== normalizedJson(p.spec.defaults ?? {})) fields.push('spec.defaults');
    const rules = diffItems(q.spec.rules, p.spec.rules);
    const common = (rs: Policy['spec']['rules'], other: Map<string, unknown>): string[] => rs.map((r) => r.name).filter((n) => other.has(n));
    const oldNames = new Map(q.spec.rules.map((r) => [r.name, r]));
    const newNames = new Map(p.spec.rules.map((r) => [r.name, r]));
    const reordered = common(q.spec.rules, newNames).join('\0') !== common(p.spec.rules, oldNames).join('\0');
    changed.push({ name, fields, rules: { ...rules, reordered }, lists: diffItems(q.spec.lists, p.spec.lists) });
  }
  const added = [...now.keys()].filter((n) => !old.has(n));
  const removed = [...old.keys()].filter((n) => !now.has(n));
  return { same: added.length === 0 && removed.length === 0 && changed.length === 0, added, removed, changed };
}

export function renderPolicyDiff(diff: PolicySetDiff, sources: { current: Map<string, string>; local: Map<string, string> }): string {
  const lines: string[] = [];
  const src = (m: Map<string, string>, name: string): string => {
    const s = m.get(name);
    return s ? ` (${s})` : '';
  };
  for (const name of diff.added) lines.push(`+ policy ${name}${src(sources.local, name)}`);
  for (const name of diff.removed) lines.push(`- policy ${name}${src(sources.current, name)}`);
  for (const c of diff.changed) {
    lines.push(`~ policy ${c.name}${src(sources.local, c.name)}`);
    for (const f of c.fields) lines.push(`    ~ ${f}`);
    for (const [what, items] of [
      ['list', c.lists],
      ['rule', c.rules],
    ] as const) {
      for (const n of items.added) lines.push(`    + ${what} ${n}`);
      for (const n of items.removed) lines.push(`    - ${what} ${n}`);
      for (const n of items.changed) lines.push(`    ~ ${what} ${n.name}: ${n.fields.join(', ')}`);
    }
    if (c.rules.reordered) lines.push('    ~ rule order');
  }
  return lines.join('\n');
}

interface DiffOptions extends SocketOptions {
  json?: boolean;
}

export function registerPolicyDiff(policy: Command): void {
  addSocketOption(
    policy
      .command('diff')
      .summary("compare policy files with the running agent's policies")
      .description(
        "compare policy files with the running agent's policies: policies, and within them rules and lists, added (+), removed (-) or changed (~); " +
          'exit 0 when they are the same, 1 when they differ, 2 when a file is invalid',
      )
      .argument('<paths...>', 'policy files (.yaml, .yml, .json) and directories of them: the set `krsi policy apply` would send')
      .option('--json', 'print the differences as JSON'),
  ).action(async (paths: string[], opts: DiffOptions) => {
    const loaded = await loadChecked(paths);
    if (loaded.errors.length > 0) {
      await printPolicyErrors(loaded.errors);
      throw new CliError(`${loaded.errors.length} ${loaded.errors.length === 1 ? 'error' : 'errors'} in the local policies`, ExitCode.usage);
    }
    const current = await withAgent(opts.socket, (client) => client.currentPolicies());
    const diff = diffPolicySets(
      current.policies.map((p) => p.policy),
      loaded.policies.map((l) => l.policy),
    );
    if (opts.json) out(json({ generation: current.generation, ...diff }));
    else if (diff.same) out(`no differences (agent generation ${current.generation})`);
    else {
      const sources = {
        current: new Map(current.policies.map((p) => [p.policy.metadata.name, p.source])),
        local: new Map(loaded.policies.map((l) => [l.policy.metadata.name, l.source.file])),
      };
      out(`--- agent (generation ${current.generation})\n+++ ${paths.join(' ')}\n${renderPolicyDiff(diff, sources)}`);
    }
    process.exitCode = diff.same ? ExitCode.ok : ExitCode.failure;
  });
}

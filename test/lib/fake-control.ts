// An in-memory AgentControl: what the control socket and the CLI are tested
// against (the socket and the commands, not the kernel). Policies are checked
// as a set and evaluated with evaluatePolicies; lists live in a Map.
import type {
  AgentControl,
  AgentStatus,
  ApplyResult,
  ListChange,
  ListView,
  LoadedPolicySource,
} from '../../src/agent/control-api.js';
import { InputError } from '../../src/errors.js';
import { evaluatePolicies, type Decision, type EventFacts } from '../../src/policy/evaluate.js';
import { formatPolicyError, validatePolicySet } from '../../src/policy/load.js';
import type { ListType } from '../../src/policy/schema.js';

interface FakeList {
  type: ListType;
  id: number;
  entries: Map<string, number | undefined>; // entry -> expiry (ms since epoch)
}

export class FakeControl implements AgentControl {
  generation = 0;
  policies: LoadedPolicySource[] = [];
  readonly listsByName = new Map<string, FakeList>();
  /** Every call, by method name, in order. */
  readonly calls: string[] = [];
  lastFacts: EventFacts | undefined;
  stops = 0;
  /** Called by stop(), e.g. to close the server as the agent does. */
  onStop: (() => Promise<void> | void) | undefined;
  /** status() throws this when set: an agent bug, as the socket sees it. */
  statusFailure: Error | undefined;
  /** applyPolicies throws this when set (the agent's compiler refusing a set). */
  applyFailure: Error | undefined;
  /** listAdd waits this long: answers must still come in request order. */
  listAddDelayMs = 0;

  status(): AgentStatus {
    this.calls.push('status');
    if (this.statusFailure) throw this.statusFailure;
    return {
      pid: process.pid,
      kernel: '6.12.0-test',
      generation: this.generation,
      policies: this.policies.map((p) => p.policy.metadata.name),
      programs: ['krsi_exec'],
      lists: [...this.listsByName].map(([name, l]) => ({ name, type: l.type, size: l.entries.size })),
      uptimeSeconds: 12.5,
      received: 42,
      counters: { exec: { seen: 10, denied: 1, emitted: 3, dropped: 0, rate_limited: 0 } },
      accounting: {
        decisions: { attempted: 1, received: 1, dropped: 0, pending: 0, gaps: 0, missing: 0 },
        events: { attempted: 46, received: 41, dropped: 4, pending: 1, gaps: 1, missing: 4 },
      },
      locked: false,
      lockPoint: this.lockPointSince === null ? { reached: false, since: null } : { reached: true, since: this.lockPointSince },
      tamper: {},
      landlock: null,
      reactions: { count: 0, p50Us: null, p99Us: null },
      process: { cpuUserSeconds: 0.5, cpuSystemSeconds: 0.25, rssBytes: 50_000_000 },
      hooks: [{ hook: 'bprm_check_security', program: 'exec_check', enforcing: true, attached: true }],
      rules: this.policies.flatMap((p) =>
        p.policy.spec.rules.map((r) => ({ policy: p.policy.metadata.name, rule: r.name, hook: r.hook, action: r.action, state: 'enforced' as const })),
      ),
    };
  }

  async applyPolicies(policies: readonly LoadedPolicySource[]): Promise<ApplyResult> {
    this.calls.push('applyPolicies');
    if (this.applyFailure) throw this.applyFailure;
    const errors = validatePolicySet(policies.map((p, i) => ({ policy: p.policy, source: { file: p.source, line: 0, document: i + 1 } })));
    if (errors.length) throw new InputError(errors.map(formatPolicyError).join('\n'));
    await Promise.resolve();
    this.generation++;
    this.policies = [...policies];
    let entries = 0;
    for (const { policy } of policies) {
      for (const decl of policy.spec.lists) {
        if (!this.listsByName.has(decl.name)) {
          this.listsByName.set(decl.name, { type: decl.type, id: this.listsByName.size + 1, entries: new Map((decl.entries ?? []).map((e) => [e, undefined])) });
        }
        entries += decl.entries?.length ?? 0;
      }
    }
    return { generation: this.generation, compileMs: 1.25, swapMs: 0.5, rules: policies.reduce((n, p) => n + p.policy.spec.rules.length, 0), entries };
  }

  currentPolicies(): { generation: number; policies: LoadedPolicySource[] } {
    this.calls.push('currentPolicies');
    return { generation: this.generation, policies: this.policies };
  }

  lists(): ListView[] {
    this.calls.push('lists');
    return [...this.listsByName].map(([name, l]) => ({
      name,
      type: l.type,
      id: l.id,
      entries: [...l.entries].map(([entry, exp]) => (exp === undefined ? { entry } : { entry, expires: new Date(exp).toISOString() })),
    }));
  }

  private list(name: string): FakeList {
    const list = this.listsByName.get(name);
    if (!list) throw new InputError(`no list named ${name}`);
    return list;
  }

  async listAdd(name: string, entries: readonly string[], ttlSeconds?: number): Promise<ListChange> {
    this.calls.push('listAdd');
    const list = this.list(name);
    if (this.listAddDelayMs) await new Promise((r) => setTimeout(r, this.listAddDelayMs));
    const change: ListChange = { list: name, added: [], removed: [], unchanged: [] };
    for (const e of entries) {
      if (list.entries.has(e)) change.unchanged.push(e);
      else {
        list.entries.set(e, ttlSeconds === undefined ? undefined : Date.now() + ttlSeconds * 1000);
        change.added.push(e);
      }
    }
    return change;
  }

  async listRemove(name: string, entries: readonly string[]): Promise<ListChange> {
    this.calls.push('listRemove');
    const list = this.list(name);
    const change: ListChange = { list: name, added: [], removed: [], unchanged: [] };
    for (const e of entries) (list.entries.delete(e) ? change.removed : change.unchanged).push(e);
    return Promise.resolve(change);
  }

  explain(facts: EventFacts): Decision {
    this.calls.push('explain');
    this.lastFacts = facts;
    return evaluatePolicies(
      this.policies.map((p) => p.policy),
      facts,
      { has: (list, entry) => this.listsByName.get(list)?.entries.has(entry) ?? false },
    );
  }

  async lock(): Promise<{ generation: number }> {
    this.calls.push('lock');
    return { generation: this.generation };
  }

  lockPointSince: string | null = null;

  async reachLockPoint(): Promise<{ reached: boolean; since: string | null; already: boolean }> {
    this.calls.push('lockpoint.reach');
    const already = this.lockPointSince !== null;
    this.lockPointSince ??= '2026-11-29T06:00:00.000000000Z';
    return { reached: true, since: this.lockPointSince, already };
  }

  async stop(): Promise<void> {
    this.calls.push('stop');
    this.stops++;
    await this.onStop?.();
  }
}

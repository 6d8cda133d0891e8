// Reactions, the daemon half of KRSI: a rule's event (the signal) triggers
// mitigations. What can be decided in the kernel is decided there by rules
// (deny, kill); a reaction adds what only the agent can do after the fact:
// put something of the event in a list that a rule enforces (the binary's
// hash, its cgroup, ...), or kill the offending process tree. The agent
// measures how long each takes, from the kernel's timestamp of the event to
// the mitigation being in force.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { InputError } from '../errors.js';
import type { KrsiEvent, ReactionEvent } from '../events/schema.js';
import { SCHEMA_VERSION } from '../events/schema.js';
import { isoNs } from '../events/clock.js';
import { log } from '../log.js';
import { REACTION_SOURCES, type ListType, type Policy, type ReactionSource } from '../policy/schema.js';

export type ReactionAction =
  | { kind: 'add'; list: string; from: ReactionSource; ttlSeconds?: number }
  | { kind: 'killTree' };

export interface CompiledReaction {
  policy: string;
  name: string;
  trigger: { policy: string; rule: string };
  decision: 'any' | 'allowed' | 'denied' | 'would_deny';
  actions: ReactionAction[];
}

/** Checks reactions against the rules and lists they name; throws an InputError, changing nothing. */
export function compileReactions(policies: readonly Policy[], listTypes: ReadonlyMap<string, ListType>): CompiledReaction[] {
  const rules = new Set(policies.flatMap((p) => p.spec.rules.map((r) => `${p.metadata.name}/${r.name}`)));
  const out: CompiledReaction[] = [];
  for (const p of policies) {
    for (const r of p.spec.reactions) {
      const where = `policy ${p.metadata.name} reaction ${r.name}`;
      const [policy, rule] = r.on.rule.includes('/') ? (r.on.rule.split('/', 2) as [string, string]) : [p.metadata.name, r.on.rule];
      if (!rules.has(`${policy}/${rule}`)) throw new InputError(`${where}: no rule ${policy}/${rule}`);
      const actions: ReactionAction[] = r.do.map((d) => {
        if ('killTree' in d) return { kind: 'killTree' };
        const type = listTypes.get(d.add.list);
        if (!type) throw new InputError(`${where}: list ${d.add.list} is not declared`);
        const want = REACTION_SOURCES[d.add.from];
        if (type !== want) throw new InputError(`${where}: ${d.add.from} goes in a ${want} list; ${d.add.list} is a ${type} list`);
        return { kind: 'add', list: d.add.list, from: d.add.from, ...(d.add.ttlSeconds === undefined ? {} : { ttlSeconds: d.add.ttlSeconds }) };
      });
      out.push({ policy: p.metadata.name, name: r.name, trigger: { policy, rule }, decision: r.on.decision, actions });
    }
  }
  return out;
}

/** Does this event come from the reaction's rule, with the wanted outcome? */
function triggers(r: CompiledReaction, event: KrsiEvent): boolean {
  if (!('policy' in event)) return false;
  const key = `${r.trigger.policy}/${r.trigger.rule}`;
  const pol = event.policy;
  if (!pol.matched.includes(key)) return false;
  switch (r.decision) {
    case 'any':
      return true;
    case 'allowed':
      return event.decision === 'allowed';
    case 'denied':
      return event.decision === 'denied';
    case 'would_deny':
      return pol.would_deny !== null && `${pol.would_deny.policy}/${pol.would_deny.rule}` === key;
  }
}

/** The acting process of an event, if it has one. */
function processOf(event: KrsiEvent): { pid: number; uid: number; cgroup_id: string; start_boottime_ns: string } | null {
  return 'process' in event ? (event.process as { pid: number; uid: number; cgroup_id: string; start_boottime_ns: string }) : null;
}

/** The executable an event is about: the exec'd file, or the acting process's. */
function binaryPath(event: KrsiEvent): string | null {
  if (event.kind === 'exec') return event.exec.path || null;
  const proc = processOf(event);
  return proc ? `/proc/${proc.pid}/exe` : null;
}

/** The entry a source names in an event, or null when the event has none. */
export function entryFrom(source: ReactionSource, event: KrsiEvent): string | null {
  const e = event as Record<string, unknown> & KrsiEvent;
  switch (source) {
    case 'binary.path':
      return event.kind === 'exec' ? event.exec.path || null : null;
    case 'binary.inode':
      return event.kind === 'exec' ? `${event.exec.dev}:${event.exec.ino}` : null;
    case 'binary.sha256': {
      const path = binaryPath(event);
      if (!path) return null;
      try {
        return createHash('sha256').update(readFileSync(path)).digest('hex');
      } catch {
        return null;
      }
    }
    case 'process.cgroup':
      return processOf(event)?.cgroup_id ?? null;
    case 'process.uid': {
      const proc = processOf(event);
      return proc ? String(proc.uid) : null;
    }
    case 'file.path': {
      const file = e['file'] as { path?: string } | undefined;
      return file?.path ?? null;
    }
    case 'connect.address': {
      const c = e['connect'] as { address?: string } | undefined;
      return c?.address ?? null;
    }
    case 'module.name': {
      const m = e['module'] as { name?: string } | undefined;
      return m?.name ?? null;
    }
  }
}

/** Start time of a process in clock ticks since boot (/proc/PID/stat field 22), null if gone. */
export function startTicks(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
  } catch {
    return null;
  }
}

/** Children of every process, from /proc. */
function childrenByParent(): Map<number, number[]> {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
    } catch {
      // gone
    }
  }
  return children;
}

/**
 * Stops a process and its descendants, then kills them all. Stopping first
 * keeps the tree from forking new members (or reparenting them away) while
 * it is being walked; the walk repeats until it finds no one new.
 */
export function killProcessTree(root: number): number[] {
  const tree = new Set<number>();
  let frontier = [root];
  for (let round = 0; frontier.length > 0 && round < 64; round++) {
    for (const pid of frontier) {
      try {
        process.kill(pid, 'SIGSTOP');
        tree.add(pid);
      } catch {
        // already gone
      }
    }
    const children = childrenByParent();
    frontier = [...tree].flatMap((p) => children.get(p) ?? []).filter((p) => !tree.has(p));
  }
  const killed: number[] = [];
  for (const pid of tree) {
    try {
      process.kill(pid, 'SIGKILL');
      killed.push(pid);
    } catch {
      // already gone
    }
  }
  return killed;
}

const CLOCK_TICKS_PER_SECOND = 100;

export interface ReactionDeps {
  listAdd(name: string, entries: string[], ttlSeconds?: number): Promise<unknown>;
  emit(event: ReactionEvent): void;
}

export class ReactionEngine {
  private reactions: CompiledReaction[] = [];
  private readonly latenciesUs: number[] = [];
  private total = 0;

  constructor(private readonly deps: ReactionDeps) {}

  set(reactions: CompiledReaction[]): void {
    this.reactions = reactions;
  }

  /** p50 and p99 of the last 1024 signal-to-mitigation latencies, in µs. */
  latency(): { count: number; p50Us: number | null; p99Us: number | null } {
    const sorted = [...this.latenciesUs].sort((a, b) => a - b);
    const at = (q: number): number | null => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : null);
    return { count: this.total, p50Us: at(0.5), p99Us: at(0.99) };
  }

  /** kernelNs: the event's CLOCK_MONOTONIC timestamp, where the latency starts. */
  async onEvent(event: KrsiEvent, kernelNs: bigint): Promise<void> {
    for (const r of this.reactions) {
      if (!triggers(r, event)) continue;
      await this.run(r, event, kernelNs);
    }
  }

  private async run(r: CompiledReaction, event: KrsiEvent, kernelNs: bigint): Promise<void> {
    const done: ReactionEvent['actions'] = [];
    const errors: string[] = [];
    for (const a of r.actions) {
      try {
        if (a.kind === 'add') {
          const entry = entryFrom(a.from, event);
          if (entry === null) throw new Error(`the event has no ${a.from}`);
          await this.deps.listAdd(a.list, [entry], a.ttlSeconds);
          done.push({ do: 'add', list: a.list, entry, ...(a.ttlSeconds === undefined ? {} : { ttl_seconds: a.ttlSeconds }) });
        } else {
          done.push({ do: 'kill', pids: this.killTree(event) });
        }
      } catch (err) {
        errors.push(`${a.kind}: ${(err as Error).message}`);
      }
    }
    const latencyUs = Number(process.hrtime.bigint() - kernelNs) / 1000;
    this.total++;
    this.latenciesUs.push(latencyUs);
    if (this.latenciesUs.length > 1024) this.latenciesUs.shift();
    const pid = processOf(event)?.pid ?? 0;
    this.deps.emit({
      schema: SCHEMA_VERSION,
      kind: 'reaction',
      time: isoNs(BigInt(Date.now()) * 1_000_000n),
      reaction: { policy: r.policy, name: r.name },
      trigger: { policy: r.trigger.policy, rule: r.trigger.rule, kind: event.kind, pid, time: event.time },
      actions: done,
      latency_us: Math.round(latencyUs),
      errors,
    });
    if (errors.length) log.warn({ reaction: r.name, errors }, 'a reaction did not complete');
  }

  /**
   * SIGKILL to the acting process and its descendants. The root is checked
   * against the event's process start time first, so that a pid reused since
   * the event is never killed.
   */
  private killTree(event: KrsiEvent): number[] {
    const proc = processOf(event);
    if (!proc) throw new Error('the event has no process');
    const { pid, start_boottime_ns: startNs } = proc;
    const ticks = startTicks(pid);
    const expected = Number(BigInt(startNs) / BigInt(1e9 / CLOCK_TICKS_PER_SECOND));
    if (ticks === null) return [];
    if (Math.abs(ticks - expected) > 1) throw new Error(`pid ${pid} is another process now`);
    return killProcessTree(pid);
  }
}

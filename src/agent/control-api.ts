// What a running agent lets its control socket (and the library API) do.
// The socket server (src/control/) translates requests into these calls; the
// agent (src/agent/agent.ts) implements them.
import type { Decision, EventFacts } from '../policy/evaluate.js';
import type { ListType, Policy } from '../policy/schema.js';
import type { RuleStatus } from '../ops/rule-states.js';

export interface LoadedPolicySource {
  policy: Policy;
  /** Where it came from: a file path, or "api" / "socket". */
  source: string;
}

export interface ApplyResult {
  generation: number;
  /** Wall time from the start of compilation to the switch of the current generation. */
  compileMs: number;
  /** Wall time to fill the new generation's maps and switch to it. */
  swapMs: number;
  rules: number;
  entries: number;
}

export interface ListEntryView {
  entry: string;
  /** RFC 3339, absent when the entry does not expire. */
  expires?: string;
}

export interface ListView {
  name: string;
  type: ListType;
  id: number;
  entries: ListEntryView[];
}

export interface ListChange {
  list: string;
  added: string[];
  removed: string[];
  /** Entries the request named that were already there (add) or absent (remove). */
  unchanged: string[];
}

export interface AgentStatus {
  pid: number;
  kernel: string;
  generation: number;
  policies: string[];
  programs: string[];
  lists: Array<{ name: string; type: ListType; size: number }>;
  uptimeSeconds: number;
  received: number;
  counters: Record<string, { seen: number; denied: number; emitted: number; dropped: number; rate_limited: number }>;
  /**
   * Per ring since this agent started: records the kernel tried to write
   * (attempted), read by the agent (received), lost (dropped: the kernel's
   * count, exact), still in the ring or being written (pending = attempted -
   * received - dropped), and gap markers put in the stream (gaps) for
   * `missing` records: every loss is marked before the status is taken, so
   * missing == dropped unless a record was lost meanwhile.
   */
  accounting: Record<'decisions' | 'events', { attempted: number; received: number; dropped: number; pending: number; gaps: number; missing: number }>;
  /** Whether `krsi lock` made the policy immutable until reboot. */
  locked: boolean;
  /** Whether the lock point was reached (`krsi lock-point`): afterLockPoint rules are in force. */
  lockPoint: { reached: boolean; since: string | null };
  /** Tampering attempts denied by self-protection, by kind. */
  tamper: Record<string, number>;
  /** Landlock confinement of the agent (null: unconfined). */
  landlock: { abi: number; writable: string[]; verified: boolean } | null;
  /** Reactions carried out, and their signal-to-mitigation latency over the last 1024. */
  reactions: { count: number; p50Us: number | null; p99Us: number | null };
  /** The agent process: CPU time used since it started, resident memory. */
  process: { cpuUserSeconds: number; cpuSystemSeconds: number; rssBytes: number };
  /** Every hook's program and whether it is attached on this kernel. */
  hooks: Array<{ hook: string; program: string; enforcing: boolean; attached: boolean }>;
  /** Each rule in force: enforced, monitor, degraded or inactive, and why (src/ops/rule-states.ts). */
  rules: RuleStatus[];
}

export interface AgentControl {
  status(): AgentStatus;
  /**
   * Compiles and installs a new generation made of exactly these policies.
   * Throws an InputError (src/errors.ts) when they do not compile; then
   * nothing that is enforced has changed.
   */
  applyPolicies(policies: readonly LoadedPolicySource[]): Promise<ApplyResult>;
  /** The policies of the current generation. */
  currentPolicies(): { generation: number; policies: LoadedPolicySource[] };
  lists(): ListView[];
  /** Adds entries (canonical text forms, or paths for inode/sha256/cgroup lists) to a list; ttlSeconds makes them expire. */
  listAdd(name: string, entries: readonly string[], ttlSeconds?: number): Promise<ListChange>;
  listRemove(name: string, entries: readonly string[]): Promise<ListChange>;
  /** The decision the current generation would take for these facts, with its trace. */
  explain(facts: EventFacts): Decision;
  /** Stops the agent cleanly (detaches everything, as on SIGTERM). */
  stop(): Promise<void>;
  /**
   * Makes the policy in force immutable until reboot (like auditd -e 2):
   * the policy maps are frozen in the kernel, so no process, this agent or
   * its successors included, can install another generation. Lists stay dynamic.
   */
  lock(): Promise<{ generation: number }>;
  /**
   * Reaches the lock point: from now until reboot the rules with
   * afterLockPoint: true are in force. One-way: the kernel map is frozen.
   */
  reachLockPoint(): Promise<{ reached: boolean; since: string | null; already: boolean }>;
}

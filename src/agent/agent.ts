// The agent: loads krsi's BPF object, installs the policy, attaches every
// program, turns ring buffer records into events, and answers its control
// socket until it is stopped.
import { release } from 'node:os';
import {
  KRSI_ARGS_MAX,
  KRSI_EVENT_HASH_REQUEST,
  KrsiHookStatsLayout,
  decodeKrsiHookStats,
} from '../abi/generated.js';
import { native, type BpfLink, type BpfObject, type RingBuffer } from '../bpf/native.js';
import { EventClock, isoNs } from '../events/clock.js';
import { decodeKrsiEventHeader } from '../abi/generated.js';
import { decodeRecord, splitBatch, type DecodeContext } from '../events/decode.js';
import { SCHEMA_VERSION, type AgentEvent, type HookCounters, type KrsiEvent } from '../events/schema.js';
import { InputError } from '../errors.js';
import { KernelLists } from '../lists/kernel-lists.js';
import { ListStore } from '../lists/store.js';
import { log } from '../log.js';
import { bpfObjects } from '../paths.js';
import { compilePolicies, type ListInfo } from '../policy/compile.js';
import { evaluatePolicies, type Decision, type EventFacts, type ListMembership } from '../policy/evaluate.js';
import { validatePolicySet, formatPolicyError } from '../policy/load.js';
import type { ListDecl, ListType, Policy } from '../policy/schema.js';
import { ReactionEngine, compileReactions } from '../reactions/engine.js';
import type {
  AgentControl,
  AgentStatus,
  ApplyResult,
  ListChange,
  ListView,
  LoadedPolicySource,
} from './control-api.js';
import { Generations } from './generations.js';
import { hooks, programsInAttachOrder } from './hooks.js';
import { PolicyMaps } from './policy-maps.js';
import { seedClasses } from './seed-classes.js';
import { ContentHasher, kernelHasImaFileHash } from './content-hasher.js';
import { DEFAULT_ENV_RECORD, checkEnvRecordNames, watchEnvNames, writeEnvRecord } from './env-record.js';

export interface AgentOptions {
  /** The BPF object to load; build/bpf/krsi.bpf.o by default. */
  objectPath?: string;
  /** The policies to enforce from the start. */
  policies?: readonly LoadedPolicySource[];
  /** Where dynamic lists are kept; null keeps them in memory only. */
  listsPath?: string | null;
  /** Report allowed execs too (noteworthy ones are always reported). */
  emitAllowed?: boolean;
  /** Bytes of argv per event, at most KRSI_ARGS_MAX. */
  argsMax?: number;
  /** Size of the telemetry ring, a power of two of at least a page. */
  eventsRingBytes?: number;
  onEvent: (event: KrsiEvent) => void;
  /** A record that could not be decoded; the agent goes on. */
  onRecordError?: (err: Error) => void;
  /** Called when stop() is requested through the control API. */
  onStopRequest?: () => void;
  /** Environment variables whose values exec events carry (LD_PRELOAD, LD_AUDIT, LD_LIBRARY_PATH by default; [] for none). */
  envRecord?: readonly string[];
  /**
   * sha256 digests from IMA in the kernel (true), or from the agent (false:
   * the fallback for kernels without bpf_ima_file_hash). Default: IMA when
   * the kernel has it.
   */
  ima?: boolean;
}

export const DEFAULT_LISTS_PATH = '/var/lib/krsi/lists.json';

const u32 = (value: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value);
  return b;
};

/** Lists declared by a set of policies, by name (validated set: one type per name). */
function declaredLists(policies: readonly Policy[]): ListDecl[] {
  const byName = new Map<string, ListDecl>();
  for (const p of policies) for (const l of p.spec.lists) if (!byName.has(l.name)) byName.set(l.name, l);
  return [...byName.values()];
}

export class Agent implements AgentControl {
  private readonly clock = new EventClock();
  private readonly generations = new Generations();
  private readonly policyMaps: PolicyMaps;
  private readonly kernelLists: KernelLists;
  private readonly decodeContext: DecodeContext;
  private readonly startedAt = Date.now();
  private readonly reactions: ReactionEngine;
  private readonly hasher: ContentHasher;
  /** Whether digests come from IMA (true) or from this agent (false). */
  ima = true;
  private readonly handlers = new Map<string, Set<(event: KrsiEvent) => unknown>>();
  private links: BpfLink[] = [];
  private ring: RingBuffer | null = null;
  private expiryTimer: NodeJS.Timeout | null = null;
  private policies: LoadedPolicySource[] = [];
  private generation = 0n;
  private stopped = false;
  private receivedCount = 0;
  private applying: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly object: BpfObject,
    private readonly store: ListStore,
    private readonly opts: AgentOptions,
  ) {
    this.policyMaps = new PolicyMaps(object);
    this.kernelLists = new KernelLists(object);
    this.decodeContext = { clock: this.clock, names: this.generations };
    this.reactions = new ReactionEngine({
      // A reaction's list entry is in force at once; the store is written
      // after the reaction is measured and reported.
      listAdd: async (name, entries, ttl) => {
        const change = this.inForce(name, entries, ttl);
        setImmediate(() => this.store.save());
        return change;
      },
      emit: (event) => this.deliver(event),
    });
    this.hasher = new ContentHasher(object.map('content_hashes'), {
      decide: (facts) => this.explain(facts),
      emit: (event) => this.deliver(event),
    });
  }

  /**
   * Library API: calls handler for every event of a kind ('exec', 'reaction',
   * ...) or of every kind ('*'), after the event stream got it. A handler may
   * react, e.g. `agent.on('exec', (e) => agent.listAdd(...))`. Returns the
   * function that unsubscribes it.
   */
  on<K extends KrsiEvent['kind']>(kind: K | '*', handler: (event: Extract<KrsiEvent, { kind: K }>) => unknown): () => void {
    const set = this.handlers.get(kind) ?? new Set();
    set.add(handler as (event: KrsiEvent) => unknown);
    this.handlers.set(kind, set);
    return () => set.delete(handler as (event: KrsiEvent) => unknown);
  }

  private deliver(event: KrsiEvent): void {
    this.opts.onEvent(event);
    for (const key of [event.kind, '*']) {
      for (const h of this.handlers.get(key) ?? []) {
        Promise.resolve()
          .then(() => h(event))
          .catch((err: Error) => log.warn({ err: err.message, kind: event.kind }, 'an event handler failed'));
      }
    }
  }

  /**
   * Loads, installs the policy and attaches everything, or throws having
   * attached nothing: a failure part-way detaches what was attached before.
   * The policy is in force before the first enforcing program is attached.
   */
  static async start(opts: AgentOptions): Promise<Agent> {
    const argsMax = opts.argsMax ?? KRSI_ARGS_MAX;
    if (!Number.isInteger(argsMax) || argsMax < 0 || argsMax > KRSI_ARGS_MAX) {
      throw new InputError(`argsMax must be an integer from 0 to ${KRSI_ARGS_MAX}`);
    }
    const listsPath = opts.listsPath === undefined ? DEFAULT_LISTS_PATH : opts.listsPath;
    const store = listsPath === null ? ListStore.memory() : ListStore.open(listsPath);

    const object = native.BpfObject.openFile(opts.objectPath ?? bpfObjects.agent);
    const agent = new Agent(object, store, opts);
    try {
      object.setGlobal('cfg_emit_allowed', u32(opts.emitAllowed === false ? 0 : 1));
      object.setGlobal('cfg_args_max', u32(argsMax));
      const envRecord = checkEnvRecordNames(opts.envRecord ?? DEFAULT_ENV_RECORD);
      object.setGlobal('cfg_env_record', u32(envRecord.length > 0 ? 1 : 0));
      agent.ima = opts.ima ?? (await kernelHasImaFileHash());
      object.setGlobal('cfg_ima', u32(agent.ima ? 1 : 0));
      if (opts.eventsRingBytes !== undefined) object.map('events').setMaxEntries(opts.eventsRingBytes);
      object.load();
      writeEnvRecord(object.map('env_record'), envRecord);
      log.info({ envRecord, digests: agent.ima ? 'ima' : 'agent' }, 'exec environment and content digests');
      agent.kernelLists.syncAll(store);
      agent.ring = new native.RingBuffer([object.map('decisions'), object.map('events')], {}, (batch, count) =>
        agent.onBatch(batch, count),
      );
      // Bookkeeping programs first (classes at exec, lineage at fork), so
      // that the classes seeded from /proc are kept up to date from then on;
      // the enforcing programs last, once the policy is in place.
      const order = programsInAttachOrder();
      for (const name of order.bookkeeping) agent.attach(name);
      await agent.install(opts.policies ?? []);
      for (const name of order.enforcing) agent.attach(name);
      agent.expiryTimer = setInterval(() => agent.expireEntries(), 1000);
      agent.expiryTimer.unref();
    } catch (err) {
      agent.release();
      throw err;
    }
    return agent;
  }

  private attach(program: string): void {
    this.links.push(this.object.program(program).attach());
    log.debug({ program }, 'attached');
  }

  get programs(): string[] {
    return hooks.map((h) => h.program);
  }

  get received(): number {
    return this.receivedCount;
  }

  /** Per-hook counters, summed over CPUs. */
  counters(): Record<string, HookCounters> {
    const map = this.object.map('counters');
    const stride = Math.ceil(KrsiHookStatsLayout.size / 8) * 8;
    const out: Record<string, HookCounters> = {};
    for (const h of hooks) {
      const value = map.lookup(u32(h.index));
      const sum: HookCounters = { seen: 0, denied: 0, emitted: 0, dropped: 0, rate_limited: 0 };
      if (value) {
        const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
        for (let off = 0; off + KrsiHookStatsLayout.size <= value.byteLength; off += stride) {
          const s = decodeKrsiHookStats(view, off);
          sum.seen += Number(s.seen);
          sum.denied += Number(s.denied);
          sum.emitted += Number(s.emitted);
          sum.dropped += Number(s.dropped);
          sum.rate_limited += Number(s.rateLimited);
        }
      }
      out[h.hook] = sum;
    }
    return out;
  }

  lifecycleEvent(state: AgentEvent['state']): AgentEvent {
    return {
      schema: SCHEMA_VERSION,
      kind: 'agent',
      time: isoNs(BigInt(Date.now()) * 1_000_000n),
      state,
      kernel: release(),
      programs: this.programs,
      generation: Number(this.generation),
      counters: this.counters(),
      received: this.receivedCount,
    };
  }

  // --- policy ---------------------------------------------------------------

  private listMembership(): ListMembership {
    return { has: (name, entry) => this.store.has(name, entry) };
  }

  /** Compiles and installs; on any error nothing that is enforced changes. */
  private async install(sources: readonly LoadedPolicySource[]): Promise<ApplyResult> {
    const started = performance.now();
    const policies = sources.map((s) => s.policy);
    const setErrors = validatePolicySet(sources.map((s, i) => ({ policy: s.policy, source: { file: s.source, line: 0, document: i + 1 } })));
    if (setErrors.length > 0) throw new InputError(`invalid policy set:\n${setErrors.map(formatPolicyError).join('\n')}`);
    const decls = declaredLists(policies);
    // Lists a new policy declares get ids now, but exist only if it installs.
    const lists = new Map<string, ListInfo>();
    let tentative = Math.max(0, ...this.store.all().map((l) => l.id)) + 1;
    for (const d of decls) {
      const seen = this.store.get(d.name);
      if (seen && seen.type !== d.type) throw new InputError(`list ${d.name} exists with type ${seen.type}, not ${d.type}`);
      lists.set(d.name, seen ? { id: seen.id, type: seen.type } : { id: tentative++, type: d.type });
    }
    const generation = this.generation + 1n;
    const compiled = compilePolicies(policies, { generation, lists });
    const listTypes = new Map<string, ListType>([...this.store.all().map((l) => [l.name, l.type] as const), ...decls.map((d) => [d.name, d.type] as const)]);
    const reactions = compileReactions(policies, listTypes);
    const compiledAt = performance.now();

    for (const d of decls) {
      if (this.store.declare(d)) {
        const list = this.store.get(d.name)!;
        if (list.id !== lists.get(d.name)!.id) throw new Error(`list ${d.name}: id ${list.id} differs from the compiled ${lists.get(d.name)!.id}`);
        for (const [entry, exp] of list.entries) this.kernelLists.write(list, entry, exp);
      }
    }
    if (compiled.classes.length > 0) {
      // Classes of running processes, written for the new generation before
      // the switch (ignored until then), and again after it for processes
      // that exec'd or forked meanwhile under the old one.
      seedClasses(this.object.map('task_ctx'), generation, compiled.classes, this.listMembership(), compiled.needsSha256);
    }
    watchEnvNames(this.object.map('env_watch'), compiled.envNames);
    const timing = await this.policyMaps.install(compiled);
    this.generations.add(compiled);
    this.generation = generation;
    this.policies = [...sources];
    this.reactions.set(reactions);
    if (compiled.classes.length > 0) {
      const again = seedClasses(this.object.map('task_ctx'), generation, compiled.classes, this.listMembership(), compiled.needsSha256);
      log.debug(again, 'binary classes seeded');
    }
    const result: ApplyResult = {
      generation: Number(generation),
      compileMs: compiledAt - started,
      swapMs: timing.fillMs + timing.switchMs,
      rules: Object.values(compiled.rules).reduce((n, r) => n + r.length, 0),
      entries: timing.entries,
    };
    log.info({ ...result, switchMs: timing.switchMs, slot: timing.slot }, 'policy generation installed');
    return result;
  }

  applyPolicies(policies: readonly LoadedPolicySource[]): Promise<ApplyResult> {
    // One apply at a time: generations are numbered and slots rotate.
    const run = this.applying.then(() => this.install(policies));
    this.applying = run.catch(() => undefined);
    return run;
  }

  currentPolicies(): { generation: number; policies: LoadedPolicySource[] } {
    return { generation: Number(this.generation), policies: [...this.policies] };
  }

  explain(facts: EventFacts): Decision {
    return evaluatePolicies(
      this.policies.map((s) => s.policy),
      facts,
      this.listMembership(),
    );
  }

  // --- lists ----------------------------------------------------------------

  lists(): ListView[] {
    return this.store.all().map((l) => ({
      name: l.name,
      type: l.type,
      id: l.id,
      entries: [...l.entries].map(([entry, exp]) => (exp === undefined ? { entry } : { entry, expires: new Date(exp).toISOString() })),
    }));
  }

  async listAdd(name: string, entries: readonly string[], ttlSeconds?: number): Promise<ListChange> {
    const change = this.inForce(name, entries, ttlSeconds);
    this.store.save();
    return change;
  }

  /** The kernel enforces the entries when this returns; the file is written later. */
  private inForce(name: string, entries: readonly string[], ttlSeconds?: number): ListChange {
    const change = this.store.add(name, entries, ttlSeconds, { save: false });
    for (const e of [...change.added, ...change.unchanged]) this.kernelLists.write(change.list, e, change.expiresAt);
    return { list: name, added: change.added, removed: [], unchanged: change.unchanged };
  }

  async listRemove(name: string, entries: readonly string[]): Promise<ListChange> {
    const change = this.store.remove(name, entries);
    for (const e of change.removed) this.kernelLists.delete(change.list, e);
    return { list: name, added: [], removed: change.removed, unchanged: change.unchanged };
  }

  private expireEntries(): void {
    for (const { list, entry } of this.store.expire()) this.kernelLists.delete(list, entry);
  }

  // --- status and life ------------------------------------------------------

  status(): AgentStatus {
    return {
      pid: process.pid,
      kernel: release(),
      generation: Number(this.generation),
      policies: this.policies.map((p) => p.policy.metadata.name),
      programs: this.programs,
      lists: this.store.all().map((l) => ({ name: l.name, type: l.type, size: l.entries.size })),
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      received: this.receivedCount,
      counters: this.counters(),
      reactions: this.reactions.latency(),
    };
  }

  async stop(): Promise<void> {
    this.opts.onStopRequest?.();
  }

  /**
   * Detaches every program, then drains what the rings still hold, so that
   * the final counters and the events delivered agree. Idempotent.
   */
  shutdown(): AgentEvent | null {
    if (this.stopped) return null;
    for (const link of this.links) link.close();
    this.links = [];
    this.ring?.consume();
    const final = this.lifecycleEvent('stopped');
    this.release();
    return final;
  }

  private onBatch(batch: Buffer, count: number): void {
    this.clock.resync();
    for (const record of splitBatch(batch, count)) {
      this.receivedCount++;
      // Not an event: the kernel asks for a file's digest (no IMA).
      if (record.view.byteLength >= 2 && record.view.getUint16(0, true) === KRSI_EVENT_HASH_REQUEST) {
        this.hasher.onRecord(record.view);
        continue;
      }
      let event: KrsiEvent;
      try {
        event = decodeRecord(record.view, this.decodeContext);
      } catch (err) {
        (this.opts.onRecordError ?? ((e: Error) => log.warn({ err: e }, 'undecodable record')))(err as Error);
        continue;
      }
      this.deliver(event);
      const kernelNs = decodeKrsiEventHeader(record.view).timeNs;
      this.reactions.onEvent(event, kernelNs).catch((err: Error) => log.warn({ err: err.message }, 'a reaction failed'));
    }
  }

  private release(): void {
    this.stopped = true;
    if (this.expiryTimer) clearInterval(this.expiryTimer);
    for (const link of this.links) link.close();
    this.links = [];
    this.ring?.close();
    this.ring = null;
    this.object.close();
  }
}

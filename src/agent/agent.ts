// The agent: loads krsi's BPF object, installs the policy, attaches every
// program, turns ring buffer records into events, and answers its control
// socket until it is stopped.
import { release } from 'node:os';
import { dirname, join } from 'node:path';
import {
  KRSI_ARGS_MAX,
  KRSI_EVENT_HASH_REQUEST,
  KrsiHookStatsLayout,
  decodeKrsiHookStats,
} from '../abi/generated.js';
import { native, type BpfLink, type BpfObject, type RingBuffer } from '../bpf/native.js';
import { EventClock, isoNs } from '../events/clock.js';
import { decodeKrsiEventHeader, decodeKrsiHookPolicy } from '../abi/generated.js';
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
import { TAMPER_ATTEMPTS } from '../events/tamper.js';
import type {
  AgentControl,
  AgentStatus,
  ApplyResult,
  ListChange,
  ListView,
  LoadedPolicySource,
} from './control-api.js';
import { Generations } from './generations.js';
import { checkObjectAbi } from './abi-check.js';
import { hooks, programsInAttachOrder } from './hooks.js';
import { PolicyMaps } from './policy-maps.js';
import { seedClasses } from './seed-classes.js';
import { ProcSnapshot, type ProcEntry } from './proc-snapshot.js';
import { DEFAULT_PIN_ROOT, PinLayout, openPinnedLinks, pinMaps, retireLinks, reusePinnedMaps, unpinAll } from './pins.js';
import { readState, writeState, type AgentState } from './state.js';
import { ALL_RINGS, Accounting, DEFAULT_EVENTS_PER_SECOND, DELIVERED, Pacer, gapEvent } from './accounting.js';
import type { Confinement } from '../system/landlock.js';
import { freezeBpfOnlyMaps, registerSelfIds, selfPrograms, writeSelfState } from './self-protection.js';
import { KRSI_EVENT_MODULE_STATE, KRSI_RING_DECISIONS } from '../abi/generated.js';
import { decodeModuleStateRecord } from '../events/module.js';
import { lockPointState, reachLockPoint, type LockPointState } from './lock-point.js';
import { ModuleWatch } from './module-watch.js';
import { ruleStates } from '../ops/rule-states.js';
import { ContentHasher, kernelHasImaFileHash } from './content-hasher.js';
import { DEFAULT_ENV_RECORD, checkEnvRecordNames, watchEnvNames, writeEnvRecord } from './env-record.js';
import { chooseVariants, describeMissing, fitToKernel, probeKernelFeatures, type Feature, type KernelFeatures } from './kernel-features.js';

export interface AgentOptions {
  /** The BPF object to load; build/bpf/krsi.bpf.o by default. */
  objectPath?: string;
  /**
   * The policies to enforce from the start. Undefined: keep what an earlier
   * agent left in force (pinned), or start with none.
   */
  policies?: readonly LoadedPolicySource[];
  /** Where dynamic lists are kept; null keeps them in memory only. */
  listsPath?: string | null;
  /** Report allowed execs too (noteworthy ones are always reported). */
  emitAllowed?: boolean;
  /** Bytes of argv per event, at most KRSI_ARGS_MAX. */
  argsMax?: number;
  /** Size of the telemetry ring, a power of two of at least a page. */
  eventsRingBytes?: number;
  /** Entries each list map (strings, values) holds at most, shared by the lists of its kind. */
  listCapacity?: number;
  onEvent: (event: KrsiEvent) => void;
  /** A record that could not be decoded; the agent goes on. */
  onRecordError?: (err: Error) => void;
  /**
   * Telemetry records the agent reads per second at most (default 20000):
   * beyond, they wait in the ring, and a full ring drops and counts them.
   * Decision records are always read at once.
   */
  eventsPerSecond?: number;
  /** Called when stop() is requested through the control API. */
  onStopRequest?: () => void;
  /** Size of the decisions ring. */
  decisionsRingBytes?: number;
  /** Where maps and links are pinned in bpffs (/sys/fs/bpf/krsi). */
  pinRoot?: string;
  /**
   * Fail open: enforcing links are not pinned, so the kernel stops
   * enforcing when the agent dies. The default is fail-closed.
   */
  failOpen?: boolean;
  /** Where the generation in force and its policies are recorded (next to the lists). */
  statePath?: string;
  /**
   * Deny every other process, root included, signals, ptrace, fds of the
   * agent's BPF objects, its pins (default: on). Stop it with `krsi stop`.
   */
  protect?: boolean;
  /** Environment variables whose values exec events carry (LD_PRELOAD, LD_AUDIT, LD_LIBRARY_PATH by default; [] for none). */
  envRecord?: readonly string[];
  /**
   * sha256 digests from IMA in the kernel (true), or from the agent (false:
   * the fallback for kernels without bpf_ima_file_hash). Default: IMA when
   * the kernel has it.
   */
  ima?: boolean;
  /** What the kernel accepts; probed when not given (src/agent/kernel-features.ts). */
  features?: KernelFeatures;
}

export const DEFAULT_LISTS_PATH = '/var/lib/krsi/lists.json';

/**
 * Milliseconds spent in each phase of the start, for the log: on a slow or
 * emulated machine, load (the kernel verifying every program) dominates.
 */
class StartupPhases {
  readonly ms: Record<string, number> = {};
  private last = performance.now();

  mark(phase: string): void {
    const now = performance.now();
    this.ms[phase] = Math.round((this.ms[phase] ?? 0) + now - this.last);
    this.last = now;
  }
}

/** What `krsi lock` freezes: every map a new generation would be written into. */
const LOCKED_MAPS = ['policy_active', 'policy_needs', 'policy_hooks', 'policy_strings', 'policy_prefixes', 'policy_values', 'policy_nets', 'policy_dfa'];

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
  private links: Array<{ program: string; link: BpfLink }> = [];
  /** Programs this kernel cannot load, left out of the load, with the features it lacks. */
  private leftOut = new Map<string, Feature[]>();
  /** The program loaded for each that has variants (PROGRAM_VARIANTS), by first name. */
  private variants: ReadonlyMap<string, string> = new Map();
  private adopted = false;
  private locked = false;
  private confinement: Confinement | null = null;
  /** Where the generation in force is recorded; null for an agent without files (lists in memory). */
  private readonly statePath: string | null;
  /** Decisions are read at once, always; telemetry within a budget (see Pacer). */
  private decisionsRing: RingBuffer | null = null;
  private eventsRing: RingBuffer | null = null;
  private pacer: Pacer | null = null;
  /** Modules loaded and not freed, compared with /proc/modules and /sys/module: hidden modules. */
  private modules: ModuleWatch | null = null;
  private readonly accounting: Accounting;
  private procSnapshotReader: ProcSnapshot | null = null;

  /** The running processes and their executables, as the kernel sees them. */
  processSnapshot(): ProcEntry[] {
    return this.procSnapshot.read();
  }

  private get procSnapshot(): ProcSnapshot {
    return (this.procSnapshotReader ??= new ProcSnapshot(this.object));
  }
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
    private readonly layout: PinLayout,
  ) {
    const listsPath = opts.listsPath === undefined ? DEFAULT_LISTS_PATH : opts.listsPath;
    this.statePath = opts.statePath ?? (listsPath === null ? null : join(dirname(listsPath), 'state.json'));
    this.policyMaps = new PolicyMaps(object);
    this.accounting = new Accounting(
      { seq: object.map('ring_seq'), lost: object.map('ring_lost'), read: object.map('ring_read') },
      native.numPossibleCpus(),
    );
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
    const layout = new PinLayout(opts.pinRoot ?? DEFAULT_PIN_ROOT);
    layout.prepare();

    const phases = new StartupPhases();
    const objectPath = opts.objectPath ?? bpfObjects.agent;
    checkObjectAbi(objectPath);
    const object = native.BpfObject.openFile(objectPath);
    const agent = new Agent(object, store, opts, layout);
    phases.mark('open');
    try {
      object.setGlobal('cfg_emit_allowed', u32(opts.emitAllowed === false ? 0 : 1));
      object.setGlobal('cfg_args_max', u32(argsMax));
      const envRecord = checkEnvRecordNames(opts.envRecord ?? DEFAULT_ENV_RECORD);
      object.setGlobal('cfg_env_record', u32(envRecord.length > 0 ? 1 : 0));
      agent.ima = opts.ima ?? kernelHasImaFileHash();
      object.setGlobal('cfg_ima', u32(agent.ima ? 1 : 0));
      if (opts.eventsRingBytes !== undefined) object.map('events').setMaxEntries(opts.eventsRingBytes);
      if (opts.decisionsRingBytes !== undefined) object.map('decisions').setMaxEntries(opts.decisionsRingBytes);
      agent.variants = chooseVariants();
      agent.leftOut = fitToKernel(object, opts.features ?? probeKernelFeatures(), agent.variants);
      if (agent.leftOut.size > 0) {
        log.warn(
          { leftOut: Object.fromEntries([...agent.leftOut].map(([p, f]) => [p, describeMissing(f)])) },
          'programs left out: this kernel cannot load them, their rules are degraded',
        );
      }
      if (opts.listCapacity !== undefined) {
        object.map('list_strings').setMaxEntries(opts.listCapacity);
        object.map('list_values').setMaxEntries(opts.listCapacity);
      }
      // An earlier agent's state: the same maps, so the same policy in force.
      const reuse = layout.hasState() ? reusePinnedMaps(object, layout) : { reused: [], incompatible: [] };
      if (reuse.incompatible.length > 0) {
        log.warn({ maps: reuse.incompatible }, 'the pinned state is of another version of krsi: replacing it (it enforces until then)');
      }
      phases.mark('prepare');
      object.load();
      phases.mark('load');
      pinMaps(object, layout, reuse.reused);
      freezeBpfOnlyMaps(object);
      writeSelfState(object, layout, opts.protect !== false);
      const prior = agent.statePath ? readState(agent.statePath) : null;
      agent.adopted = reuse.reused.length > 0;
      if (agent.adopted) {
        agent.adoptGeneration(prior);
        agent.detectLock();
      }
      else if (prior) agent.generation = prior.generation; // numbers keep growing
      writeEnvRecord(object.map('env_record'), envRecord);
      log.info({ envRecord, digests: agent.ima ? 'ima' : 'agent' }, 'exec environment and content digests');
      agent.kernelLists.syncAll(store);
      // Records the kernel wrote while no agent ran are consumed first.
      agent.accounting.baseline({ rings: agent.adopted, ringRead: reuse.reused.includes('ring_read') });
      agent.decisionsRing = new native.RingBuffer([object.map('decisions')], {}, (batch, count) => agent.onBatch(batch, count));
      agent.eventsRing = new native.RingBuffer([object.map('events')], {}, (batch, count) => {
        agent.onBatch(batch, count);
        agent.pacer?.spend(count);
      });
      // Every window, losses at the tail of a sequence are marked: of the
      // decisions ring once it is drained, of the events ring unless the
      // pacer held records back in it.
      agent.pacer = new Pacer(agent.eventsRing, opts.eventsPerSecond ?? DEFAULT_EVENTS_PER_SECOND, (paused) => {
        agent.decisionsRing?.consume();
        agent.markTailLosses(paused ? [KRSI_RING_DECISIONS] : ALL_RINGS);
      });
      phases.mark('state');
      const old = openPinnedLinks(layout);
      // Bookkeeping programs first (classes at exec, lineage at fork), so
      // that the classes seeded from /proc are kept up to date from then on;
      // the enforcing programs last, once the policy is in place. An earlier
      // agent's programs are detached only once ours run beside them.
      const order = programsInAttachOrder();
      for (const name of order.bookkeeping) agent.attach(name);
      // The module tracepoints are attached: from here on no load or free goes unseen.
      agent.modules = new ModuleWatch({ emit: (e) => agent.deliver(e), drain: () => agent.decisionsRing?.consume() });
      agent.modules.start();
      // Policies given now replace what was in force; without any, an
      // adopted generation stays, and a replaced one is rebuilt from the record.
      const wanted = opts.policies ?? (agent.adopted ? undefined : (prior?.policies ?? []));
      phases.mark('attach');
      if (wanted !== undefined) await agent.install(wanted);
      phases.mark('install');
      for (const name of order.enforcing) agent.attach(name);
      // Self-protection last: from here on no other process touches any of it.
      for (const name of selfPrograms) agent.attach(name);
      retireLinks(old);
      if (!opts.failOpen) agent.pinLinks();
      registerSelfIds(object, agent.links.map((l) => l.link));
      agent.expiryTimer = setInterval(() => agent.expireEntries(), 1000);
      agent.expiryTimer.unref();
      phases.mark('attach');
      log.info({ ms: phases.ms }, 'agent started');
    } catch (err) {
      agent.release();
      throw err;
    }
    return agent;
  }

  /**
   * Continues the generation the kernel enforces: its number from the
   * pinned tables, its policies (to name its rules) from the state file.
   */
  private adoptGeneration(state: AgentState | null): void {
    const slot = this.policyMaps.activeSlot();
    const id = this.object.map('policy_hooks').innerMapId(u32(slot));
    if (id === null) return;
    const hooksMap = native.BpfMap.openById(id);
    try {
      const value = hooksMap.lookup(u32(0));
      if (!value) return;
      this.generation = decodeKrsiHookPolicy(new DataView(value.buffer, value.byteOffset, value.byteLength)).generation;
    } finally {
      hooksMap.close();
    }
    if (state && state.generation === this.generation) {
      this.policies = state.policies;
      const lists = new Map(this.store.all().map((l) => [l.name, { id: l.id, type: l.type }] as const));
      try {
        const compiled = compilePolicies(state.policies.map((p) => p.policy), { generation: this.generation, lists });
        this.generations.add(compiled);
        this.reactions.set(compileReactions(state.policies.map((p) => p.policy), new Map(this.store.all().map((l) => [l.name, l.type]))));
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'cannot name the rules of the adopted generation');
      }
    } else {
      log.warn({ generation: Number(this.generation), state: state ? Number(state.generation) : null }, 'adopted a generation whose policies are not on record');
    }
    log.info({ generation: Number(this.generation) }, 'adopted the pinned policy state');
  }

  private pinLinks(): void {
    for (const { program, link } of this.links) link.pin(this.layout.linkPath(program));
  }

  private attach(program: string): void {
    if (this.leftOut.has(program)) return;
    this.links.push({ program, link: this.object.program(this.variants.get(program) ?? program).attach() });
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
      accounting: this.account(),
    };
  }

  /**
   * Puts in the stream a gap for every loss no later record showed yet, and
   * records for a successor that they are marked (ring_read).
   */
  private markTailLosses(rings: readonly number[] = ALL_RINGS): void {
    if (this.stopped) return;
    const gaps = this.accounting.tail(rings);
    for (const gap of gaps) this.deliver(gapEvent(gap));
    if (gaps.length > 0) this.accounting.checkpoint();
  }

  /** The accounting, every loss marked first: missing == dropped unless a record is lost meanwhile. */
  private account(): AgentStatus['accounting'] {
    this.markTailLosses();
    return this.accounting.report();
  }

  // --- policy ---------------------------------------------------------------

  private listMembership(): ListMembership {
    return { has: (name, entry) => this.store.has(name, entry) };
  }

  /** Compiles and installs; on any error nothing that is enforced changes. */
  private async install(sources: readonly LoadedPolicySource[]): Promise<ApplyResult> {
    if (this.locked) throw new InputError(`the policy is locked until reboot (krsi lock): generation ${this.generation} stays in force`);
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
    const classesKept = compiled.classes.length > 0 && this.object.map('task_ctx').fd >= 0 && !this.leftOut.has('proc_snapshot');
    if (classesKept) {
      // Classes of running processes, written for the new generation before
      // the switch (ignored until then), and again after it for processes
      // that exec'd or forked meanwhile under the old one.
      seedClasses(this.object.map('task_ctx'), this.procSnapshot.read(), generation, compiled.classes, this.listMembership(), compiled.needsSha256);
    }
    watchEnvNames(this.object.map('env_watch'), compiled.envNames);
    const timing = await this.policyMaps.install(compiled);
    this.generations.add(compiled);
    this.generation = generation;
    this.policies = [...sources];
    this.reactions.set(reactions);
    if (this.statePath) writeState(this.statePath, { generation, policies: this.policies });
    if (classesKept) {
      const again = seedClasses(this.object.map('task_ctx'), this.procSnapshot.read(), generation, compiled.classes, this.listMembership(), compiled.needsSha256);
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
      { lockPoint: this.lockPoint().reached, ...facts },
      this.listMembership(),
    );
  }

  /** Whether (and since when) the lock point was reached: afterLockPoint rules are in force from it on. */
  lockPoint(): LockPointState {
    return lockPointState(this.object, (ns) => this.clock.wallNs(ns));
  }

  /** Reaches the lock point, for good until reboot (src/agent/lock-point.ts). */
  async reachLockPoint(): Promise<LockPointState & { already: boolean }> {
    const r = reachLockPoint(this.object, (ns) => this.clock.wallNs(ns));
    if (!r.already) log.info({ since: r.since }, 'lock point reached: afterLockPoint rules are in force');
    return r;
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
    const change = this.store.add(name, entries, ttlSeconds, { save: false, before: (c) => this.kernelLists.apply(this.store, c) });
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
      accounting: this.account(),
      locked: this.locked,
      lockPoint: this.lockPoint(),
      tamper: this.tamperCounters(),
      landlock: this.confinement,
      reactions: this.reactions.latency(),
      ...this.operationsStatus(),
    };
  }

  /** Process figures, hooks attached and rule states (issue 7: `krsi status`). */
  private operationsStatus(): Pick<AgentStatus, 'process' | 'hooks' | 'rules'> {
    const cpu = process.cpuUsage();
    const attached = new Set(this.links.map((l) => l.program));
    return {
      process: { cpuUserSeconds: cpu.user / 1e6, cpuSystemSeconds: cpu.system / 1e6, rssBytes: process.memoryUsage.rss() },
      hooks: hooks.map((h) => ({ hook: h.hook, program: h.program, enforcing: h.enforcing, attached: attached.has(h.program) })),
      rules: ruleStates(this.policies.map((p) => p.policy), {
        attached,
        ima: this.ima,
        lockPointReached: this.lockPoint().reached,
        leftOut: new Map([...this.leftOut].map(([p, f]) => [p, describeMissing(f)])),
      }),
    };
  }

  async stop(): Promise<void> {
    this.opts.onStopRequest?.();
  }

  /** How the process is confined (Landlock), for status. */
  setConfinement(c: Confinement | null): void {
    this.confinement = c;
  }

  async lock(): Promise<{ generation: number }> {
    // Freezing is for good: only destroying the maps (a reboot, since they
    // are pinned and their pins are protected) undoes it.
    await this.applying;
    for (const name of LOCKED_MAPS) this.object.map(name).freeze();
    this.locked = true;
    log.warn({ generation: Number(this.generation) }, 'policy locked until reboot');
    return { generation: Number(this.generation) };
  }

  /** A map frozen by an earlier agent's lock refuses every write. */
  private detectLock(): void {
    const active = this.object.map('policy_active');
    const value = active.lookup(u32(0));
    if (!value) return;
    try {
      active.update(u32(0), value);
    } catch (err) {
      if ((err as { code?: string }).code === 'EPERM') this.locked = true;
    }
  }

  /** Tampering attempts denied, by kind, summed over CPUs. */
  tamperCounters(): Record<string, number> {
    const map = this.object.map('self_counters');
    const out: Record<string, number> = {};
    for (const [what, name] of Object.entries(TAMPER_ATTEMPTS)) {
      const v = map.lookup(u32(Number(what)));
      let sum = 0;
      if (v) for (let off = 0; off + 8 <= v.length; off += 8) sum += Number(v.readBigUInt64LE(off));
      out[name] = sum;
    }
    return out;
  }

  /**
   * Detaches every program, then drains what the rings still hold, so that
   * the final counters and the events delivered agree. Idempotent.
   */
  shutdown(): AgentEvent | null {
    if (this.stopped) return null;
    // A clean stop leaves nothing enforced and nothing pinned.
    for (const { link } of this.links) {
      if (link.pinPath) link.unpin();
      link.close();
    }
    this.links = [];
    unpinAll(this.layout);
    this.decisionsRing?.consume();
    this.eventsRing?.consume();
    const final = this.lifecycleEvent('stopped');
    this.release();
    return final;
  }

  private onBatch(batch: Buffer, count: number): void {
    this.clock.resync();
    for (const record of splitBatch(batch, count)) {
      this.receivedCount++;
      let event: KrsiEvent;
      let kernelNs: bigint;
      try {
        // Accounted before anything else: an undecodable record was still received.
        const hdr = decodeKrsiEventHeader(record.view);
        const gap = this.accounting.record(hdr.ring, hdr.cpu, hdr.seq);
        if (gap === DELIVERED) {
          // One a killed predecessor handled and checkpointed (ring_read): neither ours to count nor to deliver.
          this.receivedCount--;
          continue;
        }
        if (gap) this.deliver(gapEvent(gap));
        kernelNs = hdr.timeNs;
        if (hdr.type === KRSI_EVENT_HASH_REQUEST) {
          // Not an event: the kernel asks for a file's digest (no IMA).
          this.hasher.onRecord(record.view);
          continue;
        }
        if (hdr.type === KRSI_EVENT_MODULE_STATE) {
          // Not an event: the hidden-module tracker's input.
          this.modules?.onRecord(decodeModuleStateRecord(record.view, this.decodeContext));
          continue;
        }
        event = decodeRecord(record.view, this.decodeContext);
      } catch (err) {
        (this.opts.onRecordError ?? ((e: Error) => log.warn({ err: e }, 'undecodable record')))(err as Error);
        continue;
      }
      this.deliver(event);
      this.reactions.onEvent(event, kernelNs).catch((err: Error) => log.warn({ err: err.message }, 'a reaction failed'));
    }
    // After the batch went out: a successor counts from here (ring_read).
    this.accounting.checkpoint();
  }

  private release(): void {
    this.stopped = true;
    if (this.expiryTimer) clearInterval(this.expiryTimer);
    this.modules?.stop();
    // Closing our fds of pinned links leaves them attached (kill -9 does
    // the same): enforcement outlives the agent unless it stops cleanly.
    for (const { link } of this.links) link.close();
    this.links = [];
    this.procSnapshotReader?.close();
    this.pacer?.stop();
    this.decisionsRing?.close();
    this.eventsRing?.close();
    this.decisionsRing = this.eventsRing = null;
    this.object.close();
  }
}

// The agent: loads krsi's BPF object, fills its maps, attaches every program,
// and turns ring buffer records into events until it is stopped.
import { release } from 'node:os';
import { KRSI_ARGS_MAX, KrsiHookStatsLayout, decodeKrsiHookStats } from '../abi/generated.js';
import { native, type BpfLink, type BpfObject, type RingBuffer } from '../bpf/native.js';
import { EventClock, isoNs } from '../events/clock.js';
import { decodeRecord, splitBatch } from '../events/decode.js';
import { SCHEMA_VERSION, type AgentEvent, type HookCounters, type KrsiEvent } from '../events/schema.js';
import { InputError } from '../errors.js';
import { log } from '../log.js';
import { bpfObjects } from '../paths.js';
import { fileIdentity, inodeKey, ruleValue, type FileIdentity } from './deny-exec.js';
import { hooks } from './hooks.js';

export interface AgentOptions {
  /** The BPF object to load; build/bpf/krsi.bpf.o by default. */
  objectPath?: string;
  /** Files whose exec is denied; rule ids are their 1-based positions. */
  denyExec?: readonly string[];
  /** Report allowed execs too (denials are always reported). */
  emitAllowed?: boolean;
  /** Bytes of argv per event, at most KRSI_ARGS_MAX. */
  argsMax?: number;
  /** Size of the telemetry ring, a power of two of at least a page. */
  eventsRingBytes?: number;
  onEvent: (event: KrsiEvent) => void;
  /** A record that could not be decoded; the agent goes on. */
  onRecordError?: (err: Error) => void;
}

const u32 = (value: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value);
  return b;
};

export class Agent {
  private readonly clock = new EventClock();
  private links: BpfLink[] = [];
  private ring: RingBuffer | null = null;
  private stopped = false;
  private receivedCount = 0;

  private constructor(
    private readonly object: BpfObject,
    private readonly opts: AgentOptions,
    readonly denied: readonly FileIdentity[],
  ) {}

  /**
   * Loads and attaches everything, or throws having attached nothing: a
   * failure part-way detaches what was attached before it.
   */
  static start(opts: AgentOptions): Agent {
    const argsMax = opts.argsMax ?? KRSI_ARGS_MAX;
    if (!Number.isInteger(argsMax) || argsMax < 0 || argsMax > KRSI_ARGS_MAX) {
      throw new InputError(`argsMax must be an integer from 0 to ${KRSI_ARGS_MAX}`);
    }
    // Resolve every path before touching the kernel: a typo changes nothing.
    const denied = (opts.denyExec ?? []).map(fileIdentity);

    const object = native.BpfObject.openFile(opts.objectPath ?? bpfObjects.agent);
    const agent = new Agent(object, opts, denied);
    try {
      object.setGlobal('cfg_emit_allowed', u32(opts.emitAllowed === false ? 0 : 1));
      object.setGlobal('cfg_args_max', u32(argsMax));
      if (opts.eventsRingBytes !== undefined) object.map('events').setMaxEntries(opts.eventsRingBytes);
      object.load();
      const denyMap = object.map('deny_exec');
      denied.forEach((id, i) => denyMap.update(inodeKey(id), ruleValue(i + 1)));
      agent.ring = new native.RingBuffer([object.map('decisions'), object.map('events')], {}, (batch, count) =>
        agent.onBatch(batch, count),
      );
      for (const h of hooks) {
        agent.links.push(object.program(h.program).attach());
        log.debug({ hook: h.hook, program: h.program }, 'attached');
      }
    } catch (err) {
      agent.release();
      throw err;
    }
    return agent;
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
      const sum: HookCounters = { seen: 0, denied: 0, emitted: 0, dropped: 0 };
      if (value) {
        const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
        for (let off = 0; off + KrsiHookStatsLayout.size <= value.byteLength; off += stride) {
          const s = decodeKrsiHookStats(view, off);
          sum.seen += Number(s.seen);
          sum.denied += Number(s.denied);
          sum.emitted += Number(s.emitted);
          sum.dropped += Number(s.dropped);
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
      counters: this.counters(),
      received: this.receivedCount,
    };
  }

  /**
   * Detaches every program, then drains what the rings still hold, so that
   * the final counters and the events delivered agree. Idempotent.
   */
  stop(): AgentEvent | null {
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
      let event: KrsiEvent;
      try {
        event = decodeRecord(record.view, this.clock);
      } catch (err) {
        (this.opts.onRecordError ?? ((e: Error) => log.warn({ err: e }, 'undecodable record')))(err as Error);
        continue;
      }
      this.opts.onEvent(event);
    }
  }

  private release(): void {
    this.stopped = true;
    for (const link of this.links) link.close();
    this.links = [];
    this.ring?.close();
    this.ring = null;
    this.object.close();
  }
}

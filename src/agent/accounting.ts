// Exact accounting of what the kernel tried to report. Every record carries
// a sequence number per ring and CPU, taken whether or not the ring had
// room (bpf/lib/maps.h, number_record()): ring_seq holds the last one, and
// ring_lost counts the records the ring had no room for. So, per ring,
// since this agent's baseline:
//   attempted = ring_seq summed over CPUs,
//   received  = records this agent read,
//   dropped   = ring_lost summed over CPUs: exact at every moment,
//   pending   = attempted - received - dropped: in the ring, or being written.
// Every loss is marked in the stream by a `gap` event. Where the sequence
// jumps, the gap goes in place of the lost records; a loss no later record
// of its CPU reveals (the tail of a sequence) is marked when the agent
// compares ring_lost with what it marked (tail()): on a timer, before every
// report and at stop, so that at any quiet moment missing == dropped.
import { KRSI_RING_COUNT, KRSI_RING_DECISIONS, KRSI_RING_EVENTS, KrsiRingReadLayout, decodeKrsiRingRead, encodeKrsiRingRead } from '../abi/generated.js';
import type { BpfMap, RingBuffer } from '../bpf/native.js';
import { isoNs } from '../events/clock.js';
import { SCHEMA_VERSION, type GapEvent } from '../events/schema.js';

export const DEFAULT_EVENTS_PER_SECOND = 20_000;

export const ringName = (ring: number): 'decisions' | 'events' => (ring === KRSI_RING_DECISIONS ? 'decisions' : 'events');

export const ALL_RINGS: readonly number[] = [KRSI_RING_DECISIONS, KRSI_RING_EVENTS];

/** record()'s answer for a record numbered before this agent's account started. */
export const DELIVERED = 'delivered';

export interface Gap {
  ring: number;
  cpu: number;
  /**
   * The first of the sequence numbers lost: at a jump, the `missing`
   * numbers just before the record that showed it; at the tail (no later
   * record yet), a lower bound: the lost records are at or after it.
   */
  firstSeq: bigint;
  missing: bigint;
}

export interface RingAccount {
  attempted: number;
  received: number;
  /** The kernel's count of records the ring had no room for. */
  dropped: number;
  /** attempted - received - dropped: still in the ring, or being written. */
  pending: number;
  /** Gap markers put in the stream, and the lost records they stand for. */
  gaps: number;
  missing: number;
}

/** The maps the accounting reads (ring_seq, ring_lost) and writes (ring_read). */
export interface AccountingMaps {
  seq: Pick<BpfMap, 'lookup'>;
  lost: Pick<BpfMap, 'lookup'>;
  read: Pick<BpfMap, 'lookup' | 'update'>;
}

/**
 * What the agent knows of one ring on one CPU, counted since the maps were
 * created, as ring_read keeps it for a successor (struct krsi_ring_read).
 */
interface CpuState {
  /** The last sequence number received. */
  seq: bigint;
  /** Records numbered before seq that never arrived: the jumps. */
  jumpLost: bigint;
  /** Records the gap events stood for. */
  marked: bigint;
}

/** Per-CPU values are padded to 8 bytes each. */
const READ_STRIDE = Math.ceil(KrsiRingReadLayout.size / 8) * 8;

function perCpu(value: Buffer | null): bigint[] {
  const out: bigint[] = [];
  if (value) for (let off = 0; off + 8 <= value.length; off += 8) out.push(value.readBigUInt64LE(off));
  return out;
}

function ringRead(value: Buffer | null): CpuState[] {
  const out: CpuState[] = [];
  if (!value) return out;
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
  for (let off = 0; off + KrsiRingReadLayout.size <= value.length; off += READ_STRIDE) out.push(decodeKrsiRingRead(view, off));
  return out;
}

const sum = (xs: readonly bigint[]): bigint => xs.reduce((a, b) => a + b, 0n);
const min = (a: bigint, b: bigint): bigint => (a < b ? a : b);

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};

const NOTHING: CpuState = { seq: 0n, jumpLost: 0n, marked: 0n };

export class Accounting {
  /** Where this agent's account starts, by ring and CPU: records numbered after base.seq are its own. */
  private readonly base: CpuState[][] = Array.from({ length: KRSI_RING_COUNT }, () => []);
  private readonly state: CpuState[][] = Array.from({ length: KRSI_RING_COUNT }, () => []);
  private readonly received = new Array<number>(KRSI_RING_COUNT).fill(0);
  private readonly gaps = new Array<number>(KRSI_RING_COUNT).fill(0);
  private readonly dirty = new Array<boolean>(KRSI_RING_COUNT).fill(false);
  /** ring_lost as read during the current batch (checkpoint() ends it). */
  private readonly lostInBatch: Array<bigint[] | null> = new Array<bigint[] | null>(KRSI_RING_COUNT).fill(null);

  constructor(
    private readonly maps: AccountingMaps,
    private readonly cpus: number,
  ) {}

  /**
   * Reads where the sequences stand. A fresh object starts at 0. An adopted
   * one starts where the previous agent last consumed (ring_read, which it
   * kept up to date): records written after that, while no agent ran, are
   * this agent's to deliver or to count as lost, and losses it did not mark
   * are this agent's to mark.
   */
  baseline(adopted: { rings: boolean; ringRead: boolean }): void {
    for (let ring = 0; ring < KRSI_RING_COUNT; ring++) {
      let base: CpuState[] = [];
      if (adopted.rings && adopted.ringRead) {
        // Zeros: the previous agent read nothing.
        base = ringRead(this.maps.read.lookup(u32(ring)));
      } else if (adopted.rings) {
        // Rings of a krsi that kept no ring_read: from now, nothing known of
        // the past, its losses none of this agent's.
        const lost = perCpu(this.maps.lost.lookup(u32(ring)));
        base = perCpu(this.maps.seq.lookup(u32(ring))).map((seq, cpu) => ({ seq, jumpLost: lost[cpu] ?? 0n, marked: lost[cpu] ?? 0n }));
      }
      this.base[ring] = base;
      this.state[ring] = base.map((b) => ({ ...b }));
    }
  }

  private baseOf(ring: number, cpu: number): CpuState {
    return this.base[ring]![cpu] ?? NOTHING;
  }

  private stateOf(ring: number, cpu: number): CpuState {
    const states = this.state[ring]!;
    return (states[cpu] ??= { ...this.baseOf(ring, cpu) });
  }

  /**
   * Records, for the next agent, how far this one consumed and what it
   * marked: after every batch delivered and every loss marked. Ends the batch.
   */
  checkpoint(): void {
    for (let ring = 0; ring < KRSI_RING_COUNT; ring++) {
      this.lostInBatch[ring] = null;
      if (!this.dirty[ring]) continue;
      const value = Buffer.alloc(READ_STRIDE * this.cpus);
      const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
      for (let cpu = 0; cpu < this.cpus; cpu++) encodeKrsiRingRead(this.stateOf(ring, cpu), view, cpu * READ_STRIDE);
      this.maps.read.update(u32(ring), value);
      this.dirty[ring] = false;
    }
  }

  /**
   * A record arrived: returns the gap before it, if any, or DELIVERED for a
   * record an adopted predecessor delivered already. (The ring reader gives
   * the ring back what it took only after a batch is delivered and
   * checkpointed, so a predecessor killed in between leaves that batch in
   * the ring: what it checkpointed is skipped, the rest delivered again.)
   */
  record(ring: number, cpu: number, seq: bigint): Gap | null | typeof DELIVERED {
    if (ring >= KRSI_RING_COUNT) return null;
    const base = this.baseOf(ring, cpu);
    if (seq <= base.seq) return DELIVERED; // numbered before this agent's account started
    this.received[ring]!++;
    this.dirty[ring] = true;
    const s = this.stateOf(ring, cpu);
    if (seq <= s.seq) {
      // Written after a later-numbered record (a program preempted between
      // numbering and writing): a jump counted it, but it was not lost.
      if (s.jumpLost > base.jumpLost) s.jumpLost--;
      return null;
    }
    const jump = seq - s.seq - 1n;
    s.seq = seq;
    if (jump === 0n) return null;
    // No more than the kernel counted lost: a record written out of order
    // may still come, and the records a killed predecessor took from the
    // ring were not lost by the kernel. Then none that a gap at the tail
    // marked already.
    const lost = (this.lostInBatch[ring] ??= perCpu(this.maps.lost.lookup(u32(ring))))[cpu] ?? 0n;
    s.jumpLost = min(s.jumpLost + jump, lost);
    const mark = s.jumpLost - s.marked;
    if (mark <= 0n) return null;
    s.marked += mark;
    this.gaps[ring]!++;
    return { ring, cpu, firstSeq: seq - mark, missing: mark };
  }

  /**
   * Compares the kernel's lost counts with what was marked: returns a gap
   * for every CPU whose losses no later record showed yet, and counts them
   * as marked (checkpoint() then records that for a successor).
   */
  tail(rings: readonly number[] = ALL_RINGS): Gap[] {
    const out: Gap[] = [];
    for (const ring of rings) {
      perCpu(this.maps.lost.lookup(u32(ring))).forEach((lost, cpu) => {
        const s = this.stateOf(ring, cpu);
        if (lost <= s.marked) return;
        // Past the last record received, and past what was marked there already.
        const ahead = s.marked > s.jumpLost ? s.marked - s.jumpLost : 0n;
        out.push({ ring, cpu, firstSeq: s.seq + 1n + ahead, missing: lost - s.marked });
        s.marked = lost;
        this.gaps[ring]!++;
        this.dirty[ring] = true;
      });
    }
    return out;
  }

  /**
   * Per ring, since the baseline. An adopted agent's `missing` includes the
   * losses after its baseline that its predecessor marked at the tail.
   */
  report(): Record<'decisions' | 'events', RingAccount> {
    const out = {} as Record<'decisions' | 'events', RingAccount>;
    for (let ring = 0; ring < KRSI_RING_COUNT; ring++) {
      // Lost first: a loss counted then was numbered before ring_seq is read.
      const lost = perCpu(this.maps.lost.lookup(u32(ring)));
      const seq = perCpu(this.maps.seq.lookup(u32(ring)));
      const cpus = Math.max(lost.length, seq.length, this.cpus);
      const base = Array.from({ length: cpus }, (_, cpu) => this.baseOf(ring, cpu));
      const attempted = Number(sum(seq) - sum(base.map((b) => b.seq)));
      const received = this.received[ring]!;
      const dropped = Number(sum(lost) - sum(base.map((b) => b.jumpLost)));
      const marked = sum(Array.from({ length: cpus }, (_, cpu) => (this.state[ring]![cpu] ?? base[cpu]!).marked));
      out[ringName(ring)] = {
        attempted,
        received,
        dropped,
        pending: attempted - received - dropped,
        gaps: this.gaps[ring]!,
        missing: Number(marked - sum(base.map((b) => b.jumpLost))),
      };
    }
    return out;
  }
}

export function gapEvent(gap: Gap): GapEvent {
  return {
    schema: SCHEMA_VERSION,
    kind: 'gap',
    time: isoNs(BigInt(Date.now()) * 1_000_000n),
    ring: ringName(gap.ring),
    cpu: gap.cpu,
    first_seq: gap.firstSeq.toString(),
    missing: Number(gap.missing),
  };
}

/**
 * Keeps the agent's CPU bounded under a flood of telemetry: at most
 * `perSecond` records a second, in windows of a tenth of a second; past the
 * window's budget the ring is not watched until the next window. What waits
 * stays in the kernel's ring; what does not fit there is dropped and counted.
 */
export class Pacer {
  private spent = 0;
  private paused = false;
  private readonly timer: NodeJS.Timeout;
  private readonly budget: number;

  /**
   * onWindow runs at the end of every window, told whether the ring was
   * paused in it (then records wait in the ring, and a check for losses at
   * the tail would mark them before the records that precede them).
   */
  constructor(
    private readonly ring: RingBuffer,
    perSecond: number,
    private readonly onWindow?: (paused: boolean) => void,
  ) {
    this.budget = Math.max(1, Math.round(perSecond / 10));
    this.timer = setInterval(() => this.window(), 100);
    this.timer.unref();
  }

  spend(records: number): void {
    this.spent += records;
    if (!this.paused && this.spent >= this.budget) {
      this.paused = true;
      this.ring.pause();
    }
  }

  private window(): void {
    this.spent = 0;
    const paused = this.paused;
    if (paused) {
      this.paused = false;
      this.ring.resume();
    }
    this.onWindow?.(paused);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

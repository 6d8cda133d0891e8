// Exact accounting of what the kernel tried to report. Every record carries
// a sequence number per ring and CPU, taken whether or not the ring had
// room (bpf/lib/maps.h, emit()); ring_seq holds the last one. So:
//   attempted = the sum of ring_seq over CPUs,
//   received  = records this agent read,
//   dropped   = attempted - received, once the rings are drained,
// and a jump in the sequence marks where records went missing: the agent
// puts a `gap` event there, in the stream, in place of the lost records.
import { KRSI_RING_COUNT, KRSI_RING_DECISIONS } from '../abi/generated.js';
import type { BpfMap, RingBuffer } from '../bpf/native.js';
import { isoNs } from '../events/clock.js';
import { SCHEMA_VERSION, type GapEvent } from '../events/schema.js';

export const DEFAULT_EVENTS_PER_SECOND = 20_000;

export const ringName = (ring: number): 'decisions' | 'events' => (ring === KRSI_RING_DECISIONS ? 'decisions' : 'events');

export interface Gap {
  ring: number;
  cpu: number;
  /** The first sequence number that never arrived. */
  firstSeq: bigint;
  missing: bigint;
}

export interface RingAccount {
  attempted: number;
  received: number;
  /** attempted - received: lost to a full ring, or still in it. */
  dropped: number;
  /** Gap markers put in the stream, and the records they stand for. */
  gaps: number;
  missing: number;
}

/** Sums a per-CPU u64 array entry. */
function sumPerCpu(value: Buffer | null): bigint {
  let sum = 0n;
  if (value) for (let off = 0; off + 8 <= value.length; off += 8) sum += value.readBigUInt64LE(off);
  return sum;
}

function perCpu(value: Buffer | null): bigint[] {
  const out: bigint[] = [];
  if (value) for (let off = 0; off + 8 <= value.length; off += 8) out.push(value.readBigUInt64LE(off));
  return out;
}

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};

export class Accounting {
  /** Last sequence number seen, by ring and CPU. */
  private readonly last = new Map<string, bigint>();
  /** ring_seq at the agent's start: records before it are not this agent's to account. */
  private readonly start: bigint[][] = Array.from({ length: KRSI_RING_COUNT }, () => []);
  private readonly received = new Array<number>(KRSI_RING_COUNT).fill(0);
  private readonly gaps = new Array<number>(KRSI_RING_COUNT).fill(0);
  private readonly missing = new Array<bigint>(KRSI_RING_COUNT).fill(0n);
  private readonly dirty = new Array<boolean>(KRSI_RING_COUNT).fill(false);

  /**
   * Reads where the sequences stand. A fresh object starts at 0. An adopted
   * one starts where the previous agent last consumed (ring_read, which it
   * kept up to date): records written after that, while no agent ran, are
   * this agent's to deliver or to count as lost.
   */
  baseline(ringSeq: BpfMap, ringRead: BpfMap, adopted: { rings: boolean; ringRead: boolean }): void {
    for (let ring = 0; ring < KRSI_RING_COUNT; ring++) {
      // Adopted rings with the previous agent's ring_read: count from where
      // it stopped reading (zeros: it read nothing). Without (a krsi that
      // did not keep ring_read): from now, nothing known of the past.
      const start = !adopted.rings ? [] : adopted.ringRead ? perCpu(ringRead.lookup(u32(ring))) : perCpu(ringSeq.lookup(u32(ring)));
      this.start[ring] = start;
      start.forEach((n, cpu) => this.last.set(`${ring}/${cpu}`, n));
    }
  }

  /** Records, for the next agent, how far this one consumed (after every batch). */
  checkpoint(ringRead: BpfMap, cpus: number): void {
    for (let ring = 0; ring < KRSI_RING_COUNT; ring++) {
      if (!this.dirty[ring]) continue;
      const value = Buffer.alloc(8 * cpus);
      for (let cpu = 0; cpu < cpus; cpu++) value.writeBigUInt64LE(this.last.get(`${ring}/${cpu}`) ?? this.start[ring]![cpu] ?? 0n, cpu * 8);
      ringRead.update(u32(ring), value);
      this.dirty[ring] = false;
    }
  }

  /** A record arrived: returns the gap before it, if any. */
  record(ring: number, cpu: number, seq: bigint): Gap | null {
    if (ring >= KRSI_RING_COUNT) return null;
    const start = this.start[ring]![cpu] ?? 0n;
    if (seq <= start) return null; // written before this agent started
    this.received[ring]!++;
    this.dirty[ring] = true;
    const key = `${ring}/${cpu}`;
    const last = this.last.get(key) ?? start;
    this.last.set(key, seq);
    if (seq <= last + 1n) return null;
    const gap = { ring, cpu, firstSeq: last + 1n, missing: seq - last - 1n };
    this.gaps[ring]!++;
    this.missing[ring]! += gap.missing;
    return gap;
  }

  /** Per ring, since this agent started; exact once the rings are drained. */
  report(ringSeq: BpfMap): Record<'decisions' | 'events', RingAccount> {
    const out = {} as Record<'decisions' | 'events', RingAccount>;
    for (let ring = 0; ring < KRSI_RING_COUNT; ring++) {
      const startSum = (this.start[ring] ?? []).reduce((a, b) => a + b, 0n);
      const attempted = Number(sumPerCpu(ringSeq.lookup(u32(ring))) - startSum);
      const received = this.received[ring]!;
      out[ringName(ring)] = {
        attempted,
        received,
        dropped: attempted - received,
        gaps: this.gaps[ring]!,
        missing: Number(this.missing[ring]!),
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

  constructor(
    private readonly ring: RingBuffer,
    perSecond: number,
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
    if (this.paused) {
      this.paused = false;
      this.ring.resume();
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

// BPF programs stamp events with bpf_ktime_get_ns(), CLOCK_MONOTONIC, the
// clock behind process.hrtime. Wall time is that plus the offset between the
// two clocks, re-read for every batch so NTP steps are followed.

export class EventClock {
  private offsetNs = 0n;

  constructor() {
    this.resync();
  }

  resync(): void {
    const mono = process.hrtime.bigint();
    const wall = BigInt(Date.now()) * 1_000_000n;
    this.offsetNs = wall - mono;
  }

  /** Nanoseconds since the epoch for a monotonic kernel timestamp. */
  wallNs(monotonicNs: bigint): bigint {
    return monotonicNs + this.offsetNs;
  }
}

/** RFC 3339 UTC with nanoseconds: 2026-11-29T02:21:00.123456789Z. */
export function isoNs(epochNs: bigint): string {
  const ms = epochNs / 1_000_000n;
  const iso = new Date(Number(ms)).toISOString(); // ...T02:21:00.123Z
  const frac = (epochNs % 1_000_000_000n).toString().padStart(9, '0');
  return `${iso.slice(0, 19)}.${frac}Z`;
}

// The BPF ring buffer against a per-CPU perf buffer at equal load (the
// seed's memory concern), part of `krsi bench pipeline`. Agent-less: this
// process loads bench/bpf/ringperf.bpf.o, whose programs turn every getppid()
// of its children (build/bench/getppidloop) into one 256-byte record, and
// reads them through the binding (native.RingBuffer or native.PerfBuffer),
// counting records as the agent's reader would before decoding them.
//
// Both transports get the same capacity per CPU: one ring of X bytes shared
// by all CPUs, or X bytes of perf buffer on every CPU (X × CPUs in all).
// Two loads: full speed (the generators call as fast as they can, so the
// transport's own cost to the caller shapes the load: perf_buffer wakes the
// reader for every record in libbpf 1.1), and paced at the same rate for
// both (half the slower transport's full-speed rate in a warm-up run).
// Rounds interleave the four runs in a shuffled order; each measures records
// received per second (storm start to drained), records refused (counted by
// the BPF program for both; for perf also the kernel's lost count), the
// buffers' memory and this process's user and system CPU time.
import { spawn } from 'node:child_process';
import { native, type BpfObject, type OnBatch } from '../bpf/native.js';
import { median, shuffle } from './stats.js';
import type { Table } from './report.js';

export const TRANSPORTS = ['ring', 'perf'] as const;
export type Transport = (typeof TRANSPORTS)[number];

export const RECORD_BYTES = 256;
/** Paced runs make this fraction of the full-speed runs' calls (they are slower). */
const PACED_CALLS = 0.25;
/** bpf_ringbuf's header page and its consumer and producer position pages (kernel/bpf/ringbuf.c). */
export const RING_META_PAGES = 3;

export interface RingPerfRun {
  transport: Transport;
  /** Calls per second per generator; 0: as fast as it can. */
  rate: number;
  round: number;
  /** X: the ring's size, or each CPU's perf buffer data size. */
  capacityBytes: number;
  /** 1 for the ring, one per online CPU for perf. */
  buffers: number;
  /** Computed from the page counts (see bufferMemory). */
  memoryBytes: number;
  /** The kernel's own figure where it has one (the ring map's bytes_memlock), else null. */
  kernelBytes: number | null;
  generators: number;
  calls: number;
  /** Storm start to the last record read. */
  seconds: number;
  /** Storm start to the last generator's exit: calls / this is the offered rate. */
  producerSeconds: number;
  received: number;
  /** bpf_ringbuf_output / bpf_perf_event_output failures, counted by the program. */
  refused: number;
  /** perf: PERF_RECORD_LOST counts delivered to the lost callback; ring: null (it has none). */
  lostReported: number | null;
  userCpuUs: number;
  sysCpuUs: number;
}

/**
 * Memory of one transport at capacity X per CPU: the ring is X plus its
 * three metadata pages (its data pages are mapped twice, but exist once);
 * perf_buffer mmaps X plus one header page on each CPU.
 */
export function bufferMemory(transport: Transport, capacityBytes: number, buffers: number, pageSize: number): number {
  return transport === 'ring' ? capacityBytes + RING_META_PAGES * pageSize : buffers * (capacityBytes + pageSize);
}

/** Sums a per-CPU map value's u64 fields: values are 8-byte aligned, CPU after CPU. */
export function sumPerCpu(value: Buffer, valueSize: number, fields: number): number[] {
  const stride = (valueSize + 7) & ~7;
  const out = new Array<number>(fields).fill(0);
  for (let off = 0; off + stride <= value.length; off += stride) {
    for (let f = 0; f < fields; f++) out[f]! += Number(value.readBigUInt64LE(off + 8 * f));
  }
  return out;
}

export interface RingPerfOptions {
  object: string;
  getppidloop: string;
  rounds: number;
  callsPerGenerator: number;
  generators: number;
  capacities: number[];
  rand: () => number;
  progress: (msg: string) => void;
  /** The ring map's bytes_memlock from the kernel (bpftool), if it can tell. */
  ringMemlock?: (mapId: number) => number | null;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs a child without blocking the loop (the reader runs on it). */
function runChild(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: 'ignore' });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}`))));
  });
}

export async function measureRingPerf(opts: RingPerfOptions): Promise<RingPerfRun[]> {
  const runs: RingPerfRun[] = [];
  const pageSize = 4096;
  for (const capacity of opts.capacities) {
    const obj = native.BpfObject.openFile(opts.object);
    try {
      const pid = Buffer.alloc(4);
      pid.writeUInt32LE(process.pid);
      obj.setGlobal('target_ppid', pid);
      obj.map('rp_ring').setMaxEntries(capacity);
      for (const p of obj.programs()) p.autoload = true;
      obj.load();
      // Warm-up, not recorded (the first run of a process pays for JIT and
      // page faults); it also sets the paced rate.
      const warm = (t: Transport): Promise<RingPerfRun> => runOne(obj, t, capacity, -1, 0, pageSize, { ...opts, callsPerGenerator: Math.ceil(opts.callsPerGenerator / 10) });
      const rate = pacedRate([await warm('ring'), await warm('perf')]);
      const configs = TRANSPORTS.flatMap((t) => [0, rate].map((r) => ({ t, rate: r })));
      for (let r = 0; r < opts.rounds; r++) {
        for (const c of shuffle(configs, opts.rand)) runs.push(await runOne(obj, c.t, capacity, r, c.rate, pageSize, opts));
        opts.progress(`ring vs perf, ${capacity / 1024} KiB per CPU: round ${r + 1}/${opts.rounds}`);
      }
    } finally {
      obj.close();
    }
  }
  return runs;
}

/** Per generator: half the slower transport's full-speed rate, in thousands (at least 1000/s). */
export function pacedRate(warmup: readonly RingPerfRun[]): number {
  const slowest = Math.min(...warmup.map((r) => r.calls / r.generators / r.producerSeconds));
  return Math.max(1000, Math.floor(slowest / 2000) * 1000);
}

async function runOne(obj: BpfObject, transport: Transport, capacity: number, round: number, rate: number, pageSize: number, opts: RingPerfOptions): Promise<RingPerfRun> {
  const calls = rate > 0 ? Math.ceil(opts.callsPerGenerator * PACED_CALLS) : opts.callsPerGenerator;
  const args = rate > 0 ? [String(calls), String(rate)] : [String(calls)];
  const counts = obj.map('rp_counts');
  const key = Buffer.alloc(4);
  key.writeUInt32LE(transport === 'ring' ? 0 : 1);
  const refusedNow = (): number => sumPerCpu(counts.lookup(key)!, counts.valueSize, 2)[1]!;
  const refused0 = refusedNow();
  let received = 0;
  let lastBatchAt = 0;
  const onBatch: OnBatch = (_batch, count) => {
    received += count;
    lastBatchAt = performance.now();
  };
  const perf = transport === 'perf' ? new native.PerfBuffer(obj.map('rp_perf'), { pageCount: capacity / pageSize }, onBatch) : null;
  const reader = perf ?? new native.RingBuffer([obj.map('rp_ring')], {}, onBatch);
  const link = obj.program(transport === 'ring' ? 'rp_ring_enter' : 'rp_perf_enter').attach();
  try {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await Promise.all(Array.from({ length: opts.generators }, () => runChild(opts.getppidloop, args)));
    const producerSeconds = (performance.now() - t0) / 1000;
    link.close();
    // Drained once nothing arrives for 200 ms; then what the loop has not read yet.
    for (let last = -1; received !== last; ) {
      last = received;
      await sleep(200);
    }
    reader.consume();
    const cpu = process.cpuUsage(cpu0);
    const seconds = (Math.max(lastBatchAt, t0) - t0) / 1000;
    const buffers = perf ? perf.stats.buffers : 1;
    return {
      transport,
      rate,
      round,
      capacityBytes: capacity,
      buffers,
      memoryBytes: bufferMemory(transport, capacity, buffers, pageSize),
      kernelBytes: transport === 'ring' ? (opts.ringMemlock?.(obj.map('rp_ring').id()) ?? null) : null,
      generators: opts.generators,
      calls: opts.generators * calls,
      seconds,
      producerSeconds,
      received,
      refused: refusedNow() - refused0,
      lostReported: perf ? perf.stats.lost : null,
      userCpuUs: cpu.user,
      sysCpuUs: cpu.system,
    };
  } finally {
    link.close();
    reader.close();
  }
}

const mib = (b: number): string => (b / 1048576).toFixed(b < 1048576 ? 2 : 1);

function loadLabel(r: RingPerfRun): string {
  const who = `${r.generators} generator${r.generators === 1 ? '' : 's'}`;
  return r.rate > 0 ? `paced, ${r.rate}/s × ${who}` : `full speed, ${who}`;
}

/** The (capacity, rate) pairs of the runs: capacities ascending, full speed first. */
export function groups(runs: readonly RingPerfRun[]): Array<{ capacity: number; rate: number }> {
  const seen = new Map<string, { capacity: number; rate: number }>();
  for (const r of runs) seen.set(`${r.capacityBytes}/${r.rate}`, { capacity: r.capacityBytes, rate: r.rate });
  return [...seen.values()].sort((a, b) => a.capacity - b.capacity || a.rate - b.rate);
}

/** One row per transport and capacity: medians over rounds, sums of counts. */
export function ringPerfTable(runs: readonly RingPerfRun[]): Table {
  const rows: Table['rows'] = [];
  for (const { capacity, rate } of groups(runs)) {
    for (const t of TRANSPORTS) {
      const mine = runs.filter((r) => r.capacityBytes === capacity && r.rate === rate && r.transport === t);
      if (mine.length === 0) continue;
      const calls = mine.reduce((a, r) => a + r.calls, 0);
      const received = mine.reduce((a, r) => a + r.received, 0);
      const refused = mine.reduce((a, r) => a + r.refused, 0);
      const reported = t === 'perf' ? mine.reduce((a, r) => a + (r.lostReported ?? 0), 0) : null;
      const kernel = mine.map((r) => r.kernelBytes).find((b) => b !== null) ?? null;
      const perRecord = mine.filter((r) => r.received > 0).map((r) => (r.userCpuUs + r.sysCpuUs) / r.received);
      rows.push([
        t === 'ring' ? 'BPF ring buffer (shared)' : 'perf buffer (per CPU)',
        `${mib(capacity)} MiB`,
        loadLabel(mine[0]!),
        mine[0]!.buffers,
        `${mib(mine[0]!.memoryBytes)} MiB${kernel === null ? '' : ` (kernel: ${mib(kernel)})`}`,
        mine.length,
        calls,
        median(mine.map((r) => r.calls / r.producerSeconds)).toFixed(0),
        median(mine.map((r) => (r.seconds > 0 ? r.received / r.seconds : 0))).toFixed(0),
        received,
        refused,
        calls > 0 ? ((100 * refused) / calls).toFixed(2) : 'n/a',
        reported === null ? 'n/a (none)' : reported,
        median(mine.map((r) => (r.userCpuUs + r.sysCpuUs) / 1000)).toFixed(0),
        perRecord.length > 0 ? median(perRecord).toFixed(2) : 'n/a',
      ]);
    }
  }
  return {
    columns: [
      'transport',
      'capacity per CPU',
      'load',
      'buffers',
      'buffer memory',
      'rounds',
      'records offered',
      'offered/s (median)',
      'records/s received (median)',
      'received',
      'refused (BPF count)',
      'refused %',
      'lost callback count',
      'reader CPU ms (median)',
      'reader CPU µs/record (median)',
    ],
    rows,
  };
}

/** What the table says in a sentence per capacity, for the notes. */
export function ringPerfSummary(runs: readonly RingPerfRun[]): string[] {
  const out: string[] = [];
  for (const { capacity, rate } of groups(runs)) {
    const of = (t: Transport): RingPerfRun[] => runs.filter((r) => r.capacityBytes === capacity && r.rate === rate && r.transport === t);
    const ring = of('ring');
    const perf = of('perf');
    if (ring.length === 0 || perf.length === 0) continue;
    const speed = (rs: RingPerfRun[]): number => median(rs.map((r) => (r.seconds > 0 ? r.received / r.seconds : 0)));
    const loss = (rs: RingPerfRun[]): number => rs.reduce((a, r) => a + r.refused, 0) / Math.max(1, rs.reduce((a, r) => a + r.calls, 0));
    out.push(
      `${mib(capacity)} MiB per CPU, ${loadLabel(ring[0]!)}: the perf buffer takes ${(perf[0]!.memoryBytes / ring[0]!.memoryBytes).toFixed(1)}× the ring's memory ` +
        `(${mib(perf[0]!.memoryBytes)} against ${mib(ring[0]!.memoryBytes)} MiB over ${perf[0]!.buffers} CPUs), delivers ${(speed(perf) / speed(ring)).toFixed(2)}× its records/s ` +
        `and refuses ${(100 * loss(perf)).toFixed(2)}% of records against the ring's ${(100 * loss(ring)).toFixed(2)}%.`,
    );
  }
  return out;
}

// From a session's samples to one result (table, chart, notes) per benchmark.
import type { BenchResult, Table } from './report.js';
import { RECORD_BYTES, ringPerfSummary, ringPerfTable } from './ringperf.js';
import type { ProgCost, Sample, SessionData } from './session.js';
import { formatOverhead, median, pairedRatioCI, quantile, unpairedRatioCI, type Interval } from './stats.js';

export interface ConfigRow {
  config: string;
  label: string;
  medianNs: number;
  rounds: number;
  ratio: Interval;
  paired: boolean;
}

/**
 * Every configuration of a family (exec: / open:) against family:nothing.
 * Agent-less configurations: median of per-round ratios to the baseline of
 * the same round. Agent configurations: ratio of medians against the
 * baseline rounds of the phases just before and after.
 */
export function compare(samples: readonly Sample[], family: string, labels: Record<string, string>): ConfigRow[] {
  const base = `${family}:nothing`;
  const key = (s: Sample): string => `${s.phase}/${s.round}`;
  const baseBy = new Map(samples.filter((s) => s.config === base).map((s) => [key(s), s.ns]));
  const rows: ConfigRow[] = [];
  for (const [config, label] of Object.entries(labels)) {
    const mine = samples.filter((s) => s.config === config);
    if (mine.length === 0) continue;
    const values = mine.map((s) => s.ns);
    if (mine.every((s) => s.phaseKind === 'off')) {
      const a: number[] = [];
      const b: number[] = [];
      for (const s of mine) {
        const bv = baseBy.get(key(s));
        if (bv !== undefined) {
          a.push(s.ns);
          b.push(bv);
        }
      }
      rows.push({ config, label, medianNs: median(values), rounds: mine.length, ratio: pairedRatioCI(a, b), paired: true });
    } else {
      const phases = new Set(mine.map((s) => s.phase));
      const around = samples.filter((s) => s.config === base && [...phases].some((p) => s.phase === p - 1 || s.phase === p + 1)).map((s) => s.ns);
      rows.push({ config, label, medianNs: median(values), rounds: mine.length, ratio: unpairedRatioCI(values, around), paired: false });
    }
  }
  return rows;
}

function rowsTable(rows: ConfigRow[], unit: string): Table {
  return {
    columns: ['configuration', `median per ${unit} (µs)`, 'rounds', 'ratio to baseline', 'overhead [95% CI]', 'design'],
    rows: rows.map((r) => [r.label, (r.medianNs / 1000).toFixed(1), r.rounds, r.ratio.estimate.toFixed(3), formatOverhead(r.ratio), r.paired ? 'paired per round' : 'vs. neighbouring baseline phases']),
  };
}

function ratioChart(title: string, rows: ConfigRow[]): BenchResult['chart'] {
  return {
    title,
    unit: 'ratio to the baseline (median, 95% CI)',
    bars: rows.map((r) => ({ label: r.label, value: r.ratio.estimate, lo: r.ratio.lo, hi: r.ratio.hi })),
    reference: { value: 1, label: 'baseline' },
  };
}

/** Hooks an exec of a static binary goes through (its fork, its exec, its mappings, its exit). */
const EXEC_PATH_HOOKS = ['sched_process_fork', 'bprm_check_security', 'bprm_committed_creds', 'mmap_file', 'file_mprotect', 'sched_process_exit'];

/**
 * krsi's BPF program time per exec, from the kernel's BPF stats (no drift:
 * the kernel times each run): every run of a program on an exec-path hook
 * during the stats workload, divided by the execs in it (exec_check's runs).
 * Also what empty programs on the same hooks took, per exec.
 */
export function execProgramTime(progs: readonly ProgCost[]): { krsiNs: number; emptyNs: number; execs: number } | null {
  const execs = progs.find((p) => p.name === 'exec_check')?.runCnt ?? 0;
  if (execs === 0) return null;
  const onPath = progs.filter((p) => EXEC_PATH_HOOKS.some((h) => p.section.endsWith(`/${h}`)) && p.runCnt > 0);
  const krsiNs = onPath.reduce((a, p) => a + p.runCnt * p.avgNs, 0) / execs;
  // One empty program per hook, however many krsi programs share it.
  const empties = new Map(onPath.filter((p) => p.emptyName !== null && p.emptyRunCnt > 0).map((p) => [p.emptyName, p.emptyRunCnt * p.emptyAvgNs]));
  const emptyNs = [...empties.values()].reduce((a, n) => a + n, 0) / execs;
  return { krsiNs, emptyNs, execs };
}

/** Medians of a configuration's rounds, phase by phase. */
function phaseMedians(samples: readonly Sample[], config: string): number[] {
  const by = new Map<number, number[]>();
  for (const s of samples) if (s.config === config) by.set(s.phase, [...(by.get(s.phase) ?? []), s.ns]);
  return [...by.entries()].sort((a, b) => a[0] - b[0]).map(([, v]) => median(v));
}

export function execResult(d: SessionData, execN: number): BenchResult | null {
  const rows = compare(d.samples, 'exec', {
    'exec:nothing': 'nothing (audit: never,task)',
    'exec:audit-norules': 'auditd, no rules',
    'exec:audit-execve': 'auditd, execve rule',
    'exec:krsi-ld': 'krsi recording LD_PRELOAD',
    'exec:krsi-default': 'krsi default policy + 1k deny list',
  });
  if (rows.length === 0) return null;
  const audit = rows.find((r) => r.config === 'exec:audit-execve');
  const krsi = rows.find((r) => r.config === 'exec:krsi-default');
  const notes = [
    `Static no-op binary on tmpfs (/run, outside the scratch directories the default policy audits), fork+execve+wait ${execN} times per round (build/bench/execloop); the value per round is the mean per exec.`,
    'Seed (LSS-NA 2019, no-op binary ×100): 518 µs without audit, 522 µs audit without rules, 663 µs (+28%) audit execve rule, 543 µs (+4.8%) KRSI recording LD_PRELOAD.',
    'Agent-less configurations are interleaved in a shuffled order in every round; the krsi configurations need an agent start (~20 s under TCG) and so run in their own phases, which alternate with baseline phases (--repeats); they are compared with the baseline rounds of the phases just before and after each of theirs.',
  ];
  const base = phaseMedians(d.samples, 'exec:nothing');
  if (base.length > 1) {
    const lo = Math.min(...base);
    const hi = Math.max(...base);
    notes.push(
      `Drift: the baseline's median per exec went from phase to phase between ${(lo / 1000).toFixed(0)} and ${(hi / 1000).toFixed(0)} µs (${(((hi - lo) / lo) * 100).toFixed(0)}%), while the open loop's stayed within a few percent: under TCG an exec's cost wanders with the emulator's state. The agent-less configurations are paired round by round and do not suffer from it; the krsi ones, compared phase with phase, do, and their intervals are that wide.`,
    );
  }
  const pt = execProgramTime(d.progs);
  const baseMedian = rows.find((r) => r.config === 'exec:nothing')?.medianNs;
  if (pt && baseMedian) {
    notes.push(
      `Without drift, from the kernel's BPF stats of the same boot (progs result): krsi's programs on the exec path (fork, bprm_check_security, bprm_committed_creds, mmap_file, file_mprotect, exit) ran ${(pt.krsiNs / 1000).toFixed(1)} µs per exec under the default policy + 1k list, ${((pt.krsiNs / baseMedian) * 100).toFixed(1)}% of a baseline exec (${(baseMedian / 1000).toFixed(0)} µs); empty programs on the same hooks ran ${(pt.emptyNs / 1000).toFixed(1)} µs. The trampolines that call them are not in these figures.`,
    );
  }
  if (audit && krsi) {
    const a = audit.ratio.estimate - 1;
    const k = krsi.ratio.estimate - 1;
    notes.push(`Targets: krsi default ≤ 1% (measured ${(k * 100).toFixed(1)}%), and ≤ a tenth of auditd's execve-rule overhead (${(a * 100).toFixed(1)}%): ${k <= 0.01 && k <= a / 10 ? 'met' : 'missed'}.`);
  }
  return { name: 'exec', title: 'krsi bench exec: time per exec of a static no-op binary', table: rowsTable(rows, 'exec'), chart: ratioChart('exec: ratio to no audit, no krsi', rows), notes };
}

export function openResult(d: SessionData, openN: number): BenchResult | null {
  const rows = compare(d.samples, 'open', {
    'open:nothing': 'nothing',
    'open:krsi-enforce': 'krsi enforce-only file rule (+ default policy)',
    'open:krsi-audit': 'krsi auditing every open',
  });
  if (rows.length === 0) return null;
  const e = rows.find((r) => r.config === 'open:krsi-enforce');
  const notes = [`open(O_RDONLY)+close of a tmpfs file, ${openN} times per round (build/bench/openloop).`];
  if (e) notes.push(`Target: enforce-only ≤ 3% (measured ${((e.ratio.estimate - 1) * 100).toFixed(1)}%): ${e.ratio.estimate <= 1.03 ? 'met' : 'missed'}.`);
  return { name: 'open', title: 'krsi bench open: open/close loop', table: rowsTable(rows, 'open'), chart: ratioChart('open: ratio to no krsi', rows), notes };
}

export function progsResult(d: SessionData): BenchResult | null {
  if (d.progs.length === 0) return null;
  const rows = d.progs.map((p) => ({ ...p, ratio: p.avgNs / p.emptyAvgNs }));
  const over = rows.filter((r) => r.ratio > 3);
  return {
    name: 'progs',
    title: 'krsi bench progs: per-program cost (kernel BPF stats)',
    table: {
      columns: ['program', 'hook', 'runs', 'ns/run', 'empty program ns/run', 'ratio to empty'],
      rows: rows.map((r) => [r.name, r.section, r.runCnt, Number.isFinite(r.avgNs) ? r.avgNs.toFixed(0) : 'not run', Number.isFinite(r.emptyAvgNs) ? r.emptyAvgNs.toFixed(0) : 'n/a', Number.isFinite(r.ratio) ? r.ratio.toFixed(2) : 'n/a']),
    },
    chart: {
      title: 'per-program cost: ratio to an empty program on the same hook',
      unit: 'ratio (run_time_ns/run_cnt)',
      bars: rows.filter((r) => Number.isFinite(r.ratio)).map((r) => ({ label: `${r.name}`, value: r.ratio })),
      reference: { value: 3, label: 'target ≤ 3×' },
    },
    notes: [
      'kernel.bpf_stats_enabled=1 during one workload (exec loop, open loop, a few renames, unlinks and signals) with the agent running the default policy + the bench policy, and bench/bpf/empty.bpf.c attached on every hook krsi uses. run_time_ns counts the program body only, not the trampoline.',
      `Programs over 3×: ${over.length === 0 ? 'none' : over.map((r) => `${r.name} (${r.ratio.toFixed(1)}×)`).join(', ')}.`,
    ],
  };
}

export function pipelineResult(d: SessionData): BenchResult | null {
  if (d.pipeline.length === 0 && d.ringPerf.length === 0) return null;
  const ringBytes = d.rings.reduce((a, m) => a + m.bytesMemlock, 0);
  const ringCap = d.rings.reduce((a, m) => a + m.maxEntries, 0);
  return {
    name: 'pipeline',
    title: 'krsi bench pipeline: event storms through the ring buffers to the TypeScript side',
    table: {
      columns: ['storm', 'operations', 'seconds', 'events received', 'events/s', 'attempted', 'received', 'dropped', 'pending', 'gap markers', 'marked by gaps', 'unmarked', 'rate-limited', 'agent CPU %', 'agent RSS (MiB)'],
      rows: d.pipeline.map((p) => [p.storm, p.operations, p.seconds.toFixed(2), p.linesReceived, p.eventsPerSecond.toFixed(0), p.attempted, p.received, p.dropped, p.pending, p.gaps, p.missing, p.dropped - p.missing, p.rateLimited, p.agentCpuPercent.toFixed(0), (p.rssBytes / 1048576).toFixed(0)]),
    },
    chart: { title: 'events per second delivered by the agent', unit: 'events/s', bars: d.pipeline.map((p) => ({ label: p.storm, value: p.eventsPerSecond })) },
    notes: [
      `Ring memory: ${d.rings.map((m) => `${m.name} ${(m.maxEntries / 1048576).toFixed(1)} MiB (memlock ${(m.bytesMemlock / 1048576).toFixed(1)} MiB)`).join(', ')}; total ${(ringBytes / 1048576).toFixed(1)} MiB for ${(ringCap / 1048576).toFixed(1)} MiB of capacity, shared by all CPUs.`,
      `Perf buffer at equal capacity per CPU: a per-CPU perf event array needs that capacity on every CPU: ${(ringCap / 1048576).toFixed(1)} MiB × ${d.possibleCpus} possible CPUs = ${((ringCap * d.possibleCpus) / 1048576).toFixed(1)} MiB here, ${((ringCap * 64) / 1048576).toFixed(0)} MiB on a 64-CPU server. Measured below (ring buffer against perf buffer).`,
      'The agent\'s own accounting, read from `krsi status` before and after: "attempted" is what the programs tried to write (per-CPU sequence numbers, lost records included), "dropped" is the kernel\'s count of records the ring had no room for (the agent reads at most --events-per-second records, so a storm fills it), "pending" is attempted - received - dropped (still in the ring after the drain: 0 expected), "marked by gaps" is what the gap events in the stream stand for, and "unmarked" is dropped - marked: a gap event goes where the sequence of a CPU jumps, and the agent marks the losses no later record showed (the tail of a storm) itself before every status, so 0 is expected. Unaccounted loss would be a record missing from "attempted": every storm operation is there (attempted >= operations). "events received" counts the JSON lines the agent wrote to stdout during the storm and its drain.',
    ],
    sections: d.ringPerf.length === 0 ? [] : [ringPerfSection(d)],
  };
}

function ringPerfSection(d: SessionData): NonNullable<BenchResult['sections']>[number] {
  return {
    heading: 'BPF ring buffer against per-CPU perf buffer, same capacity per CPU (measured)',
    table: ringPerfTable(d.ringPerf),
    notes: [
      `No agent: the bench process loads bench/bpf/ringperf.bpf.o and reads through the binding (native.RingBuffer, native.PerfBuffer over libbpf's perf_buffer), counting records per batch without decoding them. Every getppid() of build/bench/getppidloop is one ${RECORD_BYTES}-byte record (tp_btf/sys_enter), sent from the same per-CPU scratch value by bpf_ringbuf_output() or bpf_perf_event_output(); the two differ only in the transport. Each capacity runs the four configurations (2 transports × 2 loads) in a shuffled order in every round, after one unrecorded warm-up run per transport.`,
      'Capacity X per CPU: the ring is one X-byte ring shared by all CPUs; the perf buffer has X on each online CPU. Buffer memory is computed from the page counts: ring X + 3 metadata pages (the kernel\'s bytes_memlock in brackets where bpftool reports it), perf (X + 1 header page) × CPUs, what perf_buffer mmaps; perf pages are charged to the reader\'s locked memory, not to the map.',
      '"full speed": the generators call as fast as they can, so what the transport costs the calling task slows the load itself (libbpf 1.1\'s perf_buffer__new asks for a wakeup on every record). "paced": both transports get the same offered rate, half the slower one\'s full-speed rate in the warm-up.',
      '"refused" is counted by the BPF program (the output helper failed: ring or CPU buffer full), for both transports; the ring buffer has no count of its own. "lost callback count" is what the kernel reported to perf_buffer\'s lost callback; it can trail "refused" because a CPU reports its losses with its next record that fits. Reader CPU is process.cpuUsage() (user + system) of the bench process from storm start to drained, so it includes spawning the generators.',
      ...ringPerfSummary(d.ringPerf),
    ],
  };
}

export function scaleResult(d: SessionData): BenchResult | null {
  if (d.scale.length === 0) return null;
  const labels: Record<string, string> = {};
  const fams = ['exec', 'open'];
  const table: Table = { columns: ['deny-list entries', 'list update (s)', 'exec overhead [95% CI]', 'open overhead [95% CI]'], rows: [] };
  const bars: BenchResult['chart']['bars'] = [];
  const steps = [{ entries: 1000, updateSeconds: NaN }, ...d.scale].sort((a, b) => a.entries - b.entries);
  for (const s of steps) {
    const cells: string[] = [];
    for (const f of fams) {
      const config = s.entries === 1000 ? `${f}:krsi-${f === 'exec' ? 'default' : 'enforce'}` : `${f}:krsi-${f === 'exec' ? 'default' : 'enforce'}@${s.entries}`;
      labels[config] = config;
      const row = compare(d.samples, f, { [config]: config })[0];
      cells.push(row ? formatOverhead(row.ratio) : 'n/a');
      if (row) bars.push({ label: `${f}, ${s.entries} entries`, value: row.ratio.estimate, lo: row.ratio.lo, hi: row.ratio.hi });
    }
    table.rows.push([s.entries, Number.isFinite(s.updateSeconds) ? s.updateSeconds.toFixed(2) : '(policy load)', ...cells]);
  }
  return {
    name: 'scale',
    title: 'krsi bench scale: overhead against the size of an exec deny list',
    table,
    chart: { title: 'overhead by deny-list size', unit: 'ratio to no krsi', bars, reference: { value: 1, label: 'baseline' } },
    notes: ['The list (type path) is changed at run time over the control socket (krsi list add/remove); the default policy and the bench policy stay in force. 1k entries is the exec/open benchmarks\' krsi configuration.'],
  };
}

export function latencyResult(d: SessionData): BenchResult | null {
  const r = d.reactions;
  if (r.externalNs.length === 0 && r.count === 0) return null;
  const ms = r.externalNs.map((n) => n / 1e6);
  return {
    name: 'latency',
    title: 'krsi bench latency: reaction, signal to mitigation in force',
    table: {
      columns: ['measure', 'samples', 'p50 (ms)', 'p99 (ms)', 'max (ms)'],
      rows: [
        ['outside: first exec to first denied exec', ms.length, quantile(ms, 0.5).toFixed(2), quantile(ms, 0.99).toFixed(2), Math.max(...ms).toFixed(2)],
        ["agent's own: event timestamp to list entry in force", r.count, r.agentP50Us === null ? 'n/a' : (r.agentP50Us / 1000).toFixed(2), r.agentP99Us === null ? 'n/a' : (r.agentP99Us / 1000).toFixed(2), ''],
      ],
    },
    chart: {
      title: 'signal to mitigation (ms)',
      unit: 'ms',
      bars: [
        { label: 'outside p50', value: quantile(ms, 0.5) },
        { label: 'outside p99', value: quantile(ms, 0.99) },
        ...(r.agentP50Us === null ? [] : [{ label: 'agent p50', value: r.agentP50Us / 1000 }]),
        ...(r.agentP99Us === null ? [] : [{ label: 'agent p99', value: r.agentP99Us / 1000 }]),
      ],
    },
    notes: [
      'A rule audits execs from a scratch directory (the signal); a reaction puts the binary path in a list that a deny rule enforces. build/bench/reactwait runs a fresh copy of the no-op binary once, then re-runs it until exec fails with EPERM.',
      `Failures (no mitigation within 10 s): ${r.failures}.`,
    ],
  };
}

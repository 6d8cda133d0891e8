// One benchmark session in one boot. Starting a krsi agent takes ~30 s under
// TCG, so agent configurations cannot be switched round by round like audit's:
// the session runs in phases, OFF LD OFF DEF OFF. In each OFF phase every
// round runs the agent-less configurations (nothing, audit without rules,
// audit with an execve rule, the open loop) in a shuffled order; the LD
// phase (krsi recording LD_PRELOAD) and the DEF phase (default policy and a
// 1k deny list) run their rounds against the OFF phases on either side.
//
// The pipeline benchmark ends with an agent-less phase of its own: the BPF
// ring buffer against a perf buffer through the binding (ringperf.ts).
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { native, type BpfLink, type BpfObject } from '../bpf/native.js';
import {
  Audit,
  BIN,
  bpftoolMaps,
  bpftoolProgs,
  execLoop,
  openLoop,
  procUsage,
  setBpfStats,
  sh,
  shAsync,
  stageBinaries,
  startAgent,
  type Agent,
  type AuditMode,
  type MapInfo,
  type ProgInfo,
} from './guest.js';
import { measureRingPerf, type RingPerfRun } from './ringperf.js';
import { prng, shuffle } from './stats.js';

/** Quiet time before a phase's rounds, each of which starts with an unrecorded warm-up run. */
const SETTLE_MS = 3000;

export const BENCHMARKS = ['exec', 'open', 'progs', 'pipeline', 'scale', 'latency'] as const;
export type BenchName = (typeof BENCHMARKS)[number];

export interface SessionOptions {
  benchmarks: readonly BenchName[];
  rounds: number;
  /** Agent phases of each krsi configuration, each between two baseline phases. */
  repeats: number;
  execsPerRound: number;
  opensPerRound: number;
  reactions: number;
  seed: number;
  progress: (msg: string) => void;
}

export interface Sample {
  phase: number;
  phaseKind: 'off' | 'ld' | 'def';
  config: string;
  round: number;
  ns: number;
}

export interface ProgCost {
  name: string;
  section: string;
  runCnt: number;
  avgNs: number;
  emptyName: string | null;
  emptyRunCnt: number;
  emptyAvgNs: number;
}

export interface PipelineFigures {
  storm: string;
  operations: number;
  seconds: number;
  linesReceived: number;
  eventsPerSecond: number;
  attempted: number;
  received: number;
  dropped: number;
  pending: number;
  gaps: number;
  missing: number;
  rateLimited: number;
  agentCpuSeconds: number;
  agentCpuPercent: number;
  rssBytes: number;
}

export interface SessionData {
  samples: Sample[];
  agentStartSeconds: number[];
  auditLost: number | null;
  progs: ProgCost[];
  pipeline: PipelineFigures[];
  rings: MapInfo[];
  ringPerf: RingPerfRun[];
  possibleCpus: number;
  scale: Array<{ entries: number; updateSeconds: number }>;
  reactions: { externalNs: number[]; agentP50Us: number | null; agentP99Us: number | null; count: number; failures: number };
  errors: string[];
}

const DENY_PREFIX = '/nonexistent/krsi-bench/deny/';

export function denyEntries(from: number, to: number): string[] {
  const out: string[] = [];
  for (let i = from; i < to; i++) out.push(`${DENY_PREFIX}${i}`);
  return out;
}

/** The DEF configuration's own policy, next to policies/default.yaml. */
export function benchPolicy(listEntries: number, trigDir: string, secret: string): unknown {
  return {
    apiVersion: 'krsi.dev/v1',
    kind: 'Policy',
    metadata: { name: 'krsi-bench', description: 'krsi bench: a deny list, an enforce-only file rule, a reaction' },
    spec: {
      lists: [
        { name: 'bench-deny', type: 'path', entries: denyEntries(0, listEntries) },
        { name: 'bench-quarantine', type: 'path', entries: [] },
      ],
      rules: [
        { name: 'deny-listed', hook: 'exec', match: { binary: { list: ['bench-deny'] } }, action: 'deny' },
        { name: 'deny-quarantined', hook: 'exec', match: { binary: { list: ['bench-quarantine'] } }, action: 'deny' },
        { name: 'deny-secret', hook: 'file_open', match: { file: { path: [secret] } }, action: 'deny' },
        { name: 'signal', hook: 'exec', match: { binary: { prefix: [`${trigDir}/`] } }, action: 'audit' },
      ],
      reactions: [{ name: 'quarantine', on: { rule: 'signal', decision: 'allowed' }, do: [{ add: { list: 'bench-quarantine', from: 'binary.path' } }] }],
    },
  };
}

const LD_POLICY = {
  apiVersion: 'krsi.dev/v1',
  kind: 'Policy',
  metadata: { name: 'krsi-bench-ld', description: 'the seed case: record LD_PRELOAD' },
  spec: { rules: [{ name: 'loader-injection', hook: 'exec', match: { env: ['LD_PRELOAD'] }, action: 'audit' }] },
};

function auditAll(hook: 'exec' | 'file_open'): unknown {
  return {
    apiVersion: 'krsi.dev/v1',
    kind: 'Policy',
    metadata: { name: `krsi-bench-audit-${hook.replace('_', '-')}`, description: `audit every ${hook}` },
    spec: { rules: [{ name: `audit-every-${hook.replace('_', '-')}`, hook, action: 'audit' }] },
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Per CPU: a small buffer that a storm overruns, and the agent's events ring (bpf/lib/maps.h). */
const RING_PERF_CAPACITIES = [256 * 1024, 4 * 1024 * 1024];

/** The kernel's bytes_memlock of a map (bpftool), or null where bpftool cannot tell. */
function ringMemlock(mapId: number): number | null {
  try {
    return bpftoolMaps().find((m) => m.id === mapId)?.bytesMemlock ?? null;
  } catch {
    return null;
  }
}

export async function runSession(opts: SessionOptions): Promise<SessionData> {
  const want = (b: BenchName): boolean => opts.benchmarks.includes(b);
  const rand = prng(opts.seed);
  const { noop, dir } = stageBinaries();
  const openTarget = join(dir, 'file');
  writeFileSync(openTarget, 'x');
  const trigDir = join(dir, 'trig');
  mkdirSync(trigDir);
  const secret = join(dir, 'secret');
  const data: SessionData = {
    samples: [],
    agentStartSeconds: [],
    auditLost: null,
    progs: [],
    pipeline: [],
    rings: [],
    ringPerf: [],
    possibleCpus: native.numPossibleCpus(),
    scale: [],
    reactions: { externalNs: [], agentP50Us: null, agentP99Us: null, count: 0, failures: 0 },
    errors: [],
  };
  const audit = Audit.available() ? new Audit() : null;
  if (audit === null) data.errors.push('auditctl is missing: the audit configurations were skipped (install auditd)');
  audit?.start();
  let phase = 0;
  const record = (phaseKind: Sample['phaseKind'], config: string, round: number, ns: number): void => {
    data.samples.push({ phase, phaseKind, config, round, ns });
  };
  const execN = opts.execsPerRound;
  const openN = opts.opensPerRound;

  const offPhase = async (): Promise<void> => {
    const configs: Array<{ name: string; mode: AuditMode; run: () => Promise<number> }> = [];
    if (want('exec') || want('scale')) {
      configs.push({ name: 'exec:nothing', mode: 'off', run: () => execLoop(execN, noop) });
      if (audit && want('exec')) {
        configs.push({ name: 'exec:audit-norules', mode: 'norules', run: () => execLoop(execN, noop) });
        configs.push({ name: 'exec:audit-execve', mode: 'execve', run: () => execLoop(execN, noop) });
      }
    }
    if (want('open') || want('scale')) configs.push({ name: 'open:nothing', mode: 'off', run: () => openLoop(openN, openTarget) });
    // After an agent's stop the kernel still frees its programs and maps.
    await sleep(SETTLE_MS);
    for (const c of configs) {
      audit?.set(c.mode);
      await c.run();
    }
    for (let r = 0; r < opts.rounds; r++) {
      for (const c of shuffle(configs, rand)) {
        audit?.set(c.mode);
        record('off', c.name, r, await c.run());
      }
      audit?.set('off');
      opts.progress(`phase ${phase} (no agent): round ${r + 1}/${opts.rounds}`);
    }
    phase++;
  };

  const agentPhase = async (kind: 'ld' | 'def', body: (agent: Agent) => Promise<void>): Promise<void> => {
    opts.progress(`phase ${phase}: starting the krsi agent (${kind === 'ld' ? 'LD_PRELOAD recording' : 'default policy + 1k deny list'})`);
    const agent =
      kind === 'ld'
        ? await startAgent([LD_POLICY], ['--env-record', 'LD_PRELOAD', '--no-allowed'])
        : await startAgent([join(BIN.krsi, '../../policies/default.yaml'), benchPolicy(1000, trigDir, secret)], ['--no-allowed']);
    data.agentStartSeconds.push(agent.startSeconds);
    opts.progress(`phase ${phase}: agent ready in ${agent.startSeconds.toFixed(1)} s`);
    // The agent's own start-up work (process snapshot, seeding, JIT) shares
    // the guest's CPU with the loops: let it finish before measuring.
    await sleep(SETTLE_MS);
    try {
      await body(agent);
    } finally {
      await agent.stop();
      phase++;
    }
  };

  const timedRounds = async (kind: 'ld' | 'def', configs: Array<{ name: string; run: () => Promise<number> }>, rounds: number, label: string): Promise<void> => {
    for (const c of configs) await c.run(); // warm-up, not recorded
    for (let r = 0; r < rounds; r++) {
      for (const c of shuffle(configs, rand)) record(kind, c.name, r, await c.run());
      opts.progress(`phase ${phase} (${label}): round ${r + 1}/${rounds}`);
    }
  };

  const configs: Array<{ name: string; run: () => Promise<number> }> = [];
  if (want('exec') || want('scale')) configs.push({ name: 'exec:krsi-default', run: () => execLoop(execN, noop) });
  if (want('open') || want('scale')) configs.push({ name: 'open:krsi-enforce', run: () => openLoop(openN, openTarget) });

  // Agent phases alternate with baseline phases, `repeats` times each, so
  // that a drift of the machine's speed shows as spread, not as overhead.
  await offPhase();
  for (let rep = 0; rep < opts.repeats; rep++) {
    if (want('exec')) {
      await agentPhase('ld', async () => {
        await timedRounds('ld', [{ name: 'exec:krsi-ld', run: () => execLoop(execN, noop) }], opts.rounds, 'krsi LD_PRELOAD');
      });
      await offPhase();
    }
    // The last default-policy phase also hosts every other benchmark (below).
    if (rep < opts.repeats - 1 && configs.length > 0) {
      await agentPhase('def', async () => {
        await timedRounds('def', configs, opts.rounds, 'krsi default + 1k list');
      });
      await offPhase();
    }
  }

  {
    await agentPhase('def', async (agent) => {
      await timedRounds('def', configs, opts.rounds, 'krsi default + 1k list');

      // Before the scale steps: every reaction rewrites the persisted lists,
      // which take seconds each once they hold 100k entries.
      if (want('latency')) {
        for (let i = 0; i < opts.reactions; i++) {
          const trig = join(trigDir, `t${i}`);
          sh('cp', [noop, trig]);
          try {
            data.reactions.externalNs.push(Number((await shAsync(BIN.reactwait, [trig, '10000'])).trim()));
          } catch (err) {
            data.reactions.failures++;
            if (data.reactions.failures === 1) data.errors.push(`latency: ${(err as Error).message}`);
          }
          if ((i + 1) % 10 === 0) opts.progress(`phase ${phase} (reaction latency): ${i + 1}/${opts.reactions}`);
        }
        const st = await agent.status();
        data.reactions.agentP50Us = st.reactions.p50Us;
        data.reactions.agentP99Us = st.reactions.p99Us;
        data.reactions.count = st.reactions.count;
      }

      if (want('scale')) {
        const scaleRounds = Math.max(3, Math.ceil(opts.rounds / 2));
        const steps: Array<{ entries: number; change: () => Promise<unknown> }> = [
          { entries: 10, change: () => agent.control.listRemove('bench-deny', denyEntries(10, 1000)) },
          {
            entries: 100_000,
            change: async () => {
              // The control protocol takes at most 65536 entries per call.
              for (let from = 10; from < 100_000; from += 50_000) await agent.control.listAdd('bench-deny', denyEntries(from, Math.min(100_000, from + 50_000)));
            },
          },
        ];
        for (const s of steps) {
          const t0 = performance.now();
          try {
            await s.change();
          } catch (err) {
            data.errors.push(`scale: list of ${s.entries} entries: ${(err as Error).message}`);
            continue;
          }
          data.scale.push({ entries: s.entries, updateSeconds: (performance.now() - t0) / 1000 });
          await timedRounds(
            'def',
            configs.map((c) => ({ name: `${c.name}@${s.entries}`, run: c.run })),
            scaleRounds,
            `list of ${s.entries} entries`,
          );
        }
      }

      if (want('progs')) {
        opts.progress(`phase ${phase}: per-program cost (BPF stats, empty programs attached)`);
        data.progs = await measureProgs(noop, openTarget, execN, openN, data.errors);
      }

      if (want('pipeline')) {
        data.rings = bpftoolMaps().filter((m) => m.type === 'ringbuf');
        const storms: Array<{ storm: string; policy: unknown; ops: number; run: () => Promise<number> }> = [
          { storm: 'exec storm (audit every exec)', policy: auditAll('exec'), ops: execN * 10, run: () => execLoop(execN * 10, noop) },
          { storm: 'open storm (audit every open)', policy: auditAll('file_open'), ops: openN * 5, run: () => openLoop(openN * 5, openTarget) },
        ];
        for (const s of storms) {
          await agent.control.applyPolicies([{ policy: s.policy as never, source: 'krsi-bench' }]);
          await sleep(500);
          const before = await agent.status();
          const u0 = procUsage(agent.pid);
          const lines0 = agent.lines.total;
          const t0 = performance.now();
          await s.run();
          const seconds = (performance.now() - t0) / 1000;
          // Drain: wait until the agent's stream stops growing.
          let last = -1;
          for (let i = 0; i < 80 && agent.lines.total !== last; i++) {
            last = agent.lines.total;
            await sleep(250);
          }
          const drainSeconds = (performance.now() - t0) / 1000;
          const after = await agent.status();
          const u1 = procUsage(agent.pid);
          const acc = (k: 'attempted' | 'received' | 'dropped' | 'pending' | 'gaps' | 'missing'): number =>
            after.accounting.events[k] + after.accounting.decisions[k] - before.accounting.events[k] - before.accounting.decisions[k];
          const rl = (st: typeof before): number => Object.values(st.counters).reduce((a, c) => a + c.rate_limited, 0);
          const linesReceived = agent.lines.total - lines0;
          data.pipeline.push({
            storm: s.storm,
            operations: s.ops,
            seconds,
            linesReceived,
            eventsPerSecond: linesReceived / drainSeconds,
            attempted: acc('attempted'),
            received: acc('received'),
            dropped: acc('dropped'),
            pending: acc('pending'),
            gaps: acc('gaps'),
            missing: acc('missing'),
            rateLimited: rl(after) - rl(before),
            agentCpuSeconds: u1.cpuSeconds - u0.cpuSeconds,
            agentCpuPercent: (100 * (u1.cpuSeconds - u0.cpuSeconds)) / drainSeconds,
            rssBytes: u1.rssBytes,
          });
          opts.progress(`phase ${phase}: ${s.storm}: ${linesReceived} events in ${drainSeconds.toFixed(1)} s`);
        }
        if (want('open')) {
          await timedRounds('def', [{ name: 'open:krsi-audit', run: () => openLoop(openN, openTarget) }], opts.rounds, 'krsi audit every open');
        }
      } else if (want('open')) {
        await agent.control.applyPolicies([{ policy: auditAll('file_open') as never, source: 'krsi-bench' }]);
        await timedRounds('def', [{ name: 'open:krsi-audit', run: () => openLoop(openN, openTarget) }], opts.rounds, 'krsi audit every open');
      }
    });
    await offPhase();
  }
  if (want('pipeline')) {
    opts.progress(`phase ${phase}: BPF ring buffer against perf buffer (no agent)`);
    try {
      data.ringPerf = await measureRingPerf({
        object: BIN.ringperf,
        getppidloop: BIN.getppidloop,
        rounds: opts.rounds,
        callsPerGenerator: opts.opensPerRound * 10,
        // One CPU is left to the reader.
        generators: Math.max(1, Math.min(4, availableParallelism() - 1)),
        capacities: RING_PERF_CAPACITIES,
        rand,
        progress: (msg) => opts.progress(`phase ${phase}: ${msg}`),
        ringMemlock,
      });
    } catch (err) {
      data.errors.push(`pipeline: ring vs perf buffer: ${(err as Error).message}`);
    }
    phase++;
  }
  if (audit) {
    data.auditLost = audit.lost();
    audit.stop();
  }
  return data;
}

/** krsi's programs (loaded by the agent) against empty programs on the same hooks, same workload. */
async function measureProgs(noop: string, openTarget: string, execN: number, openN: number, errors: string[]): Promise<ProgCost[]> {
  // Which krsi program is on which hook: from the object's ELF sections.
  const sections = new Map<string, string>();
  const krsiObj = native.BpfObject.openFile(BIN.krsiObject);
  for (const p of krsiObj.programs()) sections.set(p.name, p.section);
  krsiObj.close();
  const empty: BpfObject = native.BpfObject.openFile(BIN.empty);
  const links: BpfLink[] = [];
  const emptyBySection = new Map<string, string>();
  for (const p of empty.programs()) {
    p.autoload = true;
    emptyBySection.set(p.section, p.name);
  }
  try {
    empty.load();
    for (const p of empty.programs()) {
      try {
        links.push(p.attach());
      } catch (err) {
        errors.push(`progs: cannot attach the empty ${p.section}: ${(err as Error).message}`);
      }
    }
    setBpfStats(true);
    const snap = (): Map<string, ProgInfo> => new Map(bpftoolProgs().map((p) => [`${p.id}`, p]));
    const before = snap();
    const emptyBefore = new Map(empty.programs().map((p) => [p.name, p.runStats()]));
    await execLoop(execN * 3, noop);
    await openLoop(openN * 2, openTarget);
    await shAsync('sh', ['-c', 'for i in 1 2 3 4 5 6 7 8 9 10; do /bin/true; done; kill -0 $$; touch /tmp/krsi-bench-x; mv /tmp/krsi-bench-x /tmp/krsi-bench-y; rm /tmp/krsi-bench-y']);
    const after = snap();
    const emptyAfter = new Map(empty.programs().map((p) => [p.name, p.runStats()]));
    setBpfStats(false);
    const emptyFull = new Map(empty.programs().map((p) => [p.name, p.id()]));
    const emptyIds = new Set([...emptyFull.values()].map(String));
    const out: ProgCost[] = [];
    for (const [id, a] of after) {
      if (emptyIds.has(id) || !sections.has(a.name)) continue;
      const b = before.get(id);
      const cnt = a.runCnt - (b?.runCnt ?? 0);
      const time = a.runTimeNs - (b?.runTimeNs ?? 0);
      const section = sections.get(a.name)!;
      const emptyName = emptyBySection.get(section) ?? null;
      let eCnt = 0;
      let eTime = 0;
      if (emptyName) {
        eCnt = Number(emptyAfter.get(emptyName)!.runCount - emptyBefore.get(emptyName)!.runCount);
        eTime = Number(emptyAfter.get(emptyName)!.runTimeNs - emptyBefore.get(emptyName)!.runTimeNs);
      }
      out.push({ name: a.name, section, runCnt: cnt, avgNs: cnt > 0 ? time / cnt : NaN, emptyName, emptyRunCnt: eCnt, emptyAvgNs: eCnt > 0 ? eTime / eCnt : NaN });
    }
    return out.sort((x, y) => x.section.localeCompare(y.section));
  } finally {
    for (const l of links) l.close();
    empty.close();
  }
}

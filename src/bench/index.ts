// `krsi bench`: runs a session (src/bench/session.ts) and writes one result
// per benchmark (markdown + SVG) with kernel, date, machine and command.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpus, release } from 'node:os';
import { kernelTag, writeResult, type BenchResult, type RunInfo } from './report.js';
import { runSession, type BenchName, type SessionOptions } from './session.js';
import { execResult, latencyResult, openResult, pipelineResult, progsResult, scaleResult } from './summaries.js';

export { BENCHMARKS, type BenchName } from './session.js';

export interface BenchOptions extends Omit<SessionOptions, 'progress'> {
  out: string;
  command: string;
}

function machine(): string {
  const virt = readFileSync('/proc/cpuinfo', 'utf8').includes('hypervisor') ? ', virtualised' : '';
  const mem = /MemTotal:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'));
  return `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}${virt}, ${mem ? Math.round(Number(mem[1]) / 1024) : '?'} MiB (QEMU TCG guest under krsi vm)`;
}

export async function runBench(opts: BenchOptions, log: (msg: string) => void): Promise<string[]> {
  const t0 = performance.now();
  const progress = (msg: string): void => log(`[${((performance.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${msg}`);
  const data = await runSession({ ...opts, progress });
  const info: RunInfo = { kernel: release(), date: new Date().toISOString(), machine: machine(), command: opts.command };
  const makers: Record<BenchName, () => BenchResult | null> = {
    exec: () => execResult(data, opts.execsPerRound),
    open: () => openResult(data, opts.opensPerRound),
    progs: () => progsResult(data),
    pipeline: () => pipelineResult(data),
    scale: () => scaleResult(data),
    latency: () => latencyResult(data),
  };
  const written: string[] = [];
  // Every sample, so that the tables can be checked or computed again.
  const raw = join(opts.out, `session-${kernelTag(info.kernel)}.json`);
  writeFileSync(raw, JSON.stringify({ info, options: { ...opts, out: undefined }, data }, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 1) + '\n');
  written.push(raw);
  for (const b of opts.benchmarks) {
    const r = makers[b]();
    if (r === null) continue;
    if (data.errors.length > 0) r.notes.push(`Problems during the session: ${data.errors.join('; ')}`);
    r.notes.push(`Session: ${opts.rounds} rounds per phase, ${opts.repeats} phases of each krsi configuration, seed ${opts.seed}, agent start ${data.agentStartSeconds.map((s) => s.toFixed(0)).join(', ')} s, audit lost ${data.auditLost ?? 'n/a'}, ${((performance.now() - t0) / 1000).toFixed(0)} s in all.`);
    written.push(...writeResult(opts.out, r, info));
  }
  for (const e of data.errors) log(`warning: ${e}`);
  return written;
}

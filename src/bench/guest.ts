// What the benchmarks do in the guest: timed loops (build/bench's static C
// helpers, so that node's own cost stays out of the timings), audit switched
// by auditctl, a krsi agent started as `krsi run` and driven over its control
// socket, BPF statistics from bpftool. Root in a BPF LSM kernel (krsi vm).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { connectControl, type ControlClient } from '../control/client.js';
import type { AgentStatus } from '../agent/control-api.js';
import { packageRoot } from '../paths.js';

export const ROOT = packageRoot;
export const BIN = {
  noop: join(ROOT, 'build/bench/noop'),
  execloop: join(ROOT, 'build/bench/execloop'),
  openloop: join(ROOT, 'build/bench/openloop'),
  reactwait: join(ROOT, 'build/bench/reactwait'),
  getppidloop: join(ROOT, 'build/bench/getppidloop'),
  empty: join(ROOT, 'build/bench/empty.bpf.o'),
  ringperf: join(ROOT, 'build/bench/ringperf.bpf.o'),
  krsi: join(ROOT, 'bin/krsi'),
  krsiObject: join(ROOT, 'build/bpf/krsi.bpf.o'),
};

/** Runs a command; throws with its stderr when it fails. */
export function sh(cmd: string, args: string[], env?: NodeJS.ProcessEnv): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: env ?? process.env, maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** The noop binary, copied to tmpfs (as the seed's: no 9p in the measured exec). */
export function stageBinaries(): { noop: string; dir: string } {
  // Not under /tmp: the default policy audits programs and libraries run
  // from scratch directories, and the seed's no-op binary was an ordinary one.
  const dir = mkdtempSync('/run/krsi-bench-');
  const noop = join(dir, 'noop');
  copyFileSync(BIN.noop, noop);
  sh('chmod', ['755', noop]);
  return { noop, dir };
}

/**
 * Runs a command without blocking the event loop: the agent's event stream
 * must keep being read while a loop runs (a blocked reader stalls the agent's
 * stdout, then its ring consumption and its reactions).
 */
export function shAsync(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}: ${err.trim()}`))));
  });
}

/** Mean ns per fork+exec+wait of `program`, over n execs. */
export async function execLoop(n: number, program: string): Promise<number> {
  return Number((await shAsync(BIN.execloop, [String(n), program])).trim());
}

/** Mean ns per open+close of `path`, over n opens. */
export async function openLoop(n: number, path: string): Promise<number> {
  return Number((await shAsync(BIN.openloop, [String(n), path])).trim());
}

// --- audit ---------------------------------------------------------------------

export type AuditMode = 'off' | 'norules' | 'execve';

export class Audit {
  private daemon: ChildProcess | null = null;

  static available(): boolean {
    return spawnSync('auditctl', ['-v'], { encoding: 'utf8' }).status === 0;
  }

  /** auditd in the foreground with its log on tmpfs (/ is read-only in the guest). */
  start(): void {
    const dir = mkdtempSync('/tmp/krsi-audit-');
    writeFileSync(
      join(dir, 'auditd.conf'),
      `log_file = ${join(dir, 'audit.log')}\nlog_format = RAW\nflush = none\nspace_left = 2\nadmin_space_left = 1\n` +
        'space_left_action = ignore\nadmin_space_left_action = ignore\ndisk_full_action = ignore\ndisk_error_action = ignore\n' +
        'max_log_file = 64\nmax_log_file_action = rotate\nnum_logs = 2\n',
      { mode: 0o640 },
    );
    this.daemon = spawn('auditd', ['-n', '-c', dir], { stdio: 'ignore' });
    for (let i = 0; i < 100; i++) {
      const s = spawnSync('auditctl', ['-s'], { encoding: 'utf8' }).stdout;
      if (/^pid [1-9]/m.test(s)) return;
      spawnSync('sleep', ['0.1']);
    }
    throw new Error('auditd did not register with the kernel');
  }

  /**
   * off: no audit context for new tasks (a `never,task` rule: what a kernel
   * without audit does); norules: audit enabled, no rules (every task gets an
   * audit context); execve: plus an execve exit rule (the seed's).
   */
  set(mode: AuditMode): void {
    sh('auditctl', ['-D']);
    if (mode === 'off') {
      sh('auditctl', ['-a', 'never,task']);
      sh('auditctl', ['-e', '0']);
    } else {
      sh('auditctl', ['-e', '1']);
      if (mode === 'execve') sh('auditctl', ['-a', 'always,exit', '-F', 'arch=b64', '-S', 'execve']);
    }
  }

  lost(): number {
    const m = /^lost (\d+)/m.exec(sh('auditctl', ['-s']));
    return m ? Number(m[1]) : NaN;
  }

  stop(): void {
    try {
      this.set('off');
    } catch {
      /* best effort */
    }
    this.daemon?.kill('SIGTERM');
    this.daemon = null;
  }
}

// --- the krsi agent ---------------------------------------------------------------

export interface Agent {
  pid: number;
  control: ControlClient;
  /** Event lines the agent wrote to stdout (what the TypeScript side delivered), by kind. */
  lines: { total: number; byKind: Map<string, number> };
  status(): Promise<AgentStatus>;
  stop(): Promise<void>;
  startSeconds: number;
}

export async function startAgent(policies: unknown[], args: string[]): Promise<Agent> {
  const dir = mkdtempSync('/tmp/krsi-bench-agent-');
  const files = policies.map((p, i) => {
    if (typeof p === 'string') return p;
    const f = join(dir, `policy-${i}.json`);
    writeFileSync(f, JSON.stringify(p));
    return f;
  });
  const socket = join(dir, 'krsi.sock');
  const t0 = performance.now();
  const child = spawn(
    BIN.krsi,
    ['run', '--no-protect', '--no-landlock', '--socket', socket, '--lists', join(dir, 'lists.json'), '--pin-root', `/sys/fs/bpf/krsi-bench-${process.pid}`, ...files.flatMap((f) => ['--policy', f]), ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-8000);
  });
  const lines = { total: 0, byKind: new Map<string, number>() };
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const ready = new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      lines.total++;
      const kind = /"kind":"([a-z_]+)"/.exec(line)?.[1] ?? '?';
      lines.byKind.set(kind, (lines.byKind.get(kind) ?? 0) + 1);
      if (kind === 'agent' && line.includes('"ready"')) resolve();
    });
    void exited.then(() => reject(new Error(`krsi run exited before ready: ${stderr}`)));
  });
  await ready;
  const startSeconds = (performance.now() - t0) / 1000;
  const control = await connectControl(socket);
  return {
    pid: child.pid!,
    control,
    lines,
    startSeconds,
    status: () => control.status(),
    stop: async () => {
      await control.stop({ timeoutMs: 60_000 }).catch(() => child.kill('SIGTERM'));
      control.close();
      await exited;
    },
  };
}

/** The agent's CPU seconds (user+system) and RSS bytes, from /proc. */
export function procUsage(pid: number): { cpuSeconds: number; rssBytes: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(f[11]) + Number(f[12]);
  const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return { cpuSeconds: ticks / 100, rssBytes: rss ? Number(rss[1]) * 1024 : NaN };
}

// --- BPF statistics --------------------------------------------------------------

export interface ProgInfo {
  id: number;
  name: string;
  type: string;
  runTimeNs: number;
  runCnt: number;
}

export function setBpfStats(on: boolean): void {
  writeFileSync('/proc/sys/kernel/bpf_stats_enabled', on ? '1' : '0');
}

export function bpftoolProgs(): ProgInfo[] {
  const list = JSON.parse(sh('bpftool', ['-j', 'prog', 'show'])) as Array<Record<string, unknown>>;
  return list.map((p) => ({
    id: Number(p['id']),
    name: String(p['name'] ?? ''),
    type: String(p['type'] ?? ''),
    runTimeNs: Number(p['run_time_ns'] ?? 0),
    runCnt: Number(p['run_cnt'] ?? 0),
  }));
}

export interface MapInfo {
  id: number;
  name: string;
  type: string;
  bytesMemlock: number;
  maxEntries: number;
}

export function bpftoolMaps(): MapInfo[] {
  const list = JSON.parse(sh('bpftool', ['-j', 'map', 'show'])) as Array<Record<string, unknown>>;
  return list.map((m) => ({
    id: Number(m['id']),
    name: String(m['name'] ?? ''),
    type: String(m['type'] ?? ''),
    bytesMemlock: Number(m['bytes_memlock'] ?? 0),
    maxEntries: Number(m['max_entries'] ?? 0),
  }));
}

export function ensureDir(d: string): void {
  if (!existsSync(d)) mkdirSync(d, { recursive: true });
}

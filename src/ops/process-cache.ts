// The agent's process cache: pid -> parent, comm, executable. Seeded from
// /proc at start and kept by exec events. krsi has no fork or exit events
// (the fork tracepoint only keeps binary classes in task storage, in the
// kernel), so a process the cache does not know is read from /proc when it
// is first needed, and entries whose process is gone are pruned periodically.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export interface CachedProcess {
  pid: number;
  ppid: number;
  comm: string;
  exe?: string;
}

export interface Ancestor {
  pid: number;
  comm: string;
  exe?: string;
}

/** pid, comm and ppid of a /proc/PID/stat line (comm may hold spaces and parentheses). */
export function parseStat(text: string): { pid: number; comm: string; ppid: number } | null {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return null;
  const pid = Number(text.slice(0, open).trim());
  const rest = text.slice(close + 2).split(' ');
  const ppid = Number(rest[1]);
  if (!Number.isInteger(pid) || !Number.isInteger(ppid)) return null;
  return { pid, comm: text.slice(open + 1, close), ppid };
}

export interface ProcSource {
  /** The process as /proc shows it now, or null when it is gone. */
  read(pid: number): CachedProcess | null;
  /** Every pid /proc lists. */
  pids(): number[];
  alive(pid: number): boolean;
}

export function procfs(root = '/proc'): ProcSource {
  return {
    read(pid) {
      try {
        const stat = parseStat(readFileSync(`${root}/${pid}/stat`, 'utf8'));
        if (!stat) return null;
        let exe: string | undefined;
        try {
          exe = readlinkSync(`${root}/${pid}/exe`);
        } catch {
          // kernel threads have none; others may deny it
        }
        return exe === undefined ? { pid, ppid: stat.ppid, comm: stat.comm } : { pid, ppid: stat.ppid, comm: stat.comm, exe };
      } catch {
        return null;
      }
    },
    pids() {
      try {
        return readdirSync(root).filter((n) => /^\d+$/.test(n)).map(Number);
      } catch {
        return [];
      }
    },
    alive(pid) {
      try {
        readFileSync(`${root}/${pid}/stat`);
        return true;
      } catch {
        return false;
      }
    },
  };
}

export const MAX_ANCESTORS = 8;

export class ProcessCache {
  private readonly procs = new Map<number, CachedProcess>();
  /** Lookups answered from the cache, and from /proc. */
  hits = 0;
  misses = 0;

  constructor(
    private readonly source: ProcSource = procfs(),
    private readonly maxEntries = 65536,
  ) {}

  get size(): number {
    return this.procs.size;
  }

  /** Reads every process /proc lists. */
  seed(): number {
    for (const pid of this.source.pids()) {
      const p = this.source.read(pid);
      if (p) this.set(p);
    }
    return this.procs.size;
  }

  /** Executables from the kernel's process snapshot, for processes /proc would not name them for. */
  learnExecutables(snapshot: ReadonlyArray<{ tgid: number; exe: { path: string } | null }>): number {
    let learnt = 0;
    for (const { tgid, exe } of snapshot) {
      const p = this.procs.get(tgid);
      if (p && p.exe === undefined && exe?.path) {
        this.procs.set(tgid, { ...p, exe: exe.path });
        learnt++;
      }
    }
    return learnt;
  }

  set(p: CachedProcess): void {
    if (!this.procs.has(p.pid) && this.procs.size >= this.maxEntries) this.prune();
    if (this.procs.size >= this.maxEntries) return;
    this.procs.set(p.pid, p);
  }

  /** An exec replaced the image of pid: new comm and executable, same parent. */
  exec(pid: number, ppid: number, comm: string, exe: string): void {
    this.set(exe ? { pid, ppid, comm, exe } : { pid, ppid, comm });
  }

  get(pid: number): CachedProcess | undefined {
    const known = this.procs.get(pid);
    if (known) {
      this.hits++;
      return known;
    }
    this.misses++;
    const read = this.source.read(pid);
    if (read) this.set(read);
    return read ?? undefined;
  }

  /** The chain of parents from ppid up, at most `max`, ending at pid 1 or the first unknown one. */
  ancestors(ppid: number, max = MAX_ANCESTORS): Ancestor[] {
    const out: Ancestor[] = [];
    const seen = new Set<number>();
    let pid = ppid;
    while (pid > 0 && out.length < max && !seen.has(pid)) {
      seen.add(pid);
      const p = this.get(pid);
      if (!p) break;
      out.push(p.exe === undefined ? { pid: p.pid, comm: p.comm } : { pid: p.pid, comm: p.comm, exe: p.exe });
      if (pid === 1) break;
      pid = p.ppid;
    }
    return out;
  }

  /** Forgets processes that are gone; returns how many. */
  prune(): number {
    let n = 0;
    for (const pid of [...this.procs.keys()]) {
      if (!this.source.alive(pid)) {
        this.procs.delete(pid);
        n++;
      }
    }
    return n;
  }
}

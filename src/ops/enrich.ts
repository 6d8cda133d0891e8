// Adds what the kernel records do not carry to events, in the agent, before
// they go out: the process's ancestors (from the process cache), its cgroup
// path and container id, and user and group names.
import type { KrsiEvent, ProcessInfo } from '../events/schema.js';
import { CgroupPaths } from './cgroups.js';
import { containerFromCgroup } from './container-id.js';
import { NameCache } from './names.js';
import { ProcessCache } from './process-cache.js';

export interface EnricherOptions {
  cache?: ProcessCache;
  cgroups?: CgroupPaths;
  names?: NameCache;
  /** How often gone processes are pruned from the cache (default 30 s; 0: never). */
  pruneMs?: number;
}

export class Enricher {
  readonly cache: ProcessCache;
  private readonly cgroups: CgroupPaths;
  private readonly names: NameCache;
  private timer: NodeJS.Timeout | null = null;

  constructor(opts: EnricherOptions = {}) {
    this.cache = opts.cache ?? new ProcessCache();
    this.cgroups = opts.cgroups ?? new CgroupPaths();
    this.names = opts.names ?? new NameCache();
    const pruneMs = opts.pruneMs ?? 30_000;
    if (pruneMs > 0) {
      this.timer = setInterval(() => this.cache.prune(), pruneMs);
      this.timer.unref();
    }
  }

  /** Seeds the process cache from /proc and the cgroup map from cgroupfs. */
  start(): { processes: number } {
    const processes = this.cache.seed();
    this.cgroups.scan();
    return { processes };
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Adds the optional process fields in place, then keeps the cache by exec events. */
  enrich(event: KrsiEvent): void {
    const p = 'process' in event ? (event.process as ProcessInfo | null) : null;
    if (!p) return;
    const ancestors = this.cache.ancestors(p.ppid);
    if (ancestors.length > 0) p.ancestors = ancestors;
    const cgroup = this.cgroups.path(p.cgroup_id);
    if (cgroup !== undefined) {
      p.cgroup = cgroup;
      const container = containerFromCgroup(cgroup);
      if (container) p.container_id = container.id;
    }
    const user = this.names.user(p.uid);
    if (user !== undefined) p.user = user;
    const group = this.names.group(p.gid);
    if (group !== undefined) p.group = group;
    if (event.kind === 'exec' && event.decision === 'allowed') this.cache.exec(p.pid, p.ppid, p.comm, event.exec.path);
  }
}

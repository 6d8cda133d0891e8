// Hidden kernel modules. A rootkit module typically hides itself once
// loaded: it unlinks itself from the kernel's module list (so it is gone
// from /proc/modules and lsmod) and deletes its sysfs object
// (/sys/module/<name>). It cannot hide its own loading from the kernel's
// module_load tracepoint, nor fake the module_free tracepoint that every
// real unload (or failed init) goes through.
//
// So the agent keeps the set of modules the kernel formed and has not freed
// (the tracepoint records, bpf/hooks/module.bpf.c, on top of /proc/modules
// at start) and compares it with /proc/modules and /sys/module: soon after
// every load, and periodically. A module in the set that is missing from
// either is reported once as a `module_hidden` event.
//
// Not at first sight: the load tracepoint fires before the module is in
// /proc/modules (it is still unformed) and before its sysfs object exists,
// and a module's init runs in the "Loading" state. A module that /proc/modules
// says is Loading is not judged yet, and one missing from a view is reported
// only if it is still missing confirmMs later: a hidden module stays hidden,
// a module being set up does not stay half-visible.
//
// Order matters: a module is removed from the list only after its
// module_free record is written, so the views are read first and the rings
// drained second; a module that was freed meanwhile is then out of the set
// before the comparison, and is never reported.
import { readdirSync, readFileSync } from 'node:fs';
import { isoNs } from '../events/clock.js';
import { taintLetters, type ModuleStateRecord } from '../events/module.js';
import type { ModuleHiddenEvent, ProcessInfo } from '../events/schema.js';
import { SCHEMA_VERSION } from '../events/schema.js';
import { log } from '../log.js';

export interface ModuleWatchOptions {
  /** Where a module_hidden event goes (the agent's event stream). */
  emit: (event: ModuleHiddenEvent) => void;
  /** Consumes what the rings hold now, so that every record written so far has been seen. */
  drain: () => void;
  /** A periodic check, in ms; 0: only after loads. Default 5000. */
  intervalMs?: number;
  /** The check after a load, once its init has had time to run, in ms. Default 300. */
  settleMs?: number;
  /** How long a module must stay missing before it is reported, in ms; 0: at once. Default 300. */
  confirmMs?: number;
  procModules?: string;
  sysModule?: string;
}

interface Tracked {
  name: string;
  nameBase64?: string;
  /** null for modules found at start. */
  loadedAt: string | null;
  taints: string[];
  process: ProcessInfo | null;
}

export type ModuleView = 'proc_modules' | 'sysfs';

export interface ProcModule {
  /** Taint letters ("(OE)"). */
  taints: string[];
  /** Its init has not returned yet (the state column says Loading). */
  loading: boolean;
}

/** Modules in /proc/modules: name size refcount deps state address [taints]. */
export function parseProcModules(text: string): Map<string, ProcModule> {
  const out = new Map<string, ProcModule>();
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    const name = fields[0];
    if (!name) continue;
    const taint = /\(([A-Z]+)\)\s*$/.exec(line);
    out.set(name, { taints: taint?.[1] ? [...taint[1]] : [], loading: fields[4] === 'Loading' });
  }
  return out;
}

export class ModuleWatch {
  private readonly tracked = new Map<string, Tracked>();
  private readonly reported = new Set<string>();
  /** Modules seen missing and not reported yet: since when (Date.now()). */
  private readonly suspect = new Map<string, number>();
  private readonly procModules: string;
  private readonly sysModule: string;
  private interval: NodeJS.Timeout | null = null;
  private settle: NodeJS.Timeout | null = null;
  private recheck: NodeJS.Timeout | null = null;
  private checking = false;

  constructor(private readonly opts: ModuleWatchOptions) {
    this.procModules = opts.procModules ?? '/proc/modules';
    this.sysModule = opts.sysModule ?? '/sys/module';
  }

  /** The baseline (what is loaded now) and the periodic check. */
  start(): void {
    for (const [name, m] of this.readProc() ?? []) {
      if (!this.tracked.has(name)) this.tracked.set(name, { name, loadedAt: null, taints: m.taints, process: null });
    }
    const every = this.opts.intervalMs ?? 5000;
    if (every > 0) {
      this.interval = setInterval(() => this.check(), every);
      this.interval.unref();
    }
  }

  stop(): void {
    if (this.interval) clearInterval(this.interval);
    if (this.settle) clearTimeout(this.settle);
    if (this.recheck) clearTimeout(this.recheck);
    this.interval = this.settle = this.recheck = null;
  }

  /** A record of the module tracepoints. */
  onRecord(r: ModuleStateRecord): void {
    this.suspect.delete(r.name);
    if (r.state === 'freed') {
      this.tracked.delete(r.name);
      this.reported.delete(r.name);
      return;
    }
    this.tracked.set(r.name, {
      name: r.name,
      ...(r.nameBase64 !== undefined ? { nameBase64: r.nameBase64 } : {}),
      loadedAt: r.time,
      taints: taintLetters(r.taints),
      process: r.process,
    });
    this.reported.delete(r.name);
    // One check soon after the last of a burst of loads (modprobe and its dependencies).
    if (this.settle) clearTimeout(this.settle);
    this.settle = setTimeout(() => {
      this.settle = null;
      this.check();
    }, this.opts.settleMs ?? 300);
    this.settle.unref();
  }

  /** Modules the kernel formed and has not freed, by name. */
  loaded(): string[] {
    return [...this.tracked.keys()].sort();
  }

  /** Compares the set with /proc/modules and /sys/module; reports what is missing. Returns the events emitted. */
  check(): ModuleHiddenEvent[] {
    if (this.checking) return [];
    this.checking = true;
    try {
      const proc = this.readProc();
      const sys = this.readSys();
      if (!proc || !sys) return [];
      // Records written before the reads above are processed now.
      this.opts.drain();
      const out: ModuleHiddenEvent[] = [];
      const now = Date.now();
      const confirmMs = this.opts.confirmMs ?? 300;
      let undecided = false;
      for (const t of this.tracked.values()) {
        if (this.reported.has(t.name)) continue;
        const missing: ModuleView[] = [];
        const inProc = proc.get(t.name);
        if (!inProc) missing.push('proc_modules');
        if (!sys.has(t.name)) missing.push('sysfs');
        if (missing.length === 0) {
          this.suspect.delete(t.name);
          continue;
        }
        // Still being set up, or not missing for long enough: judged later.
        const since = this.suspect.get(t.name) ?? now;
        if (inProc?.loading === true || now - since < confirmMs) {
          if (inProc?.loading !== true) this.suspect.set(t.name, since);
          undecided = true;
          continue;
        }
        this.suspect.delete(t.name);
        this.reported.add(t.name);
        const event: ModuleHiddenEvent = {
          schema: SCHEMA_VERSION,
          kind: 'module_hidden',
          time: isoNs(BigInt(Date.now()) * 1_000_000n),
          module: {
            name: t.name,
            ...(t.nameBase64 !== undefined ? { name_base64: t.nameBase64 } : {}),
            loaded_at: t.loadedAt,
            taints: t.taints,
            missing_from: missing,
          },
          process: t.process,
        };
        out.push(event);
        this.opts.emit(event);
      }
      if (undecided) this.checkAgain(confirmMs);
      return out;
    } finally {
      this.checking = false;
    }
  }

  /** One more check for the modules not judged yet. */
  private checkAgain(ms: number): void {
    if (this.recheck) return;
    this.recheck = setTimeout(() => {
      this.recheck = null;
      this.check();
    }, Math.max(ms, 50));
    this.recheck.unref();
  }

  private readProc(): Map<string, ProcModule> | null {
    try {
      return parseProcModules(readFileSync(this.procModules, 'utf8'));
    } catch (err) {
      log.warn({ err: (err as Error).message, path: this.procModules }, 'cannot read the module list; hidden modules go unnoticed');
      return null;
    }
  }

  private readSys(): Set<string> | null {
    try {
      return new Set(readdirSync(this.sysModule));
    } catch (err) {
      log.warn({ err: (err as Error).message, path: this.sysModule }, 'cannot read /sys/module; hidden modules go unnoticed');
      return null;
    }
  }
}

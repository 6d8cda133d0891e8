// Event filters of `krsi events` (and the control method events.subscribe):
// every field given must match; a list matches when any of its values does.
import { z } from 'zod';
import type { KrsiEvent } from '../events/schema.js';

export const EventFilterSchema = z
  .object({
    hook: z.array(z.string().min(1).max(64)).max(64).optional().describe('event kinds: exec, file_open, connect, tamper, ...'),
    decision: z.array(z.enum(['allowed', 'denied'])).max(2).optional(),
    binary: z.array(z.string().min(1).max(4096)).max(64).optional().describe('executable path, basename or glob (*)'),
    uid: z.array(z.number().int().min(0).max(0xffff_ffff)).max(256).optional(),
    cgroup: z.array(z.string().min(1).max(4096)).max(64).optional().describe('a cgroup id, or a cgroup path and what is below it'),
    rule: z.array(z.string().min(1).max(256)).max(64).optional().describe('policy/rule, or a rule name of any policy'),
  })
  .strict();
export type EventFilter = z.output<typeof EventFilterSchema>;

function globToRegExp(glob: string): RegExp {
  return new RegExp(`^${glob.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
}

interface Proc {
  uid?: number;
  comm?: string;
  cgroup_id?: string;
  cgroup?: string;
}

function processOf(e: KrsiEvent): Proc | null {
  return 'process' in e ? ((e.process as Proc | null) ?? null) : null;
}

function binaryOf(e: KrsiEvent): string | undefined {
  if (e.kind === 'exec') return e.exec.path || e.exec.filename;
  if (e.kind === 'mmap_exec') return e.program.path;
  return processOf(e)?.comm;
}

function rulesOf(e: KrsiEvent): string[] {
  const out: string[] = [];
  if ('policy' in e && e.policy && typeof e.policy === 'object' && 'matched' in e.policy) {
    const p = e.policy;
    for (const r of [p.rule, p.would_deny, p.audit]) if (r) out.push(`${r.policy}/${r.rule}`);
    out.push(...p.matched);
  }
  if (e.kind === 'reaction') out.push(`${e.trigger.policy}/${e.trigger.rule}`);
  return out;
}

/** A predicate for the filter; the empty filter passes everything. */
export function compileFilter(f: EventFilter): (e: KrsiEvent) => boolean {
  const binaries = f.binary?.map((b) => (b.includes('*') ? globToRegExp(b) : b));
  return (e) => {
    if (f.hook && !f.hook.includes(e.kind)) return false;
    if (f.decision) {
      const d = 'decision' in e ? e.decision : undefined;
      if (d === undefined || !f.decision.includes(d)) return false;
    }
    const proc = processOf(e);
    if (f.uid && (proc?.uid === undefined || !f.uid.includes(proc.uid))) return false;
    if (f.cgroup) {
      const ok = f.cgroup.some((c) =>
        /^\d+$/.test(c) ? proc?.cgroup_id === c : proc?.cgroup !== undefined && (proc.cgroup === c || proc.cgroup.startsWith(c.endsWith('/') ? c : `${c}/`)),
      );
      if (!ok) return false;
    }
    if (binaries) {
      const bin = binaryOf(e);
      if (bin === undefined) return false;
      const base = bin.slice(bin.lastIndexOf('/') + 1);
      const ok = binaries.some((b) => (typeof b === 'string' ? b === bin || b === base : b.test(bin)));
      if (!ok) return false;
    }
    if (f.rule) {
      const rules = rulesOf(e);
      const ok = f.rule.some((r) => (r.includes('/') ? rules.includes(r) : rules.some((x) => x.slice(x.indexOf('/') + 1) === r)));
      if (!ok) return false;
    }
    return true;
  };
}

// Whether each rule in force is enforced, and if not, why: `krsi status`.
import { POLICY_HOOKS } from '../families/index.js';
import type { Policy } from '../policy/schema.js';

export type RuleState = 'enforced' | 'monitor' | 'degraded' | 'inactive';

export interface RuleStatus {
  policy: string;
  rule: string;
  hook: string;
  action: string;
  state: RuleState;
  /** Why a rule is not simply enforced; absent when it is. */
  reason?: string;
}

/** The programs that decide each policy hook: the rule is in force only when they are attached. */
export const POLICY_HOOK_PROGRAMS: Readonly<Record<string, readonly string[]>> = Object.fromEntries(POLICY_HOOKS.map((h) => [h.name, h.programs]));

function usesSha256(value: unknown): boolean {
  return JSON.stringify(value ?? {}).includes('"sha256"');
}

export function ruleStates(
  policies: readonly Policy[],
  facts: {
    attached: ReadonlySet<string>;
    ima: boolean;
    lockPointReached: boolean;
    /** Programs the kernel cannot load, and why (src/agent/kernel-features.ts). */
    leftOut?: ReadonlyMap<string, string>;
  },
): RuleStatus[] {
  const out: RuleStatus[] = [];
  for (const p of policies) {
    for (const r of p.spec.rules) {
      const base = { policy: p.metadata.name, rule: r.name, hook: r.hook, action: r.action };
      const missing = (POLICY_HOOK_PROGRAMS[r.hook] ?? []).filter((prog) => !facts.attached.has(prog));
      const mode = r.mode ?? p.spec.mode;
      if (r.afterLockPoint && !facts.lockPointReached) {
        out.push({ ...base, state: 'inactive', reason: 'afterLockPoint: in force only once the lock point is reached (krsi lock-point)' });
      } else if (missing.length > 0) {
        const why = missing.map((prog) => {
          const reason = facts.leftOut?.get(prog);
          return reason === undefined ? prog : `${prog} (${reason})`;
        });
        out.push({ ...base, state: 'degraded', reason: `not attached on this kernel: ${why.join('; ')}` });
      } else if (!facts.ima && usesSha256(r.match)) {
        out.push({
          ...base,
          state: 'degraded',
          reason: 'sha256 without IMA (bpf_ima_file_hash unavailable or --no-ima): the agent hashes files, so the first use of a file it has not hashed yet is decided without its digest (hash_missing)',
        });
      } else if (mode === 'monitor') {
        out.push({ ...base, state: 'monitor', reason: 'monitor mode: reports what it would do, decides nothing' });
      } else {
        out.push({ ...base, state: 'enforced' });
      }
    }
  }
  return out;
}

// struct krsi_policy_ref into the `policy` object of an event: which
// generation, rule or default decided, named as the policies name them.
import {
  KRSI_REF_AUDIT,
  KRSI_REF_CONTEXT_UNKNOWN,
  KRSI_REF_DEFAULT,
  KRSI_REF_KILLED,
  KRSI_REF_NO_POLICY,
  KRSI_REF_SECUREEXEC,
  KRSI_REF_WOULD_DENY,
  KRSI_RULE_NONE,
  KRSI_VERDICT_DENY,
  type KrsiPolicyRef,
} from '../abi/generated.js';
import type { PolicyOutcome, RuleRefOut } from './schema.js';

/** Names the rule behind bit `bit` of policy hook `hook` in a generation. */
export interface PolicyNames {
  rule(generation: number, hook: number, bit: number): RuleRefOut | undefined;
}

export const noPolicyNames: PolicyNames = { rule: () => undefined };

function name(names: PolicyNames, ref: KrsiPolicyRef, generation: number, bit: number): RuleRefOut | null {
  if (bit === KRSI_RULE_NONE) return null;
  // A generation the agent no longer knows (it restarted) still names the bit.
  return names.rule(generation, ref.hook, bit) ?? { policy: `(generation ${generation})`, rule: `#${bit}`, action: 'audit', mode: 'enforce' };
}

export function decodePolicyOutcome(ref: KrsiPolicyRef, names: PolicyNames): PolicyOutcome {
  const generation = Number(ref.generation);
  const flag = (f: number): boolean => (ref.flags & f) !== 0;
  const matched: string[] = [];
  for (let bit = 0; bit < 64; bit++) {
    if (ref.matched & (1n << BigInt(bit))) {
      const r = name(names, ref, generation, bit);
      if (r) matched.push(`${r.policy}/${r.rule}`);
    }
  }
  const noPolicy = flag(KRSI_REF_NO_POLICY);
  const byDefault = flag(KRSI_REF_DEFAULT);
  return {
    generation,
    decided_by: noPolicy ? 'no-policy' : byDefault ? 'default' : 'rule',
    rule: byDefault || noPolicy ? null : name(names, ref, generation, ref.rule),
    default: byDefault && !noPolicy ? (ref.verdict === KRSI_VERDICT_DENY ? 'deny' : 'allow') : null,
    would_deny: flag(KRSI_REF_WOULD_DENY) ? name(names, ref, generation, ref.wouldRule) : null,
    default_would_deny: flag(KRSI_REF_WOULD_DENY) && ref.wouldRule === KRSI_RULE_NONE,
    audit: flag(KRSI_REF_AUDIT) ? name(names, ref, generation, ref.auditRule) : null,
    matched,
    secureexec: flag(KRSI_REF_SECUREEXEC),
    killed: flag(KRSI_REF_KILLED),
    context_unknown: flag(KRSI_REF_CONTEXT_UNKNOWN),
  };
}

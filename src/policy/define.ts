// Policies as code: the same schema and the same set-level checks as policy
// files, for policies written in TypeScript; and the canonical YAML form of a
// policy, which `krsi policy show` prints.
import { stringify } from 'yaml';
import type { z } from 'zod';
import { checkPolicy, formatPolicyIssue, unwrapSchema, validatePolicySet, type LoadedPolicy, type PolicyIssue } from './load.js';
import { PolicySchema, type Policy, type PolicyInput } from './schema.js';

/** A policy, or a set of policies, that does not validate; `issues` says everything that is wrong, the message too (one issue a line). */
export class PolicyValidationError extends Error {
  override readonly name = 'PolicyValidationError';
  readonly issues: readonly PolicyIssue[];

  constructor(issues: readonly PolicyIssue[]) {
    super(issues.length ? issues.map(formatPolicyIssue).join('\n') : 'invalid policy');
    this.issues = issues;
  }
}

/** Validates a policy (defaults filled in, inode and cgroup numbers as bigint); throws PolicyValidationError listing every issue. */
export function definePolicy(input: PolicyInput): Policy {
  const { policy, issues } = checkPolicy(input);
  if (!policy) throw new PolicyValidationError(issues);
  return policy;
}

/**
 * Checks policies together, as a load of policy files does: unique policy
 * names, declared lists of fitting types, agreeing defaults, at most 64 rules
 * per hook. Returns the policies; throws PolicyValidationError listing every issue.
 */
export function definePolicySet(policies: readonly Policy[]): Policy[] {
  const loaded: LoadedPolicy[] = policies.map((policy, i) => ({ policy, source: { file: '', line: 0, document: i + 1 } }));
  const errors = validatePolicySet(loaded);
  if (errors.length) {
    throw new PolicyValidationError(
      errors.map((e) => {
        const issue: PolicyIssue = { path: e.path, message: e.message };
        if (e.policy !== undefined) issue.policy = e.policy;
        if (e.rule !== undefined) issue.rule = e.rule;
        return issue;
      }),
    );
  }
  return [...policies];
}

/**
 * A policy as YAML, keys in the schema's order (apiVersion, kind, metadata,
 * spec: mode, defaults, lists, rules; a rule's name, hook, match, action, ...),
 * 64-bit numbers (inode numbers, cgroup ids) as decimal strings. Parsing the
 * text gives back the same policy.
 */
export function policyToYaml(policy: PolicyInput | Policy): string {
  return stringify(canonical(PolicySchema, policy), { lineWidth: 0, version: '1.2' });
}

interface ShapeDef {
  type: string;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
}

function canonical(schema: z.ZodType | undefined, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value === null || typeof value !== 'object') return value;
  const def = schema ? (unwrapSchema(schema, value)._zod.def as unknown as ShapeDef) : undefined;
  if (Array.isArray(value)) {
    const element = def?.type === 'array' ? def.element : undefined;
    return value.map((v: unknown) => canonical(element, v));
  }
  const record = value as Record<string, unknown>;
  const shape = def?.type === 'object' ? def.shape : undefined;
  const known = shape ? Object.keys(shape).filter((k) => Object.hasOwn(record, k)) : [];
  const rest = Object.keys(record)
    .filter((k) => !shape || !Object.hasOwn(shape, k))
    .sort();
  const out: Record<string, unknown> = {};
  for (const key of [...known, ...rest]) {
    const v = record[key];
    if (v !== undefined) out[key] = canonical(shape?.[key], v);
  }
  return out;
}

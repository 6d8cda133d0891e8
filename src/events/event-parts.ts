// What every event of the JSON stream shares: the schema version, the
// acting process, the policy outcome, and the envelope of a policy hook's
// event (schema, kind, time, decision, policy, process). Leaf module: the
// family modules (src/families/) build their events from it.
import { z } from 'zod';

export const SCHEMA_VERSION = 'krsi/v1' as const;

export const u32 = z.number().int().min(0).max(0xffff_ffff);
export const u64String = z.string().regex(/^\d+$/, 'a decimal 64-bit integer');
export const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'base64');
export const decision = z.enum(['allowed', 'denied']);
export const device = z.string().regex(/^\d+:\d+$/, 'major:minor');

export const ProcessSchema = z
  .object({
    pid: u32.describe('process id (the kernel tgid)'),
    tid: u32.describe('thread id (the kernel pid)'),
    ppid: u32.describe('process id of the real parent'),
    uid: u32,
    gid: u32,
    euid: u32,
    egid: u32,
    comm: z.string().describe('task comm, at most 15 bytes'),
    comm_base64: base64.optional().describe('exact bytes of comm, present only when they are not valid UTF-8'),
    cgroup_id: u64String.describe('cgroup v2 id'),
    start_boottime_ns: u64String.describe('process start, ns since boot: with pid, an identity that survives pid reuse'),
    // Enrichment by the agent (src/ops/enrich.ts), from its process cache and /proc; absent when unknown.
    ancestors: z
      .array(z.object({ pid: u32, comm: z.string(), exe: z.string().optional() }).strict())
      .optional()
      .describe("the parent, its parent and so on (at most 8), from the agent's process cache; stops at the first unknown process or at pid 1"),
    cgroup: z.string().optional().describe('cgroup v2 path of the process (from cgroup_id), e.g. /system.slice/ssh.service'),
    container_id: z.string().regex(/^[0-9a-f]{12,64}$/).optional().describe('container id read from the cgroup path (docker, containerd, cri-o, podman)'),
    user: z.string().optional().describe('name of uid in /etc/passwd'),
    group: z.string().optional().describe('name of gid in /etc/group'),
  })
  .strict();

export const RuleRefSchema = z
  .object({
    policy: z.string(),
    rule: z.string(),
    action: z.enum(['audit', 'allow', 'deny', 'kill', 'secureexec']),
    mode: z.enum(['enforce', 'monitor']),
  })
  .strict();

export const PolicyOutcomeSchema = z
  .object({
    generation: z.number().int().min(0).describe('the policy generation that decided; 0 when none was loaded'),
    decided_by: z.enum(['rule', 'default', 'no-policy']),
    rule: RuleRefSchema.nullable().describe('the deciding rule (decided_by: rule)'),
    default: z.enum(['allow', 'deny']).nullable().describe("the hook's default, when it decided"),
    would_deny: RuleRefSchema.nullable().describe('a monitor-mode rule that would have denied'),
    default_would_deny: z.boolean().describe("a monitor-mode policy's default deny would have denied"),
    audit: RuleRefSchema.nullable().describe('the first audit rule that matched'),
    matched: z.array(z.string()).describe('every rule that matched, as policy/rule'),
    secureexec: z.boolean().describe('the exec runs with AT_SECURE'),
    killed: z.boolean().describe('SIGKILL was sent to the acting process'),
    context_unknown: z.boolean().describe("part of the task's context was unknown: rules that need it did not match"),
  })
  .strict();

/**
 * A policy hook's event: the envelope exec's events have too (decision,
 * policy, process), then one object about what the hook saw. The hooks
 * other than exec report only noteworthy decisions: denied, would-deny
 * (monitor mode) and audit.
 */
export function hookEventSchema<K extends string, S extends z.ZodRawShape>(kind: K, body: S) {
  return z
    .object({
      schema: z.literal(SCHEMA_VERSION),
      kind: z.literal(kind),
      time: z.string().describe('RFC 3339 UTC with nanoseconds'),
      decision,
      policy: PolicyOutcomeSchema,
      process: ProcessSchema,
      ...body,
    })
    .strict();
}

export type ProcessInfo = z.infer<typeof ProcessSchema>;
export type RuleRefOut = z.infer<typeof RuleRefSchema>;
export type PolicyOutcome = z.infer<typeof PolicyOutcomeSchema>;

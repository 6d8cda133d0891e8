// The JSON event stream: one object per line, validated by these schemas and
// documented in docs/events.md. Field names are snake_case and stable within
// a schema version; 64-bit identifiers are decimal strings because JSON
// numbers lose precision past 2^53.
import { z } from 'zod';

export const SCHEMA_VERSION = 'krsi/v1' as const;

const u32 = z.number().int().min(0).max(0xffff_ffff);
const u64String = z.string().regex(/^\d+$/, 'a decimal 64-bit integer');
const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'base64');

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
  })
  .strict();

export const ExecSchema = z
  .object({
    path: z.string().describe('full path of the executed file, as bpf_d_path resolves it; empty if unresolved'),
    path_base64: base64.optional(),
    path_unresolved: z.boolean(),
    filename: z.string().describe('the name execve() was given (a symlink, a relative path)'),
    filename_base64: base64.optional(),
    filename_truncated: z.boolean(),
    dev: z.string().regex(/^\d+:\d+$/, 'major:minor').describe('device of the file system holding the file'),
    ino: u64String.describe('inode number of the file'),
    argc: u32.describe('argument count of the exec, which argv may not hold entirely'),
    argv: z.array(z.string()),
    argv_base64: z.array(base64.nullable()).optional().describe('exact bytes of each argument, present only when one is not valid UTF-8'),
    argv_truncated: z.boolean().describe('argv lacks arguments or bytes beyond the per-event bounds'),
    argv_unreadable: z.boolean().describe('argv could not be read from memory'),
  })
  .strict();

export const RuleRefSchema = z
  .object({
    id: u32.describe('the rule that decided'),
  })
  .strict();

export const ExecEventSchema = z
  .object({
    schema: z.literal(SCHEMA_VERSION),
    kind: z.literal('exec'),
    time: z.string().describe('RFC 3339 UTC with nanoseconds'),
    decision: z.enum(['allowed', 'denied']),
    rule: RuleRefSchema.nullable(),
    process: ProcessSchema,
    exec: ExecSchema,
  })
  .strict();

export const HookCountersSchema = z
  .object({
    seen: z.number().int().min(0),
    denied: z.number().int().min(0),
    emitted: z.number().int().min(0),
    dropped: z.number().int().min(0),
  })
  .strict();

export const AgentEventSchema = z
  .object({
    schema: z.literal(SCHEMA_VERSION),
    kind: z.literal('agent'),
    time: z.string(),
    state: z.enum(['ready', 'stopped']),
    kernel: z.string(),
    programs: z.array(z.string()).describe('programs attached'),
    counters: z.record(z.string(), HookCountersSchema).describe('per hook, summed over CPUs'),
    received: z.number().int().min(0).describe('records the agent read from the rings'),
  })
  .strict();

export const EventSchema = z.discriminatedUnion('kind', [ExecEventSchema, AgentEventSchema]);

export type ProcessInfo = z.infer<typeof ProcessSchema>;
export type ExecEvent = z.infer<typeof ExecEventSchema>;
export type AgentEvent = z.infer<typeof AgentEventSchema>;
export type HookCounters = z.infer<typeof HookCountersSchema>;
export type KrsiEvent = z.infer<typeof EventSchema>;

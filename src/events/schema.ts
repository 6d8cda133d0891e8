// The JSON event stream: one object per line, validated by these schemas and
// documented in docs/events.md (generated from them: scripts/gen-events-docs.ts).
// Field names are snake_case and stable within a schema version; 64-bit
// identifiers are decimal strings because JSON numbers lose precision past
// 2^53. Each hook family's events are declared with its decoder
// (src/events/<family>.ts) and listed by its family (src/families/); the
// agent's own events (agent, reaction, gap) are here.
import { z } from 'zod';
import { FAMILY_EVENT_SCHEMAS } from '../families/index.js';
import { SCHEMA_VERSION, u32, u64String, type PolicyOutcome } from './event-parts.js';

export * from './event-parts.js';
// Each family's events, re-exported for the package's users (src/index.ts).
export { ExecEventSchema, ExecSchema, type ExecEvent } from './exec.js';
export { FileOpenEventSchema, FileUnlinkEventSchema, OpenedFileSchema, UnlinkedFileSchema, type FileOpenEvent, type FileUnlinkEvent } from './file.js';
export { MountEventSchema, MountSchema, type MountEvent } from './mount.js';
export { ModuleHiddenEventSchema, ModuleLoadEventSchema, ModuleSchema, type ModuleHiddenEvent, type ModuleLoadEvent } from './module.js';
export { ConnectEventSchema, ConnectSchema, type ConnectEvent } from './connect.js';
export { MmapExecEventSchema, type MmapExecEvent } from './mmap.js';
export { PtraceEventSchema, type PtraceEvent } from './ptrace.js';
export { BpfEventSchema, type BpfEvent } from './bpf.js';
export { SetidEventSchema, type SetidEvent } from './setid.js';
export { TamperEventSchema, type TamperEvent } from './tamper.js';

export const HookCountersSchema = z
  .object({
    seen: z.number().int().min(0),
    denied: z.number().int().min(0),
    emitted: z.number().int().min(0),
    dropped: z.number().int().min(0),
    rate_limited: z.number().int().min(0),
  })
  .strict();

export const RingAccountSchema = z
  .object({
    attempted: z.number().int().min(0).describe('records the programs tried to write, since the agent started'),
    received: z.number().int().min(0),
    dropped: z.number().int().min(0).describe("records the ring had no room for: the kernel's count, exact at every moment"),
    pending: z.number().int().min(0).describe('attempted - received - dropped: still in the ring or being written; 0 at stop, unless a killed predecessor took records from the ring that it never recorded as read'),
    gaps: z.number().int().min(0).describe('gap events this agent put in the stream'),
    missing: z.number().int().min(0).describe('lost records the gap events stand for: every loss is marked before a report, so missing == dropped'),
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
    generation: z.number().int().min(0).describe('the policy generation in force'),
    counters: z.record(z.string(), HookCountersSchema).describe('per hook, summed over CPUs'),
    received: z.number().int().min(0).describe('records the agent read from the rings'),
    accounting: z.object({ decisions: RingAccountSchema, events: RingAccountSchema }).strict(),
  })
  .strict();

export const ReactionEventSchema = z
  .object({
    schema: z.literal(SCHEMA_VERSION),
    kind: z.literal('reaction'),
    time: z.string(),
    reaction: z.object({ policy: z.string(), name: z.string() }).strict(),
    trigger: z
      .object({ policy: z.string(), rule: z.string(), kind: z.string(), pid: u32, time: z.string() })
      .strict()
      .describe('the event that triggered the reaction'),
    actions: z.array(
      z.union([
        z.object({ do: z.literal('add'), list: z.string(), entry: z.string(), ttl_seconds: z.number().int().optional() }).strict(),
        z.object({ do: z.literal('kill'), pids: z.array(u32) }).strict(),
      ]),
    ),
    latency_us: z.number().int().min(0).describe('from the kernel’s timestamp of the triggering event to the mitigations in force'),
    errors: z.array(z.string()),
  })
  .strict();

export const GapEventSchema = z
  .object({
    schema: z.literal(SCHEMA_VERSION),
    kind: z.literal('gap'),
    time: z.string(),
    ring: z.enum(['decisions', 'events']),
    cpu: u32,
    first_seq: u64String.describe(
      'the first of the lost sequence numbers: at a jump, the missing numbers just before the next record of the CPU; a loss no later record showed yet (the tail) is marked with the number after the last record received (and those marked there already), a lower bound',
    ),
    missing: z.number().int().min(1).describe('records lost here (the ring was full): counted, never silent'),
  })
  .strict();

/** Every event of the stream: the families' and the agent's own. */
export const EventSchema = z.discriminatedUnion('kind', [...FAMILY_EVENT_SCHEMAS, AgentEventSchema, ReactionEventSchema, GapEventSchema]);

export type AgentEvent = z.infer<typeof AgentEventSchema>;
export type HookCounters = z.infer<typeof HookCountersSchema>;
export type KrsiEvent = z.infer<typeof EventSchema>;
export type ReactionEvent = z.infer<typeof ReactionEventSchema>;
export type GapEvent = z.infer<typeof GapEventSchema>;
/** Events of the policy hooks other than exec, which report only noteworthy decisions. */
export type PolicyHookEvent = Exclude<Extract<KrsiEvent, { policy: PolicyOutcome }>, { kind: 'exec' }>;

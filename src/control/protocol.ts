// The control socket's wire protocol: newline-delimited JSON over a Unix
// stream socket (/run/krsi/krsi.sock), one request a line, one response a
// line, answered in order on each connection.
//
//   request   {"id": 1, "method": "policy.apply", "params": {...}}
//   response  {"id": 1, "result": {...}}
//          or {"id": 1, "error": {"code": "input", "message": "...", "details": ...}}
//
// A response to a line that could not be read as a request (not JSON, no
// numeric id, longer than MAX_REQUEST_BYTES) has id null. 64-bit numbers
// (inode numbers, cgroup ids) are decimal strings on the wire; policies are
// policy documents as JSON, exactly as a policy file would hold them.
//
// This module has the schemas of every method's params and result; the
// server parses params with them, the client parses results with them.
import { z } from 'zod';
import type { AgentStatus, ApplyResult, ListChange, ListView, LoadedPolicySource } from '../agent/control-api.js';
import type { Decision, EventFacts } from '../policy/evaluate.js';
import { FACTS } from '../families/index.js';
import { checkPolicy, formatPolicyIssue } from '../policy/load.js';
import { EventFilterSchema } from '../ops/filter.js';
import { ACTIONS, HOOKS, LIST_TYPES, MODES, MatchSchema, PolicySchema, type Match, type Policy } from '../policy/schema.js';

export { DEFAULT_SOCKET_PATH } from './socket-path.js';
export { BinaryFactsSchema } from '../policy/fact-values.js';
/** A request line longer than this (without its newline) is refused. */
export const MAX_REQUEST_BYTES = 16 * 1024 * 1024;
/** The client's bound on a response line: results (policies, lists) can be larger than a request. */
export const MAX_RESPONSE_BYTES = 256 * 1024 * 1024;

export const ERROR_CODES = ['input', 'denied', 'internal', 'unknown-method'] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

// --- envelopes --------------------------------------------------------------

const requestId = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export const RequestSchema = z
  .object({
    id: requestId,
    method: z.string().min(1).max(128),
    params: z.record(z.string(), z.unknown()).default({}),
  })
  .strict();
export type Request = z.output<typeof RequestSchema>;

export const ErrorBodySchema = z.object({
  code: z.enum(ERROR_CODES),
  message: z.string(),
  details: z.unknown().optional(),
});
export interface ErrorBody {
  code: ErrorCode;
  message: string;
  details?: unknown;
}

export const ResponseSchema = z.union([
  z.object({ id: requestId.nullable(), result: z.unknown() }).strict(),
  z.object({ id: requestId.nullable(), error: ErrorBodySchema }).strict(),
]);
export type Response = { id: number | null; result: unknown } | { id: number | null; error: ErrorBody };

/** JSON for the wire: bigints as decimal strings, one line. */
export function encodeLine(value: unknown): string {
  return `${JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}\n`;
}

// --- shared pieces ----------------------------------------------------------

// --- shared pieces ----------------------------------------------------------

// Every family's facts (src/families/), each optional.
const EventFactsObject = z
  .object({
    hook: z.enum(HOOKS),
    ...(Object.fromEntries(Object.entries(FACTS).map(([key, schema]) => [key, schema.optional()])) as { [K in keyof typeof FACTS]: z.ZodOptional<(typeof FACTS)[K]> }),
  })
  .strict();

/**
 * The facts of an event (EventFacts) as JSON: 64-bit numbers as decimal
 * strings (safe integers accepted too), an executable as {path, dev, ino,
 * sha256} or its bare path. Parses into EventFacts; fields left out are
 * unknown to the evaluation.
 */
export const EventFactsSchema = EventFactsObject.transform((v): EventFacts => {
  const out: EventFacts = { hook: v.hook };
  for (const [key, value] of Object.entries(v) as Array<[keyof EventFacts, unknown]>) {
    if (value !== undefined && key !== 'hook') (out as unknown as Record<string, unknown>)[key] = value;
  }
  return out;
});
export type EventFactsWire = z.input<typeof EventFactsSchema>;

// Results are parsed leniently (unknown keys dropped): a client older than
// the agent ignores what the agent has learnt to say. Params are strict: a
// misspelt key is an error, not a silently ignored wish.
const RuleRefSchema = z.object({
  policy: z.string(),
  rule: z.string(),
  action: z.enum(ACTIONS),
  mode: z.enum(MODES),
});

const SelectorTraceSchema = z.object({
  selector: z.enum(Object.keys(MatchSchema.shape) as [keyof Match, ...(keyof Match)[]]),
  result: z.union([z.boolean(), z.literal('unknown')]),
  reason: z.string(),
});

export const DecisionSchema = z.object({
  verdict: z.enum(['allow', 'deny']),
  decidedBy: RuleRefSchema.nullable(),
  action: z.enum(ACTIONS),
  defaultAction: z.enum(['allow', 'deny', 'monitor-deny']),
  killed: z.boolean(),
  secureexec: z.boolean(),
  wouldDeny: RuleRefSchema.nullable(),
  defaultWouldDeny: z.boolean(),
  audit: RuleRefSchema.nullable(),
  matched: z.array(RuleRefSchema),
  trace: z.array(RuleRefSchema.extend({ matched: z.boolean(), selectors: z.array(SelectorTraceSchema) })),
});

/** One policy of a set, as sent: the document, and where it came from (a file path). */
const PolicySourceIn = z
  .object({
    policy: z.unknown(),
    source: z.string().min(1).max(4096),
  })
  .strict()
  .transform((v, ctx): LoadedPolicySource => {
    const { policy, issues } = checkPolicy(v.policy);
    if (!policy) {
      for (const issue of issues) {
        ctx.addIssue({
          code: 'custom',
          path: ['policy', ...issue.path],
          message: `${v.source}: ${formatPolicyIssue(issue)}`,
          params: { located: true },
        });
      }
      return z.NEVER;
    }
    return { policy, source: v.source };
  });

/** A policy as the agent reports it, parsed back into a Policy. */
const PolicySourceOut = z.object({ policy: PolicySchema, source: z.string() });

const ListEntrySchema = z
  .object({ entry: z.string(), expires: z.string().optional() })
  .transform((v) => (v.expires === undefined ? { entry: v.entry } : { entry: v.entry, expires: v.expires }));

const ListViewSchema = z.object({
  name: z.string(),
  type: z.enum(LIST_TYPES),
  id: z.number().int().min(0),
  entries: z.array(ListEntrySchema),
});

const ListChangeSchema = z.object({
  list: z.string(),
  added: z.array(z.string()),
  removed: z.array(z.string()),
  unchanged: z.array(z.string()),
});

const CountersSchema = z.object({
  seen: z.number(),
  denied: z.number(),
  emitted: z.number(),
  dropped: z.number(),
  rate_limited: z.number(),
});

const listName = z.string().min(1).max(63);
const listEntries = z.array(z.string().min(1).max(4096)).min(1).max(65536);

// --- methods ----------------------------------------------------------------

const noParams = z.object({}).strict();

const RingAccountSchema = z.object({
  attempted: z.number().int(),
  received: z.number().int(),
  dropped: z.number().int(),
  pending: z.number().int(),
  gaps: z.number().int(),
  missing: z.number().int(),
});

/** Every method: the schema of its params (input: the wire; output: what the agent is called with) and of its result. */
export const METHODS = {
  status: {
    params: noParams,
    result: z.object({
      pid: z.number().int(),
      kernel: z.string(),
      generation: z.number().int(),
      policies: z.array(z.string()),
      programs: z.array(z.string()),
      lists: z.array(z.object({ name: z.string(), type: z.enum(LIST_TYPES), size: z.number().int() })),
      uptimeSeconds: z.number(),
      received: z.number(),
      counters: z.record(z.string(), CountersSchema),
      accounting: z.object({ decisions: RingAccountSchema, events: RingAccountSchema }),
      locked: z.boolean(),
      lockPoint: z.object({ reached: z.boolean(), since: z.string().nullable() }),
      tamper: z.record(z.string(), z.number()),
      landlock: z.object({ abi: z.number().int(), writable: z.array(z.string()), verified: z.boolean() }).nullable(),
      reactions: z.object({ count: z.number().int(), p50Us: z.number().nullable(), p99Us: z.number().nullable() }),
      process: z.object({ cpuUserSeconds: z.number(), cpuSystemSeconds: z.number(), rssBytes: z.number() }),
      hooks: z.array(z.object({ hook: z.string(), program: z.string(), enforcing: z.boolean(), attached: z.boolean() })),
      rules: z.array(
        z.object({
          policy: z.string(),
          rule: z.string(),
          hook: z.string(),
          action: z.string(),
          state: z.enum(['enforced', 'monitor', 'degraded', 'inactive']),
          reason: z.string().optional(),
        }).transform(({ reason, ...r }) => (reason === undefined ? r : { ...r, reason })),
      ),
    }),
  },
  'policy.apply': {
    params: z.object({ policies: z.array(PolicySourceIn).max(4096) }).strict(),
    result: z.object({
      generation: z.number().int(),
      compileMs: z.number(),
      swapMs: z.number(),
      rules: z.number().int(),
      entries: z.number().int(),
    }),
  },
  'policy.current': {
    params: noParams,
    result: z.object({ generation: z.number().int(), policies: z.array(PolicySourceOut) }),
  },
  'lists.show': {
    /** name: only this list (an input error when there is none). */
    params: z.object({ name: listName.optional() }).strict(),
    result: z.object({ lists: z.array(ListViewSchema) }),
  },
  'lists.add': {
    params: z
      .object({
        name: listName,
        entries: listEntries,
        ttlSeconds: z.number().int().min(1).max(10 * 365 * 86400).optional(),
      })
      .strict(),
    result: ListChangeSchema,
  },
  'lists.remove': {
    params: z.object({ name: listName, entries: listEntries }).strict(),
    result: ListChangeSchema,
  },
  explain: {
    params: z.object({ facts: EventFactsSchema }).strict(),
    result: DecisionSchema,
  },
  lock: {
    params: noParams,
    result: z.object({ generation: z.number().int() }),
  },
  /** One-way until reboot: afterLockPoint rules are in force from then on. */
  'lockpoint.reach': {
    params: noParams,
    result: z.object({ reached: z.boolean(), since: z.string().nullable(), already: z.boolean() }),
  },
  /**
   * Streams events: answered once, then the agent writes one line per
   * matching event, {"event": {...}}, and {"lost": n} where it had to drop n
   * of them because the client read too slowly. backlog: send the last n
   * matching events first (at most 1000).
   */
  'events.subscribe': {
    params: z.object({ filter: EventFilterSchema.default({}), backlog: z.number().int().min(0).max(1000).default(0) }).strict(),
    result: z.object({ subscribed: z.literal(true) }),
  },
  /** Loads the agent's policy files again (`krsi run --policy`) and applies them: all or nothing, as SIGHUP. */
  reload: {
    params: noParams,
    result: z.object({
      generation: z.number().int(),
      compileMs: z.number(),
      swapMs: z.number(),
      rules: z.number().int(),
      entries: z.number().int(),
    }),
  },
  /** Answered at once; the agent then stops and, doing so, closes the socket. */
  stop: {
    params: noParams,
    result: z.object({ stopping: z.literal(true), pid: z.number().int() }),
  },
} as const;

export type MethodName = keyof typeof METHODS;
export type MethodParamsIn<M extends MethodName> = z.input<(typeof METHODS)[M]['params']>;
export type MethodParams<M extends MethodName> = z.output<(typeof METHODS)[M]['params']>;
export type MethodResultWire<M extends MethodName> = z.output<(typeof METHODS)[M]['result']>;

export function isMethodName(name: string): name is MethodName {
  return Object.hasOwn(METHODS, name);
}

export interface StopResult {
  stopping: true;
  pid: number;
}

/** What each method's result is once parsed (the control API's types). */
export interface MethodResults {
  status: AgentStatus;
  'policy.apply': ApplyResult;
  'policy.current': { generation: number; policies: LoadedPolicySource[] };
  'lists.show': { lists: ListView[] };
  'lists.add': ListChange;
  'lists.remove': ListChange;
  explain: Decision;
  lock: { generation: number };
  'lockpoint.reach': { reached: boolean; since: string | null; already: boolean };
  'events.subscribe': { subscribed: true };
  reload: ApplyResult;
  stop: StopResult;
}

// The schemas' outputs are the control API's types; checked here, at compile time.
type Assignable<A, B> = [A] extends [B] ? true : false;
const schemasMatchTheApi: {
  [M in MethodName]: Assignable<MethodResultWire<M>, MethodResults[M]>;
} = {
  status: true,
  'policy.apply': true,
  'policy.current': true,
  'lists.show': true,
  'lists.add': true,
  'lists.remove': true,
  explain: true,
  lock: true,
  'lockpoint.reach': true,
  'events.subscribe': true,
  reload: true,
  stop: true,
};
void schemasMatchTheApi;

/** A policy as JSON for the wire (inode numbers and cgroup ids as decimal strings); PolicySchema parses it back. */
export function policyToWire(policy: Policy): unknown {
  return JSON.parse(encodeLine(policy)) as unknown;
}

/** A zod error as one line: `where: what; where: what`. */
export function formatZodIssues(issues: readonly z.core.$ZodIssue[], max = 10): string {
  const parts = issues.slice(0, max).map((i) => {
    // Messages that say where they are about themselves (a policy's issues).
    if (i.code === 'custom' && (i.params as { located?: unknown } | undefined)?.located === true) return i.message;
    const where = i.path.map(String).join('.');
    return where ? `${where}: ${i.message}` : i.message;
  });
  if (issues.length > max) parts.push(`${issues.length - max} more`);
  return parts.join('; ');
}

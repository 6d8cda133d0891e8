// What a hook family is: everything about one bpf/hooks/<family>.bpf.c that
// the rest of krsi needs, in one module (src/families/<family>.ts). The
// registry (./index.ts) lists the families; the policy language, the
// compiler, the decoders, the agent's attach order, `krsi status`, the
// bench's empty twins and docs/events.md are all derived from it.
import type { z } from 'zod';
import type { Feature } from '../bpf/features.js';
import type { DecodeContext } from '../events/decode.js';
import type { ActionName, ListType } from '../policy/schema.js';

/** How the agent attaches a program, and when. */
export type ProgramRole =
  /** Keeps state the others read (classes at exec, lineage at fork): attached first. */
  | 'bookkeeping'
  /** Decides a policy hook: attached once the policy is in place. */
  | 'enforcing'
  /** Self-protection: attached last. */
  | 'self'
  /** Run on demand (an iterator), never attached at start. */
  | 'on-demand';

export interface ProgramSpec {
  /** The BPF program's name in krsi.bpf.o. */
  program: string;
  /** The kernel hook, as users know it (the counters' label). */
  hook: string;
  /** Counters index (KRSI_HOOK_*); none for self-protection and iterators, which count elsewhere. */
  counter?: number;
  role: ProgramRole;
  /** What it needs of the kernel: without one, it is left out of the load and its rules are degraded. */
  needs: readonly Feature[];
  /** A second program for kernels whose hook has another signature. */
  variant?: ProgramVariant;
}

/**
 * A program written twice because the kernel changed its hook's arguments (a
 * program reads them by position, the earlier LSM's ret last). `program` is
 * loaded where the hook's BTF function, the attach target whose prototype
 * the verifier gives the program, has `args` parameters; the first name
 * everywhere else. Status, pins and rules know only the first name.
 */
export interface ProgramVariant {
  program: string;
  /** The kernel function whose parameters are counted (bpf_lsm_<hook>). */
  func: string;
  args: number;
}

/**
 * What a program deciding a policy hook needs: the policy engine
 * (bpf/lib/policy.bpf.c) walks with bpf_loop, keeps binary classes in task
 * storage and reads the current task through bpf_get_current_task_btf.
 */
export const POLICY_NEEDS: readonly Feature[] = ['loop', 'taskStorage', 'currentTaskBtf'];

/** A selector dimension a family adds to the policy language. */
export interface SelectorSpec<S extends z.ZodType = z.ZodType> {
  /** KRSI_DIM_*: the table id's dimension. */
  dim: number;
  /** Types of dynamic lists it can reference: a list's entries must be of the kind it compares. */
  lists: readonly ListType[];
  /** Its value in a rule's match (made optional by the registry). */
  schema: S;
  /** docs/policy.md and the JSON Schema: what it compares. */
  description: string;
}

/** A hook policies attach rules to. */
export interface PolicyHookSpec<H extends string = string> {
  /** As rules name it (rule.hook). */
  name: H;
  /** KRSI_PHOOK_*. */
  id: number;
  /** Selectors it understands, its family's and others' (the lineage family's are everyone's). */
  selectors: readonly string[];
  actions: readonly ActionName[];
  /** The programs that decide it: a rule is in force only when all of them are attached. */
  programs: readonly string[];
}

/** What every hook but exec can do to a matching event. */
export const HOOK_ACTIONS_DEFAULT = ['audit', 'allow', 'deny', 'kill'] as const satisfies readonly ActionName[];

/**
 * A policy hook: the acting process's selectors (the lineage family's) and
 * the hook's own, decided by \`programs\`.
 */
export function policyHook<const H extends string>(
  name: H,
  id: number,
  own: { selectors: readonly string[]; programs: readonly string[]; actions?: readonly ActionName[] },
): PolicyHookSpec<H> {
  return { name, id, selectors: [...PROCESS_SELECTORS, ...own.selectors], actions: own.actions ?? HOOK_ACTIONS_DEFAULT, programs: own.programs };
}

/** The selectors of every policy hook: who acts (src/families/lineage.ts declares them). */
export const PROCESS_SELECTORS = ['binary', 'parent', 'ancestor', 'uid', 'gid', 'cgroup'] as const;

export type RecordDecoder = (view: DataView, ctx: DecodeContext) => { kind: string };

export interface RecordSpec {
  /** KRSI_EVENT_*: hdr.type. */
  type: number;
  decode: RecordDecoder;
}

/** An event kind of the stream, and how docs/events.md and `--format text` show it. */
export interface EventSpec<E extends z.ZodType = z.ZodType> {
  schema: E;
  /** docs/events.md: what the event is, in a few sentences of markdown. */
  doc: string;
  /** Policy hook events: the part of the text line about what the hook saw. */
  what?(event: z.output<E>): string;
}

export interface HookFamily {
  /** bpf/hooks/<name>.bpf.c */
  name: string;
  programs: readonly ProgramSpec[];
  policyHooks: readonly PolicyHookSpec[];
  selectors: Readonly<Record<string, SelectorSpec>>;
  /** Facts about an event for `krsi policy test` and `krsi explain`, by key (EventFacts). */
  facts: Readonly<Record<string, z.ZodType>>;
  records: readonly RecordSpec[];
  events: readonly EventSpec[];
}

/** Checks a family's shape at compile time and keeps its literal types. */
export function defineFamily<const F extends HookFamily>(family: F): F {
  return family;
}

/** The event spec of one schema, typed by it (so `what` sees its fields). */
export function eventSpec<E extends z.ZodType>(spec: EventSpec<E>): EventSpec<E> {
  return spec;
}

/** The event kind a schema is for: its `kind` literal. */
export function eventKind(schema: z.ZodType): string {
  const kind = (schema as unknown as { shape?: { kind?: { value?: unknown } } }).shape?.kind?.value;
  if (typeof kind !== 'string') throw new Error('an event schema without a kind literal');
  return kind;
}

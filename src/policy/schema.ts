// The policy language: one zod schema for YAML/JSON documents and for the
// TypeScript builder, published as JSON Schema for editors and rendered into
// docs/policy.md. A rule is a hook, selectors, and an action.
import { z } from 'zod';
import { POLICY_HOOKS, SELECTORS, type HookName, type SelectorName, type Selectors } from '../families/index.js';
import { BinarySelectorSchema, PathSelectorSchema, nameSchema as name } from './selector-values.js';

export { BinarySelectorSchema, CgroupSelectorSchema, InodeSchema, PathSelectorSchema, parseCidr, type Cidr } from './selector-values.js';
export type { HookName } from '../families/index.js';

export const API_VERSION = 'krsi.dev/v1' as const;

/** Hooks a rule can attach to, as users name them. */
export const HOOKS = POLICY_HOOKS.map((h) => h.name) as unknown as readonly [HookName, ...HookName[]];

export const ACTIONS = ['audit', 'allow', 'deny', 'kill', 'secureexec'] as const;
export type ActionName = (typeof ACTIONS)[number];

export const MODES = ['enforce', 'monitor'] as const;
export type Mode = (typeof MODES)[number];

/** Types of dynamic lists, by what their entries are. */
export const LIST_TYPES = ['path', 'inode', 'sha256', 'uid', 'gid', 'cgroup', 'env', 'fstype', 'module', 'device', 'address', 'port'] as const;
export type ListType = (typeof LIST_TYPES)[number];

/** Every selector of every hook family (src/families/), each optional: a rule's match. */
export const MatchSchema = z
  .object(
    Object.fromEntries(Object.entries(SELECTORS).map(([key, s]) => [key, s.schema.optional().describe(s.description)])) as {
      [K in SelectorName]: z.ZodOptional<Selectors[K]['schema']>;
    },
  )
  .strict();

export const RateLimitSchema = z
  .object({
    events: z.number().int().min(1).describe('events of this rule reported per period, at most'),
    perSeconds: z.number().int().min(1).max(3600).default(1).describe('the period, in seconds (1 to 3600)'),
  })
  .strict()
  .describe('limits the events of a rule, never its decisions; suppressed events are counted');

// The checks below run even when other parts of the same rule or spec failed
// (`when`), so that one load reports every error; they therefore look at the
// value defensively: it is whatever parsed, not the validated output.
const always = { when: () => true };

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

export const RuleSchema = z
  .object({
    name,
    hook: z.enum(HOOKS).describe('the hook the rule attaches to'),
    match: MatchSchema.default({}).describe('selectors: all must match (none: every event of the hook)'),
    action: z.enum(ACTIONS).describe('what the rule does to a matching event'),
    mode: z.enum(MODES).optional().describe("overrides the policy's mode for this rule"),
    rateLimit: RateLimitSchema.optional(),
    afterLockPoint: z
      .boolean()
      .optional()
      .describe('in force only from the lock point on (`krsi lock-point`, e.g. when boot is complete) until reboot; before it, the rule does not exist'),
    description: z.string().optional().describe('what the rule is for, in words'),
  })
  .strict()
  .superRefine((value: unknown, ctx) => {
    const rule = asRecord(value);
    const hook = HOOKS.find((h) => h === rule?.hook);
    if (!rule || !hook) return;
    const match = asRecord(rule.match) ?? {};
    const allowed = HOOK_SELECTORS[hook];
    for (const [key, selector] of Object.entries(match)) {
      if (selector === undefined || !Object.hasOwn(MatchSchema.shape, key)) continue; // unknown keys are reported by .strict()
      if (!allowed.includes(key as keyof Match)) {
        ctx.addIssue({
          code: 'custom',
          path: ['match', key],
          message: `hook ${hook} has no "${key}" selector; it has ${allowed.join(', ')}`,
        });
      } else if (isEmptySelector(selector)) {
        ctx.addIssue({ code: 'custom', path: ['match', key], message: `the ${key} selector says nothing to match` });
      }
    }
    const action = ACTIONS.find((a) => a === rule.action);
    if (action && !HOOK_ACTIONS[hook].includes(action)) {
      ctx.addIssue({
        code: 'custom',
        path: ['action'],
        message: `hook ${hook} cannot ${action}; it can ${HOOK_ACTIONS[hook].join(', ')}`,
      });
    }
    const ports = match.port;
    const inner = asRecord(ports)?.in;
    const portValues: unknown[] = Array.isArray(ports) ? ports : Array.isArray(inner) ? inner : [];
    portValues.forEach((p, i) => {
      if (typeof p === 'string' && /^\d{1,5}-\d{1,5}$/.test(p)) {
        const [lo, hi] = p.split('-').map(Number) as [number, number];
        if (lo < 1 || hi > 65535 || lo > hi) {
          ctx.addIssue({ code: 'custom', path: ['match', 'port', ...(Array.isArray(ports) ? [] : ['in']), i], message: `bad port range ${p}` });
        }
      }
    });
  }, always);

// An empty list is refused by the schema itself (at least one value); an
// object form with nothing but `not` would match everything or nothing.
function isEmptySelector(value: unknown): boolean {
  const record = asRecord(value);
  return record !== undefined && Object.entries(record).every(([k, v]) => k === 'not' || v === undefined);
}

export const ListSchema = z
  .object({
    name,
    type: z.enum(LIST_TYPES).describe('what the entries are; it decides which selectors may use the list'),
    description: z.string().optional().describe('what the list is for, in words'),
    entries: z.array(z.string()).optional().describe('entries the list starts with when it does not exist yet'),
  })
  .strict()
  .describe('a dynamic list: global by name, referenced from selectors, changed at run time by `krsi list`');

export const DefaultsSchema = z
  .object(
    Object.fromEntries(HOOKS.map((h) => [h, z.enum(['allow', 'deny']).optional()])) as Record<
      HookName,
      z.ZodOptional<z.ZodEnum<{ allow: 'allow'; deny: 'deny' }>>
    >,
  )
  .strict()
  .describe('what happens when no rule decides, per hook; allow unless said otherwise, and never changed by adding a rule');

/** What a reaction takes from the event that triggers it. */
export const REACTION_SOURCES = {
  'binary.path': 'path',
  'binary.inode': 'inode',
  'binary.sha256': 'sha256',
  'process.cgroup': 'cgroup',
  'process.uid': 'uid',
  'file.path': 'path',
  'connect.address': 'address',
  'module.name': 'module',
} as const satisfies Record<string, ListType>;
export type ReactionSource = keyof typeof REACTION_SOURCES;

const ReactionActionSchema = z.union([
  z
    .object({
      add: z
        .object({
          list: name.describe('a dynamic list (declared in some policy) that a rule enforces'),
          from: z.enum(Object.keys(REACTION_SOURCES) as [ReactionSource, ...ReactionSource[]]).describe('what of the event goes in the list'),
          ttlSeconds: z.number().int().min(1).optional().describe('the entry expires after this long'),
        })
        .strict(),
    })
    .strict()
    .describe('add something of the event to a list: binary.sha256 to a sha256 list denies that content everywhere, process.cgroup to a cgroup list the cgroup'),
  z
    .object({ killTree: z.literal(true).describe('SIGKILL the acting process and every descendant') })
    .strict(),
]);

export const ReactionSchema = z
  .object({
    name,
    on: z
      .object({
        rule: z.string().min(1).describe('a rule of this policy, or policy/rule of another'),
        decision: z.enum(['any', 'allowed', 'denied', 'would_deny']).default('any').describe('which of its events trigger the reaction'),
      })
      .strict(),
    do: z.array(ReactionActionSchema).min(1),
    description: z.string().optional(),
  })
  .strict()
  .describe('the daemon half of KRSI: a signal (a rule’s event) triggers mitigations, carried out by the agent');

export const PolicySchema = z
  .object({
    apiVersion: z.literal(API_VERSION),
    kind: z.literal('Policy'),
    metadata: z.object({ name, description: z.string().optional().describe('what the policy is for, in words') }).strict(),
    spec: z
      .object({
        mode: z.enum(MODES).default('enforce').describe('enforce: rules decide; monitor: rules only report what they would have done'),
        defaults: DefaultsSchema.optional(),
        lists: z.array(ListSchema).default([]),
        rules: z.array(RuleSchema).default([]),
        reactions: z.array(ReactionSchema).default([]),
      })
      .strict()
      .superRefine((value: unknown, ctx) => {
        const spec = asRecord(value);
        if (!spec) return;
        const dup = (items: unknown, what: 'rules' | 'lists'): void => {
          if (!Array.isArray(items)) return;
          const seen = new Map<string, number>();
          items.forEach((item: unknown, i) => {
            const itemName = asRecord(item)?.name;
            if (typeof itemName !== 'string') return;
            const first = seen.get(itemName);
            if (first !== undefined) {
              ctx.addIssue({
                code: 'custom',
                path: [what, i, 'name'],
                message: `${what === 'rules' ? 'rule' : 'list'} ${itemName} is already defined (spec.${what}.${first})`,
              });
            } else seen.set(itemName, i);
          });
        };
        dup(spec.rules, 'rules');
        dup(spec.lists, 'lists');
      }, always),
  })
  .strict()
  .describe('a krsi policy: rules (hook, selectors, action), defaults and dynamic lists');

export type PolicyInput = z.input<typeof PolicySchema>;
export type Policy = z.output<typeof PolicySchema>;
export type Rule = z.output<typeof RuleSchema>;
export type Match = z.output<typeof MatchSchema>;
export type BinarySelector = z.output<typeof BinarySelectorSchema>;
export type PathSelector = z.output<typeof PathSelectorSchema>;
export type ListDecl = z.output<typeof ListSchema>;
export type Reaction = z.output<typeof ReactionSchema>;

/** Which selectors each hook understands; anything else is a validation error. */
export const HOOK_SELECTORS = Object.fromEntries(POLICY_HOOKS.map((h) => [h.name, h.selectors])) as Readonly<Record<HookName, readonly (keyof Match)[]>>;

/** Which actions each hook can carry out. */
export const HOOK_ACTIONS = Object.fromEntries(POLICY_HOOKS.map((h) => [h.name, h.actions])) as Readonly<Record<HookName, readonly ActionName[]>>;

// The package's public entry (package.json "exports"): re-exports only.

// Policies: the language, loading files, policies as code.
export {
  ACTIONS,
  API_VERSION,
  HOOK_ACTIONS,
  HOOK_SELECTORS,
  HOOKS,
  LIST_TYPES,
  MODES,
  BinarySelectorSchema,
  CgroupSelectorSchema,
  DefaultsSchema,
  InodeSchema,
  ListSchema,
  MatchSchema,
  PathSelectorSchema,
  PolicySchema,
  RateLimitSchema,
  RuleSchema,
  parseCidr,
} from './policy/schema.js';
export type {
  ActionName,
  BinarySelector,
  Cidr,
  HookName,
  ListDecl,
  ListType,
  Match,
  Mode,
  PathSelector,
  Policy,
  PolicyInput,
  Rule,
} from './policy/schema.js';
export {
  MAX_RULES_PER_HOOK,
  POLICY_FILE_SUFFIXES,
  SELECTOR_LIST_TYPES,
  formatPolicyError,
  formatPolicyIssue,
  loadPolicies,
  parsePolicyText,
  validatePolicySet,
} from './policy/load.js';
export type { LoadedPolicy, LoadResult, PolicyError, PolicyIssue, PolicyPath } from './policy/load.js';
export { PolicyValidationError, definePolicy, definePolicySet, policyToYaml } from './policy/define.js';

// The JSON event stream (docs/events.md).
export * from './events/schema.js';

// The agent, as a library: start it with policies, subscribe to events,
// react (agent.on('exec', e => agent.listAdd(...))), change lists, stop.
export { Agent, DEFAULT_LISTS_PATH } from './agent/agent.js';
export type { AgentOptions } from './agent/agent.js';
export type { AgentControl, AgentStatus, ApplyResult, ListChange, ListView, LoadedPolicySource } from './agent/control-api.js';
export { evaluatePolicies } from './policy/evaluate.js';
export type { Decision, EventFacts, BinaryFacts } from './policy/evaluate.js';
export { ReactionSchema, REACTION_SOURCES } from './policy/schema.js';
export type { Reaction, ReactionSource } from './policy/schema.js';

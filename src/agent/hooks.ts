// The hooks the agent's object attaches to, indexed as the counters map is
// (KRSI_HOOK_* in events.h).
import { KRSI_HOOK_BPRM_CHECK, KRSI_HOOK_BPRM_COMMITTED, KRSI_HOOK_COUNT } from '../abi/generated.js';

export interface HookInfo {
  /** Counter index (KRSI_HOOK_*). */
  index: number;
  /** The kernel hook, as users know it. */
  hook: string;
  /** The BPF program attached to it. */
  program: string;
}

export const hooks: readonly HookInfo[] = [
  { index: KRSI_HOOK_BPRM_CHECK, hook: 'bprm_check_security', program: 'exec_check' },
  { index: KRSI_HOOK_BPRM_COMMITTED, hook: 'bprm_committed_creds', program: 'exec_committed' },
];

if (hooks.length !== KRSI_HOOK_COUNT) {
  throw new Error(`src/agent/hooks.ts lists ${hooks.length} hooks but events.h has KRSI_HOOK_COUNT ${KRSI_HOOK_COUNT}`);
}

// The programs of krsi.bpf.o the agent attaches at start, from the hook
// families (src/families/): the kernel hook each is attached to, and its
// counters (index KRSI_HOOK_* of the counters map).
import { KRSI_HOOK_COUNT } from '../abi/generated.js';
import { PROGRAMS } from '../families/index.js';

export interface HookInfo {
  /** Counter index (KRSI_HOOK_*). */
  index: number;
  /** The kernel hook, as users know it. */
  hook: string;
  /** The BPF program attached to it. */
  program: string;
  /**
   * Enforcing programs are attached once the policy is in place; the others
   * (bookkeeping) first, so that what they track is current from then on.
   */
  enforcing: boolean;
}

/** The programs with counters, in attach order (bookkeeping ones first). */
export const hooks: readonly HookInfo[] = PROGRAMS.flatMap((p) =>
  p.counter === undefined || (p.role !== 'bookkeeping' && p.role !== 'enforcing')
    ? []
    : [{ index: p.counter, hook: p.hook, program: p.program, enforcing: p.role === 'enforcing' }],
);

for (const h of hooks) {
  if (h.index >= KRSI_HOOK_COUNT) throw new Error(`src/families: counter index ${h.index} of ${h.program} is out of range`);
}

export function programsInAttachOrder(): { bookkeeping: string[]; enforcing: string[] } {
  return {
    bookkeeping: hooks.filter((h) => !h.enforcing).map((h) => h.program),
    enforcing: hooks.filter((h) => h.enforcing).map((h) => h.program),
  };
}

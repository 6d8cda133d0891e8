// BPF program loads (bpf/hooks/bpfload.bpf.c): the bpf policy hook.
import { z } from 'zod';
import { KRSI_DIM_PROG_TYPE, KRSI_EVENT_BPF, KRSI_HOOK_BPF, KRSI_PHOOK_BPF } from '../abi/generated.js';
import { BpfEventSchema, decodeBpfRecord } from '../events/bpf.js';
import { quoteArg } from '../events/text.js';
import { BPF_PROG_TYPES, progTypeNumber } from '../policy/bpf-prog-types.js';
import { valueSet } from '../policy/selector-values.js';
import { defineFamily, eventSpec, POLICY_NEEDS, policyHook } from './family.js';

export const bpfload = defineFamily({
  name: 'bpfload',
  programs: [
    {
      program: 'bpf_load_check',
      hook: 'bpf',
      counter: KRSI_HOOK_BPF,
      role: 'enforcing',
      needs: POLICY_NEEDS,
      // 7.x's bpf hook has a 4th argument, `bool kernel`, before ret.
      variant: { program: 'bpf_load_check_k', func: 'bpf_lsm_bpf', args: 4 },
    },
  ],
  policyHooks: [
    policyHook('bpf', KRSI_PHOOK_BPF, { selectors: ['prog_type'], programs: ['bpf_load_check'] }),
  ],
  selectors: {
    prog_type: {
      dim: KRSI_DIM_PROG_TYPE,
      lists: [],
      schema: valueSet(z.enum(BPF_PROG_TYPES).describe('a BPF program type: kprobe, tracing, lsm, xdp, socket_filter, ... (BPF_PROG_TYPE_* in lower case)')),
      description: 'bpf: the type of the program being loaded',
    },
  },
  facts: {
    /** The program type (enum bpf_prog_type). */
    prog_type: z
      .union([z.enum(BPF_PROG_TYPES).transform((n) => progTypeNumber(n)), z.number().int().min(0).max(0xffff_ffff)])
      .describe('a program type by name (kprobe, lsm, ...) or number'),
  },
  records: [{ type: KRSI_EVENT_BPF, decode: decodeBpfRecord }],
  events: [
    eventSpec({
      schema: BpfEventSchema,
      doc: `A \`bpf(BPF_PROG_LOAD)\`, from the \`bpf\` LSM hook: the program's type, name and
size. Selectors: [signals/process.md](signals/process.md).`,
      what: (e) => `prog_load ${e.bpf.prog_type} ${quoteArg(e.bpf.prog_name)} (${e.bpf.insn_count} insns)`,
    }),
  ],
});

// ptrace (bpf/hooks/ptrace.bpf.c): the ptrace policy hook, on attaches and
// PTRACE_TRACEME.
import { KRSI_DIM_TARGET, KRSI_EVENT_PTRACE, KRSI_HOOK_PTRACE_ACCESS, KRSI_HOOK_PTRACE_TRACEME, KRSI_PHOOK_PTRACE } from '../abi/generated.js';
import { PtraceEventSchema, decodePtraceRecord } from '../events/ptrace.js';
import { printable, quoteArg } from '../events/text.js';
import { BinaryFactsSchema } from '../policy/fact-values.js';
import { BinarySelectorSchema } from '../policy/selector-values.js';
import { defineFamily, eventSpec, POLICY_NEEDS, policyHook } from './family.js';

export const ptrace = defineFamily({
  name: 'ptrace',
  programs: [
    { program: 'ptrace_attach', hook: 'ptrace_access_check', counter: KRSI_HOOK_PTRACE_ACCESS, role: 'enforcing', needs: POLICY_NEEDS },
    { program: 'ptrace_traceme', hook: 'ptrace_traceme', counter: KRSI_HOOK_PTRACE_TRACEME, role: 'enforcing', needs: POLICY_NEEDS },
  ],
  policyHooks: [
    policyHook('ptrace', KRSI_PHOOK_PTRACE, { selectors: ['target'], programs: ['ptrace_attach', 'ptrace_traceme'] }),
  ],
  selectors: {
    target: {
      dim: KRSI_DIM_TARGET,
      lists: ['path', 'inode', 'sha256'],
      schema: BinarySelectorSchema,
      description: "ptrace: the other process's executable: the tracee (attach) or the tracer (traceme)",
    },
  },
  facts: {
    /** The other process's executable. */
    target: BinaryFactsSchema,
  },
  records: [{ type: KRSI_EVENT_PTRACE, decode: decodePtraceRecord }],
  events: [
    eventSpec({
      schema: PtraceEventSchema,
      doc: `A ptrace relation about to be made: an attach (\`ptrace_access_check\` in attach
mode: \`ptrace(PTRACE_ATTACH)\`, \`/proc/PID/mem\`, \`process_vm_writev\`), or
\`PTRACE_TRACEME\` (\`ptrace_traceme\`); \`target\` is the other process. Samples and
selectors: [signals/process.md](signals/process.md).`,
      what: (e) => {
        const t = e.ptrace.target;
        return `${e.ptrace.request} ${e.ptrace.request === 'traceme' ? 'by parent ' : ''}pid=${t.pid} uid=${t.uid} comm=${quoteArg(t.comm)} ${printable(t.exe)}`;
      },
    }),
  ],
});

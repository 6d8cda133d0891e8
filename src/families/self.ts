// Self-protection (bpf/hooks/self.bpf.c): the agent's process, maps,
// programs, links and pins, defended from every other process.
import { KRSI_EVENT_TAMPER } from '../abi/generated.js';
import { TamperEventSchema, decodeTamperRecord } from '../events/tamper.js';
import { defineFamily, eventSpec } from './family.js';

export const self = defineFamily({
  name: 'self',
  programs: [
    { program: 'self_exit', hook: 'sched_process_exit', role: 'self', needs: [] },
    { program: 'self_task_kill', hook: 'task_kill', role: 'self', needs: ['currentTaskBtf'] },
    { program: 'self_ptrace', hook: 'ptrace_access_check', role: 'self', needs: ['currentTaskBtf'] },
    // 7.x's bpf hook has a 4th argument, `bool kernel`, before ret.
    { program: 'self_bpf', hook: 'bpf', role: 'self', needs: ['currentTaskBtf'], variant: { program: 'self_bpf_k', func: 'bpf_lsm_bpf', args: 4 } },
    { program: 'self_bpf_map', hook: 'bpf_map', role: 'self', needs: ['currentTaskBtf'] },
    { program: 'self_bpf_prog', hook: 'bpf_prog', role: 'self', needs: ['currentTaskBtf'] },
    { program: 'self_unlink', hook: 'inode_unlink', role: 'self', needs: ['currentTaskBtf'] },
    { program: 'self_rmdir', hook: 'inode_rmdir', role: 'self', needs: ['currentTaskBtf'] },
    { program: 'self_rename', hook: 'inode_rename', role: 'self', needs: ['currentTaskBtf'] },
    { program: 'self_umount', hook: 'sb_umount', role: 'self', needs: ['currentTaskBtf'] },
  ],
  policyHooks: [],
  selectors: {},
  facts: {},
  records: [{ type: KRSI_EVENT_TAMPER, decode: decodeTamperRecord }],
  events: [
    eventSpec({
      schema: TamperEventSchema,
      doc: `An attempt on the agent that self-protection denied (\`docs/threat-model.md\`):
\`attempt\` says what was tried, \`detail\` the signal, bpf command or program
type, or ptrace mode, \`target\` the agent's pid, the object id or the pin's
inode, \`process\` who tried. Tamper events travel on the decisions ring: a
flood of telemetry cannot hide them.`,
    }),
  ],
});

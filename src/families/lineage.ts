// The acting process and its lineage (bpf/hooks/lineage.bpf.c): the fork
// tracepoint that passes binary classes from parent to child, and the
// selectors every policy hook has, about the acting process.
import { KRSI_DIM_ANCESTOR, KRSI_DIM_BINARY, KRSI_DIM_CGROUP, KRSI_DIM_GID, KRSI_DIM_PARENT, KRSI_DIM_UID, KRSI_HOOK_TASK_FORK } from '../abi/generated.js';
import { BinaryFactsSchema, u32, u64 } from '../policy/fact-values.js';
import { BinarySelectorSchema, CgroupSelectorSchema, idSet } from '../policy/selector-values.js';
import { z } from 'zod';
import { defineFamily } from './family.js';

const executable = ['path', 'inode', 'sha256'] as const;

export const lineage = defineFamily({
  name: 'lineage',
  programs: [
    { program: 'lineage_fork', hook: 'sched_process_fork', counter: KRSI_HOOK_TASK_FORK, role: 'bookkeeping', needs: ['taskStorage'] },
    // bpf/hooks/proc_snapshot.bpf.c: the processes older than the agent, read once at start.
    { program: 'proc_snapshot', hook: 'iter/task', role: 'on-demand', needs: ['iterDPath'] },
  ],
  policyHooks: [],
  selectors: {
    binary: {
      dim: KRSI_DIM_BINARY,
      lists: executable,
      schema: BinarySelectorSchema, description: 'exec: the file executed; other hooks: the executable of the acting process',
    },
    parent: { dim: KRSI_DIM_PARENT, lists: executable, schema: BinarySelectorSchema, description: "the parent process's executable" },
    ancestor: { dim: KRSI_DIM_ANCESTOR, lists: executable, schema: BinarySelectorSchema, description: 'the executable of any ancestor process' },
    uid: { dim: KRSI_DIM_UID, lists: ['uid'], schema: idSet, description: 'real user id of the acting process' },
    gid: { dim: KRSI_DIM_GID, lists: ['gid'], schema: idSet, description: 'real group id of the acting process' },
    cgroup: { dim: KRSI_DIM_CGROUP, lists: ['cgroup'], schema: CgroupSelectorSchema, description: 'the cgroup v2 of the acting process' },
  },
  facts: {
    binary: BinaryFactsSchema,
    parent: BinaryFactsSchema,
    ancestors: z.array(BinaryFactsSchema),
    uid: u32,
    gid: u32,
    /** The cgroup's id and its ancestors' ids. */
    cgroups: z.array(u64),
    /** Whether the lock point was reached: rules with afterLockPoint are in force only then. */
    lockPoint: z.boolean(),
  },
  records: [],
  events: [],
});

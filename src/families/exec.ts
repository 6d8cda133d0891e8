// Exec (bpf/hooks/exec.bpf.c, exec_env.bpf.c): the policy's exec hook, the
// binary classes every exec computes, and the exec event.
import { z } from 'zod';
import {
  KRSI_DIM_ENV,
  KRSI_DIM_FILELESS,
  KRSI_EVENT_EXEC,
  KRSI_HOOK_BPRM_CHECK,
  KRSI_HOOK_BPRM_COMMITTED,
  KRSI_HOOK_EXEC_ENV,
  KRSI_HOOK_EXEC_HASH,
  KRSI_PHOOK_EXEC,
} from '../abi/generated.js';
import { ExecEventSchema, decodeExecRecord } from '../events/exec.js';
import { nonEmpty } from '../policy/fact-values.js';
import { stringSet } from '../policy/selector-values.js';
import { defineFamily, eventSpec, POLICY_NEEDS, policyHook } from './family.js';

export const exec = defineFamily({
  name: 'exec',
  programs: [
    { program: 'exec_committed', hook: 'bprm_committed_creds', counter: KRSI_HOOK_BPRM_COMMITTED, role: 'bookkeeping', needs: POLICY_NEEDS },
    // Sleepable: the new image's environment. Attached after exec_committed so
    // that it runs before it: BPF LSM trampolines run the most recently attached
    // program first.
    { program: 'exec_env_scan', hook: 'bprm_committed_creds (environment)', counter: KRSI_HOOK_EXEC_ENV, role: 'bookkeeping', needs: ['lsmSleepable', ...POLICY_NEEDS] },
    { program: 'exec_check', hook: 'bprm_check_security', counter: KRSI_HOOK_BPRM_CHECK, role: 'enforcing', needs: POLICY_NEEDS },
    // Attached after exec_check so that it runs before it, for the same reason.
    { program: 'exec_hash', hook: 'bprm_check_security (IMA hash)', counter: KRSI_HOOK_EXEC_HASH, role: 'enforcing', needs: ['lsmSleepable', ...POLICY_NEEDS] },
  ],
  policyHooks: [
    policyHook('exec', KRSI_PHOOK_EXEC, { selectors: ['env', 'fileless'], programs: ['exec_check'], actions: ['audit', 'allow', 'deny', 'kill', 'secureexec'] }),
  ],
  selectors: {
    env: { dim: KRSI_DIM_ENV, lists: ['env'], schema: stringSet('environment variable name'), description: 'exec: names present in the new environment' },
    fileless: {
      dim: KRSI_DIM_FILELESS,
      lists: [],
      schema: z.boolean(),
      description: 'exec: true matches a file that is on no file system: a memfd, or a file already unlinked (or O_TMPFILE); false the others',
    },
  },
  facts: {
    /** Names of the environment variables. */
    env: z.array(nonEmpty),
    /** The file is a memfd or has no name left. */
    fileless: z.boolean(),
  },
  records: [{ type: KRSI_EVENT_EXEC, decode: decodeExecRecord }],
  events: [
    eventSpec({
      schema: ExecEventSchema,
      doc: `One per exec. Allowed execs are reported from the \`bprm_committed_creds\` hook,
after the point of no return, so \`process\` is the new image (its comm, its
credentials after a setuid exec) and \`argv\` is read from its new stack. Denied
execs are reported from \`bprm_check_security\`, which refused them: \`process\` is
the caller, and \`argv\` is what the caller passed to \`execve\`/\`execveat\`.
\`krsi run --no-allowed\` reports only the noteworthy ones (denied, audited, monitored).
Fileless execs: [signals/self-and-fileless.md](signals/self-and-fileless.md); the
recorded environment: [signals/environment.md](signals/environment.md); digests:
[signals/content.md](signals/content.md).`,
    }),
  ],
});

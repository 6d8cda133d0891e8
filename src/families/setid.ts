// User and group id changes (bpf/hooks/setid.bpf.c): the setid policy hook.
import { KRSI_DIM_NEW_GID, KRSI_DIM_NEW_UID, KRSI_EVENT_SETID, KRSI_HOOK_SETGID, KRSI_HOOK_SETUID, KRSI_PHOOK_SETID } from '../abi/generated.js';
import { SetidEventSchema, decodeSetidRecord } from '../events/setid.js';
import { u32 } from '../policy/fact-values.js';
import { idSet } from '../policy/selector-values.js';
import { defineFamily, eventSpec, POLICY_NEEDS, policyHook } from './family.js';

export const setid = defineFamily({
  name: 'setid',
  programs: [
    { program: 'setuid_check', hook: 'task_fix_setuid', counter: KRSI_HOOK_SETUID, role: 'enforcing', needs: POLICY_NEEDS },
    { program: 'setgid_check', hook: 'task_fix_setgid', counter: KRSI_HOOK_SETGID, role: 'enforcing', needs: POLICY_NEEDS },
  ],
  policyHooks: [
    policyHook('setid', KRSI_PHOOK_SETID, { selectors: ['new_uid', 'new_gid'], programs: ['setuid_check', 'setgid_check'] }),
  ],
  selectors: {
    new_uid: { dim: KRSI_DIM_NEW_UID, lists: ['uid'], schema: idSet, description: 'setid: the effective user id the process changes to' },
    new_gid: { dim: KRSI_DIM_NEW_GID, lists: ['gid'], schema: idSet, description: 'setid: the effective group id the process changes to' },
  },
  facts: {
    /** The effective ids changed to. */
    new_uid: u32,
    new_gid: u32,
  },
  records: [{ type: KRSI_EVENT_SETID, decode: decodeSetidRecord }],
  events: [
    eventSpec({
      schema: SetidEventSchema,
      doc: `A change of user or group ids (\`task_fix_setuid\` for setuid, setreuid,
setresuid and setfsuid; \`task_fix_setgid\` for their gid twins), before it takes
effect: the ids before and those asked for. Selectors:
[signals/process.md](signals/process.md).`,
      what: (e) => {
        const k = e.setid.kind;
        const before = k === 'uid' ? e.setid.old.euid : e.setid.old.egid;
        const after = k === 'uid' ? e.setid.new.euid : e.setid.new.egid;
        return `${e.setid.call} e${k} ${before} -> ${after}`;
      },
    }),
  ],
});

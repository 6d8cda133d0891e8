// SPDX-License-Identifier: GPL-2.0
/*
 * User and group id changes: the policy's setid hook.
 *
 * task_fix_setuid runs for setuid, setreuid, setresuid and setfsuid,
 * task_fix_setgid for their gid twins, with the credentials about to be
 * committed (new) and the current ones (old), before they take effect: a
 * deny leaves the ids as they were and the call fails with EPERM.  The exec
 * of a set-user-ID file changes ids through the exec, not here.
 *
 * The uid and gid selectors see the acting process's real ids before the
 * change (as in every hook); new_uid and new_gid the effective ids after it.
 */
#include "common.h"
#include "hook.h"
#include "maps.h"
#include "outcome.h"
#include "policy.h"
#include "task.h"

char LICENSE[] SEC("license") = "GPL";

static __always_inline void ids_of(const struct cred *c, __u32 *uids, __u32 *gids)
{
	uids[0] = BPF_CORE_READ(c, uid.val);
	uids[1] = BPF_CORE_READ(c, euid.val);
	uids[2] = BPF_CORE_READ(c, suid.val);
	uids[3] = BPF_CORE_READ(c, fsuid.val);
	gids[0] = BPF_CORE_READ(c, gid.val);
	gids[1] = BPF_CORE_READ(c, egid.val);
	gids[2] = BPF_CORE_READ(c, sgid.val);
	gids[3] = BPF_CORE_READ(c, fsgid.val);
}

static __always_inline int setid_decide(struct krsi_hook_stats *stats, struct cred *new, const struct cred *old,
					int flags, __u32 kind)
{
	struct krsi_setid_event e = {};
	struct krsi_policy_ref ref;
	struct policy_eval *st;
	int verdict;

	st = policy_state();
	if (!st)
		return 0;
	if (krsi_policy_begin(KRSI_PHOOK_SETID)) {
		krsi_policy_ids();
		krsi_policy_lineage(1);
		if (krsi_policy_wants(KRSI_DIM_NEW_UID)) {
			st->value[0] = BPF_CORE_READ(new, euid.val);
			st->value[1] = st->value[2] = st->value[3] = 0;
			krsi_policy_match_value(KRSI_DIM_NEW_UID);
			krsi_policy_narrow(KRSI_DIM_NEW_UID);
		}
		if (krsi_policy_wants(KRSI_DIM_NEW_GID)) {
			st->value[0] = BPF_CORE_READ(new, egid.val);
			st->value[1] = st->value[2] = st->value[3] = 0;
			krsi_policy_match_value(KRSI_DIM_NEW_GID);
			krsi_policy_narrow(KRSI_DIM_NEW_GID);
		}
	}
	krsi_policy_decide();
	if (!policy_noteworthy(&st->ref))
		return 0;

	ref = st->ref;
	verdict = outcome_enforce(&ref, stats);
	record_begin_sized(&e.hdr, KRSI_EVENT_SETID, sizeof(e));
	fill_task(&e.task);
	e.policy = ref;
	e.kind = kind;
	e.flags = flags;
	ids_of(old, e.old_uids, e.old_gids);
	ids_of(new, e.new_uids, e.new_gids);
	outcome_report(stats, verdict != 0, &e, sizeof(e));
	return verdict;
}

SEC("lsm/task_fix_setuid")
int BPF_PROG(setuid_check, struct cred *new, const struct cred *old, int flags, int ret)
{
	struct krsi_hook_stats *stats;

	if (ret)
		return krsi_pass(ret);
	stats = hook_enter(KRSI_HOOK_SETUID);
	return setid_decide(stats, new, old, flags, KRSI_SETID_UID);
}

SEC("lsm/task_fix_setgid")
int BPF_PROG(setgid_check, struct cred *new, const struct cred *old, int flags, int ret)
{
	struct krsi_hook_stats *stats;

	if (ret)
		return krsi_pass(ret);
	stats = hook_enter(KRSI_HOOK_SETGID);
	return setid_decide(stats, new, old, flags, KRSI_SETID_GID);
}

/* Built on the stack: named here so that the type reaches the object's BTF (scripts/gen-abi.ts). */
const struct krsi_setid_event *krsi_abi_setid_event __attribute__((unused));

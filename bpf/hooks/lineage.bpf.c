// SPDX-License-Identifier: GPL-2.0
/*
 * Lineage: a child starts with its parent's binary classes, and the
 * parent's own classes join its ancestors.  Exec then replaces the child's
 * own classes (bpf/hooks/exec.bpf.c), never its ancestors.
 *
 * Classes are valid for the generation they were computed in; a parent whose
 * classes are from another generation passes on "unknown", which the agent
 * repairs from /proc after a swap, and which deny rules treat as a match
 * meanwhile (fail closed, bpf/lib/policy.bpf.c).
 */
#include "common.h"
#include "hook.h"
#include "maps.h"
#include "policy.h"

SEC("tp_btf/sched_process_fork")
int BPF_PROG(lineage_fork, struct task_struct *parent, struct task_struct *child)
{
	struct krsi_task_ctx *pctx, *cctx;

	hook_enter(KRSI_HOOK_TASK_FORK);
	if (parent->flags & PF_KTHREAD) {
		/*
		 * A usermode helper (modprobe, core_pattern, hotplug): its
		 * lineage is the kernel's, known and in no class, so that
		 * unknown lineage can fail closed for everything else.
		 */
		cctx = bpf_task_storage_get(&task_ctx, child, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (cctx) {
			cctx->self = cctx->ancestors = 0;
			cctx->self_generation = cctx->ancestors_generation = krsi_policy_generation();
		}
		return 0;
	}
	/*
	 * A thread started before the agent has no context of its own: the
	 * agent seeds processes (a pidfd names a thread group), so fall back
	 * to the group leader's, as the policy does (lineage_ctx()).
	 */
	pctx = bpf_task_storage_get(&task_ctx, parent, 0, 0);
	if (!pctx || pctx->self_generation != krsi_policy_generation()) {
		struct krsi_task_ctx *leader = bpf_task_storage_get(&task_ctx, parent->group_leader, 0, 0);

		if (leader)
			pctx = leader;
	}
	if (!pctx)
		return 0;
	cctx = bpf_task_storage_get(&task_ctx, child, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!cctx)
		return 0;
	cctx->self = pctx->self;
	cctx->self_generation = pctx->self_generation;
	if (pctx->ancestors_generation == pctx->self_generation) {
		cctx->ancestors = pctx->ancestors | pctx->self;
		cctx->ancestors_generation = pctx->self_generation;
	} else {
		cctx->ancestors = 0;
		cctx->ancestors_generation = 0;
	}
	return 0;
}

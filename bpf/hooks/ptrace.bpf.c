// SPDX-License-Identifier: GPL-2.0
/*
 * ptrace: the policy's ptrace hook.
 *
 * ptrace_access_check with PTRACE_MODE_ATTACH is what the kernel asks before
 * one process gets control of another: ptrace(PTRACE_ATTACH or
 * PTRACE_SEIZE), and the accesses it treats alike, opening /proc/PID/mem,
 * process_vm_readv/writev, pidfd_getfd.  Read-only inspection
 * (PTRACE_MODE_READ: /proc/PID/stat, environ, kcmp) is not looked at.
 * ptrace_traceme is PTRACE_TRACEME: the acting process offers its parent to
 * trace it.  A process's own threads never come here.
 *
 * The acting process is the one calling ptrace(2) (attach) or asking to be
 * traced (traceme); the target is the other one, whose executable the
 * target selector sees through its binary classes.
 */
#include "common.h"
#include "hook.h"
#include "maps.h"
#include "outcome.h"
#include "policy.h"
#include "task.h"
#include "path_walk.h"

char LICENSE[] SEC("license") = "GPL";

#define PTRACE_MODE_ATTACH 0x02

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct krsi_ptrace_event);
} ptrace_scratch SEC(".maps");

/* The target's binary classes, as krsi_policy_lineage() finds the actor's. */
static __always_inline void target_dim(struct policy_eval *st, struct task_struct *target)
{
	__u64 generation = krsi_policy_generation();
	struct krsi_task_ctx *ctx;
	__u64 self = 0, gen = 0;

	ctx = bpf_task_storage_get(&task_ctx, target, 0, 0);
	if (ctx) {
		self = ctx->self;
		gen = ctx->self_generation;
	}
	if (gen != generation) {
		ctx = bpf_task_storage_get(&task_ctx, target->group_leader, 0, 0);
		if (ctx) {
			self = ctx->self;
			gen = ctx->self_generation;
		}
	}
	st->value[0] = self;
	st->value[1] = gen;
	krsi_policy_classes(KRSI_DIM_TARGET, KRSI_CLASS_TARGET);
}

static __always_inline int ptrace_decide(struct krsi_hook_stats *stats, struct task_struct *target,
					 __u32 request, __u32 mode)
{
	struct krsi_ptrace_event *e;
	struct krsi_policy_ref ref;
	struct policy_eval *st;
	struct file *exe;
	__u32 zero = 0;
	long n = 0;
	int verdict;

	st = policy_state();
	if (!st)
		return 0;
	if (krsi_policy_begin(KRSI_PHOOK_PTRACE)) {
		krsi_policy_ids();
		krsi_policy_lineage(1);
		if (krsi_policy_wants(KRSI_DIM_TARGET))
			target_dim(st, target);
	}
	krsi_policy_decide();
	if (!policy_noteworthy(&st->ref))
		return 0;

	ref = st->ref;
	verdict = outcome_enforce(&ref, stats);
	e = bpf_map_lookup_elem(&ptrace_scratch, &zero);
	if (!e)
		return verdict;
	record_begin(&e->hdr, KRSI_EVENT_PTRACE);
	fill_task(&e->task);
	e->policy = ref;
	fill_task_of(target, &e->target);
	e->request = request;
	e->mode = mode;
	e->flags = 0;
	exe = BPF_CORE_READ(target, mm, exe_file);
	e->target_ino = exe ? BPF_CORE_READ(exe, f_inode, i_ino) : 0;
	e->target_dev = exe ? BPF_CORE_READ(exe, f_inode, i_sb, s_dev) : 0;
	if (exe)
		n = resolve_walk_path(st, &exe->f_path);
	barrier_var(n);
	if (n > 0 && n <= KRSI_PATH_MAX && bpf_probe_read_kernel(e->data, n, st->path) == 0) {
		e->path_len = n;
	} else {
		e->path_len = 0;
		e->flags |= KRSI_PTRACE_TARGET_PATH_UNRESOLVED;
	}
	e->hdr.size = __builtin_offsetof(struct krsi_ptrace_event, data) + e->path_len;
	if (e->hdr.size > sizeof(*e))
		e->hdr.size = sizeof(*e);
	outcome_report(stats, verdict != 0, e, e->hdr.size);
	return verdict;
}

SEC("lsm/ptrace_access_check")
int BPF_PROG(ptrace_attach, struct task_struct *child, unsigned int mode, int ret)
{
	struct krsi_hook_stats *stats;

	if (ret)
		return krsi_pass(ret);
	if (!(mode & PTRACE_MODE_ATTACH))
		return 0;
	stats = hook_enter(KRSI_HOOK_PTRACE_ACCESS);
	return ptrace_decide(stats, child, KRSI_PTRACE_ATTACH, mode);
}

SEC("lsm/ptrace_traceme")
int BPF_PROG(ptrace_traceme, struct task_struct *parent, int ret)
{
	struct krsi_hook_stats *stats;

	if (ret)
		return krsi_pass(ret);
	stats = hook_enter(KRSI_HOOK_PTRACE_TRACEME);
	return ptrace_decide(stats, parent, KRSI_PTRACE_TRACEME, 0);
}

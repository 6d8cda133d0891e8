/* SPDX-License-Identifier: GPL-2.0 */
#ifndef KRSI_TASK_H
#define KRSI_TASK_H

#include "common.h"

/* Fills the identity of the current task as a hook sees it. */
static __always_inline void fill_task(struct krsi_task *t)
{
	struct task_struct *task = bpf_get_current_task_btf();
	const struct cred *cred = task->cred;
	__u64 uid_gid = bpf_get_current_uid_gid();
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	t->pid = (__u32)pid_tgid;
	t->tgid = pid_tgid >> 32;
	t->ppid = task->real_parent->tgid;
	t->uid = (__u32)uid_gid;
	t->gid = uid_gid >> 32;
	t->euid = cred->euid.val;
	t->egid = cred->egid.val;
	t->__pad = 0;
	t->cgroup_id = bpf_get_current_cgroup_id();
	t->start_ns = task->start_boottime;
	bpf_get_current_comm(t->comm, sizeof(t->comm));
}

/* The identity of another task than current (a ptrace target). */
static __always_inline void fill_task_of(struct task_struct *task, struct krsi_task *t)
{
	t->pid = BPF_CORE_READ(task, pid);
	t->tgid = BPF_CORE_READ(task, tgid);
	t->ppid = BPF_CORE_READ(task, real_parent, tgid);
	t->uid = BPF_CORE_READ(task, cred, uid.val);
	t->gid = BPF_CORE_READ(task, cred, gid.val);
	t->euid = BPF_CORE_READ(task, cred, euid.val);
	t->egid = BPF_CORE_READ(task, cred, egid.val);
	t->__pad = 0;
	t->cgroup_id = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id);
	t->start_ns = BPF_CORE_READ(task, start_boottime);
	BPF_CORE_READ_STR_INTO(&t->comm, task, comm);
}

#endif /* KRSI_TASK_H */

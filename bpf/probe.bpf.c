// SPDX-License-Identifier: GPL-2.0
/*
 * Feature probes for `krsi doctor`: each program is loaded and attached on
 * its own, to learn what this kernel really accepts.  They change nothing:
 * the LSM ones pass on the previous decision, the others only return.
 */
#include "common.h"

char LICENSE[] SEC("license") = "GPL";

/* syslog(2) is rare and its hook's signature has not changed in years. */
SEC("?lsm/syslog")
int BPF_PROG(probe_lsm, int type, int ret)
{
	return ret;
}

/* A sleepable program needs a hook from the kernel's sleepable list. */
SEC("?lsm.s/bprm_committed_creds")
int BPF_PROG(probe_lsm_sleepable, struct linux_binprm *bprm)
{
	return 0;
}

SEC("?tp_btf/sched_process_exec")
int BPF_PROG(probe_tracepoint, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	return 0;
}

/* The ring buffer as programs use it: reserve and discard. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} probe_ring SEC(".maps");

SEC("?tp_btf/sched_process_exec")
int BPF_PROG(probe_ringbuf, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u64 *slot = bpf_ringbuf_reserve(&probe_ring, sizeof(*slot), 0);

	if (slot)
		bpf_ringbuf_discard(slot, 0);
	return 0;
}

/*
 * Helpers krsi's programs need, each called from an LSM program as they
 * call it (the agent leaves out the programs whose helper is missing).
 */
static long probe_loop_step(__u64 i, void *ctx)
{
	return 1;
}

SEC("?lsm/syslog")
int BPF_PROG(probe_loop, int type, int ret)
{
	bpf_loop(1, probe_loop_step, NULL, 0);
	return ret;
}

SEC("?lsm/syslog")
int BPF_PROG(probe_current_task_btf, int type, int ret)
{
	struct task_struct *task = bpf_get_current_task_btf();

	return task->pid < 0 ? ret : ret;
}

/* bpf_d_path() from a task iterator (the process snapshot). */
SEC("?iter/task")
int probe_iter_d_path(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;
	char buf[16];

	if (task && task->mm && task->mm->exe_file)
		bpf_d_path(&task->mm->exe_file->f_path, buf, sizeof(buf));
	return 0;
}

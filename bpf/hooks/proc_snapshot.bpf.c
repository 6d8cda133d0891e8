// SPDX-License-Identifier: GPL-2.0
/*
 * A snapshot of the running processes, for the agent: each thread group's
 * tgid, parent, and executable (device, inode, path).
 *
 * The agent needs this to give processes older than a policy their binary
 * classes (src/agent/seed-classes.ts).  It cannot read /proc/PID/exe for
 * that: it confines itself with Landlock, and a Landlock domain may not
 * ptrace - nor read the exe link of - processes outside it.  A task
 * iterator sees every task without such checks, in one read.
 *
 * Records are struct krsi_proc_entry followed by path_len bytes of path.
 */
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct krsi_proc_record);
} proc_snapshot_scratch SEC(".maps");

SEC("iter/task")
int proc_snapshot(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;
	struct krsi_proc_record *r;
	struct file *exe;
	struct inode *inode;
	__u32 zero = 0, len;
	long n;

	/* One line per process: the leader stands for its threads. */
	if (!task || task->pid != task->tgid)
		return 0;
	r = bpf_map_lookup_elem(&proc_snapshot_scratch, &zero);
	if (!r)
		return 0;
	__builtin_memset(&r->entry, 0, sizeof(r->entry));
	r->entry.tgid = task->tgid;
	r->entry.ppid = task->real_parent ? task->real_parent->tgid : 0;
	r->entry.start_ns = task->start_boottime;
	exe = task->mm ? task->mm->exe_file : NULL;
	if (exe) {
		inode = exe->f_inode;
		r->entry.dev = inode->i_sb->s_dev;
		r->entry.ino = inode->i_ino;
		r->entry.flags |= KRSI_PROC_HAS_EXE;
		n = bpf_d_path(&exe->f_path, r->path, sizeof(r->path));
		if (n > 0 && n <= KRSI_PATH_MAX)
			r->entry.path_len = n - 1; /* without the NUL */
	}
	bpf_seq_write(seq, &r->entry, sizeof(r->entry));
	len = r->entry.path_len;
	/* The mask, not only the test: clang may test one register and pass another. */
	if (len > 0 && len < KRSI_PATH_MAX) {
		barrier_var(len);
		bpf_seq_write(seq, r->path, len & (KRSI_PATH_MAX - 1));
	}
	return 0;
}

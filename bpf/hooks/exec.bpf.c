// SPDX-License-Identifier: GPL-2.0
/*
 * Exec: the first signal and the first mitigation.
 *
 * bprm_check_security decides: an exec of a file whose identity (dev, inode)
 * is in deny_exec fails with -EPERM, whatever name, hard link or symlink it
 * is run through, and a denial record goes to the decisions ring.
 *
 * bprm_committed_creds reports every exec that happened, after the point of
 * no return, when current already runs the new image: its credentials, its
 * comm and its argv (read from the new stack, where the kernel has just
 * copied it) are the ones the process really has.
 *
 * Both programs are non-sleepable: every user page they read was touched by
 * the kernel during this very exec, so non-faulting reads succeed, and a
 * non-sleepable program may use a per-CPU scratch record safely.
 */
#include "common.h"
#include "maps.h"
#include "task.h"

char LICENSE[] SEC("license") = "GPL";

/* Emit allowed execs on the events ring (denials are always emitted). */
const volatile __u32 cfg_emit_allowed = 1;
/* Bytes of argv strings an event carries, at most KRSI_ARGS_MAX. */
const volatile __u32 cfg_args_max = KRSI_ARGS_MAX;

/* Files whose exec is denied; the value is the rule id reported in events. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct krsi_inode_key);
	__type(value, __u32);
} deny_exec SEC(".maps");

/* Scratch record: too large for the 512-byte BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct krsi_exec_event);
} exec_scratch SEC(".maps");

#define ARGS_BASE_MAX (KRSI_PATH_MAX + KRSI_FILENAME_MAX)

static __always_inline __u64 args_limit(void)
{
	__u64 limit = cfg_args_max;

	return limit > KRSI_ARGS_MAX ? KRSI_ARGS_MAX : limit;
}

/*
 * Appends the user string at src to the argv bytes of e, which start at
 * data[base] and hold *len bytes.  Returns 0 to go on, 1 to stop.
 *
 * Offsets are 64-bit on purpose: with 32-bit ones clang bounds-checks a
 * zero-extended copy and hands the verifier the unchecked register.
 */
static __always_inline int append_arg(struct krsi_exec_event *e, __u64 base,
				      __u64 *len, const char *src)
{
	__u64 limit = args_limit();
	__u64 off = *len;
	__u64 room;
	long n;
	char last;

	if (off >= limit) {
		e->flags |= KRSI_EXEC_ARGV_TRUNCATED;
		return 1;
	}
	barrier_var(base);
	if (base > ARGS_BASE_MAX)
		return 1;
	barrier_var(off);
	if (off >= KRSI_ARGS_MAX)
		return 1;
	room = limit - off;
	barrier_var(room);
	if (room > KRSI_ARGS_MAX || room == 0)
		return 1;
	n = bpf_probe_read_user_str(&e->data[base + off], room, src);
	if (n <= 0) {
		e->flags |= KRSI_EXEC_ARGV_UNREADABLE;
		return 1;
	}
	*len = off + n;
	e->args_count++;
	/* A string that filled the room exactly may have been cut short. */
	if (n == room &&
	    (bpf_probe_read_user(&last, 1, src + n - 1) != 0 || last != '\0')) {
		e->flags |= KRSI_EXEC_ARGV_TRUNCATED;
		return 1;
	}
	return 0;
}

/* argv of the new image: argc NUL-terminated strings from bprm->p on. */
static __always_inline __u64 read_new_argv(struct krsi_exec_event *e, __u64 base,
					   struct linux_binprm *bprm)
{
	const char *p = (const char *)bprm->p;
	__u64 len = 0;
	__u64 start;
	int i;

	for (i = 0; i < KRSI_ARGV_MAX && i < e->argc; i++) {
		start = len;
		if (append_arg(e, base, &len, p))
			break;
		p += len - start;
	}
	return len;
}

/*
 * argv as the caller passed it, for an exec denied before the new image
 * exists: the pointer array the execve/execveat syscall received, read from
 * the caller's registers at syscall entry.  Only x86-64's native syscalls are
 * understood; anything else (compat, a kernel-initiated exec) is reported as
 * unreadable, not guessed at.
 */
static __always_inline __u64 read_caller_argv(struct krsi_exec_event *e, __u64 base)
{
	const char *const *argv = 0;
	const char *arg;
	__u64 len = 0;
	int i;

#if defined(__TARGET_ARCH_x86)
	struct task_struct *task = bpf_get_current_task_btf();
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);

	if (!(task->flags & PF_KTHREAD)) {
		if (regs->orig_ax == 59)	/* __NR_execve */
			argv = (const char *const *)regs->si;
		else if (regs->orig_ax == 322)	/* __NR_execveat */
			argv = (const char *const *)regs->dx;
	}
#endif
	if (!argv) {
		e->flags |= KRSI_EXEC_ARGV_UNREADABLE;
		return 0;
	}
	for (i = 0; i < KRSI_ARGV_MAX && i < e->argc; i++) {
		if (bpf_probe_read_user(&arg, sizeof(arg), &argv[i]) || !arg) {
			e->flags |= KRSI_EXEC_ARGV_UNREADABLE;
			break;
		}
		if (append_arg(e, base, &len, arg))
			break;
	}
	return len;
}

/*
 * Fills everything but argv; returns the offset in data[] where argv goes.
 */
static __always_inline __u64 fill_exec(struct krsi_exec_event *e,
				       struct linux_binprm *bprm, __u32 decision)
{
	struct file *file = bprm->file;
	long n;
	char last;

	e->hdr.type = KRSI_EVENT_EXEC;
	e->hdr.abi = KRSI_ABI_VERSION;
	e->hdr.time_ns = bpf_ktime_get_ns();
	fill_task(&e->task);
	e->ino = file->f_inode->i_ino;
	e->dev = file->f_inode->i_sb->s_dev;
	e->decision = decision;
	e->flags = 0;
	e->argc = bprm->argc;
	e->args_len = 0;
	e->args_count = 0;
	e->rule_id = 0;
	e->__pad = 0;

	n = bpf_d_path((struct path *)&file->f_path, e->data, KRSI_PATH_MAX);
	if (n <= 0 || n > KRSI_PATH_MAX) {
		e->flags |= KRSI_EXEC_PATH_UNRESOLVED;
		n = 0;
	}
	e->path_len = n;

	barrier_var(n);
	if (n > KRSI_PATH_MAX)
		n = KRSI_PATH_MAX;
	{
		const char *filename = bprm->filename;
		long m = bpf_probe_read_kernel_str(&e->data[n], KRSI_FILENAME_MAX, filename);

		if (m <= 0) {
			m = 0;
		} else if (m == KRSI_FILENAME_MAX &&
			   (bpf_probe_read_kernel(&last, 1, filename + m - 1) != 0 || last != '\0')) {
			e->flags |= KRSI_EXEC_FILENAME_TRUNCATED;
		}
		e->filename_len = m;
		return n + m;
	}
}

static __always_inline __u64 exec_record_size(const struct krsi_exec_event *e)
{
	__u64 size = __builtin_offsetof(struct krsi_exec_event, data) +
		     e->path_len + e->filename_len + e->args_len;

	return size > sizeof(*e) ? sizeof(*e) : size;
}

SEC("lsm/bprm_check_security")
int BPF_PROG(exec_check, struct linux_binprm *bprm, int ret)
{
	struct krsi_hook_stats *stats = hook_stats(KRSI_HOOK_BPRM_CHECK);
	struct krsi_inode_key key = {};
	struct krsi_exec_event *e;
	struct inode *inode;
	__u32 zero = 0;
	__u32 *rule;
	__u64 base;

	/* An earlier LSM program already refused: its decision stands. */
	if (ret)
		return ret;
	if (stats)
		stats->seen++;

	inode = bprm->file->f_inode;
	key.ino = inode->i_ino;
	key.dev = inode->i_sb->s_dev;
	rule = bpf_map_lookup_elem(&deny_exec, &key);
	if (!rule)
		return 0;

	/* Decided: what follows only reports it, and cannot undo it. */
	if (stats)
		stats->denied++;
	e = bpf_map_lookup_elem(&exec_scratch, &zero);
	if (!e)
		return -EPERM;
	base = fill_exec(e, bprm, KRSI_DECISION_DENY);
	e->rule_id = *rule;
	e->args_len = read_caller_argv(e, base);
	e->hdr.size = exec_record_size(e);
	emit(&decisions, stats, e, e->hdr.size);
	return -EPERM;
}

SEC("lsm/bprm_committed_creds")
int BPF_PROG(exec_committed, struct linux_binprm *bprm)
{
	struct krsi_hook_stats *stats = hook_stats(KRSI_HOOK_BPRM_COMMITTED);
	struct krsi_exec_event *e;
	__u32 zero = 0;
	__u64 base;

	if (stats)
		stats->seen++;
	if (!cfg_emit_allowed)
		return 0;
	e = bpf_map_lookup_elem(&exec_scratch, &zero);
	if (!e)
		return 0;
	base = fill_exec(e, bprm, KRSI_DECISION_ALLOW);
	e->args_len = read_new_argv(e, base, bprm);
	e->hdr.size = exec_record_size(e);
	emit(&events, stats, e, e->hdr.size);
	return 0;
}

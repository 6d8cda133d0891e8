// SPDX-License-Identifier: GPL-2.0
/*
 * Self-protection: while protection is on, no process but the agent may
 * signal or ptrace the agent, take an fd of its maps, programs or links (by
 * id or from its pins), load a program that could sit over its hooks or
 * replace its functions, remove its pins, or unmount the bpffs holding them.
 * Root included: these checks are the kernel's, after every capability
 * check has passed.  Signals the kernel itself sends (a terminal's ^C, the
 * OOM killer) do not go through task_kill and still reach the agent.
 *
 * The agent writes its tgid and its pin directories into self_state and the
 * ids of its objects into self_ids.  When it exits, sched_process_exit
 * clears the tgid: the next agent may then open the pins and take over.
 */
#include "common.h"
#include "hook.h"
#include "maps.h"
#include "task.h"

#define PTRACE_MODE_ATTACH 0x02 /* include/linux/ptrace.h */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct krsi_self_state);
} self_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct krsi_self_id);
	__type(value, __u32);
} self_ids SEC(".maps");

/* Denied attempts, per CPU, by KRSI_TAMPER_*. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KRSI_TAMPER_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} self_counters SEC(".maps");

static __always_inline struct krsi_self_state *protection(void)
{
	__u32 zero = 0;
	struct krsi_self_state *st = bpf_map_lookup_elem(&self_state, &zero);

	return st && st->protect && st->agent_tgid ? st : NULL;
}

static __always_inline int is_agent(const struct krsi_self_state *st)
{
	return (bpf_get_current_pid_tgid() >> 32) == st->agent_tgid;
}

static __always_inline int is_ours(__u32 kind, __u32 id)
{
	struct krsi_self_id key = { .kind = kind, .id = id };

	return bpf_map_lookup_elem(&self_ids, &key) != NULL;
}

/* Counts and reports a denied attempt; returns -EPERM for the hook to return. */
static __always_inline int tamper(__u32 what, __u32 detail, __u64 target)
{
	struct krsi_tamper_event e = {};
	__u64 *count;
	__u32 idx = what;

	count = bpf_map_lookup_elem(&self_counters, &idx);
	if (count)
		__sync_fetch_and_add(count, 1);
	record_begin_sized(&e.hdr, KRSI_EVENT_TAMPER, sizeof(e));
	fill_task(&e.task);
	e.what = what;
	e.detail = detail;
	e.target = target;
	emit(&decisions, NULL, &e, sizeof(e));
	return -EPERM;
}

SEC("lsm/task_kill")
int BPF_PROG(self_task_kill, struct task_struct *p, struct kernel_siginfo *info, int sig,
	     const struct cred *cred, int ret)
{
	struct krsi_self_state *st;

	if (ret)
		return krsi_pass(ret);
	st = protection();
	/* Signal 0 only asks whether the process exists. */
	if (!st || sig == 0 || p->tgid != st->agent_tgid || is_agent(st))
		return 0;
	return tamper(KRSI_TAMPER_SIGNAL, sig, p->tgid);
}

SEC("lsm/ptrace_access_check")
int BPF_PROG(self_ptrace, struct task_struct *child, unsigned int mode, int ret)
{
	struct krsi_self_state *st;

	if (ret)
		return krsi_pass(ret);
	/*
	 * Only access to the agent's memory and control of it (ptrace attach,
	 * /proc/PID/mem, process_vm_*, pidfd_getfd): read-mode checks are what
	 * ps, top and /proc/PID/{stat,environ,fd} listings do all day, and the
	 * fds they could list cannot be reopened (anonymous inodes).
	 */
	if (!(mode & PTRACE_MODE_ATTACH))
		return 0;
	st = protection();
	if (!st || child->tgid != st->agent_tgid || is_agent(st))
		return 0;
	return tamper(KRSI_TAMPER_PTRACE, mode, child->tgid);
}

/* Whether a user-space path names something under the pin root. */
static __always_inline int under_pin_root(const struct krsi_self_state *st, const char *upath)
{
	char path[KRSI_PIN_ROOT_MAX];
	__u32 len = st->pin_root_len;
	int i;

	if (len == 0 || len > KRSI_PIN_ROOT_MAX)
		return 0;
	if (bpf_probe_read_user_str(path, sizeof(path), upath) <= 0)
		return 1; /* unreadable: fail closed */
	for (i = 0; i < KRSI_PIN_ROOT_MAX; i++) {
		if (i >= len)
			return 1;
		if (path[i] != st->pin_root[i])
			return 0;
	}
	return 1;
}

static __always_inline int self_bpf_check(int cmd, union bpf_attr *attr, int ret)
{
	struct krsi_self_state *st;
	__u32 type, id, target_fd;
	__u64 pathname;

	if (ret)
		return krsi_pass(ret);
	st = protection();
	if (!st || is_agent(st))
		return 0;
	/* Fields of union bpf_attr are read with CO-RE probe reads: the
	 * verifier resolves a direct access to its anonymous members by the
	 * first one at that offset. */
	switch (cmd) {
	case BPF_LINK_GET_FD_BY_ID:
		id = BPF_CORE_READ(attr, link_id);
		if (is_ours(KRSI_SELF_LINK, id))
			return tamper(KRSI_TAMPER_BPF_LINK, cmd, id);
		break;
	case BPF_OBJ_GET:
		pathname = BPF_CORE_READ(attr, pathname);
		if (under_pin_root(st, (const char *)pathname))
			return tamper(KRSI_TAMPER_BPF_PIN, cmd, 0);
		break;
	case BPF_PROG_LOAD:
		/* Programs that could sit over krsi's hooks or replace its functions. */
		type = BPF_CORE_READ(attr, prog_type);
		target_fd = BPF_CORE_READ(attr, attach_prog_fd);
		if (type == BPF_PROG_TYPE_LSM || type == BPF_PROG_TYPE_EXT ||
		    (type == BPF_PROG_TYPE_TRACING && target_fd))
			return tamper(KRSI_TAMPER_BPF_LOAD, type, 0);
		break;
	}
	return 0;
}

KRSI_LSM_BPF_PROGRAMS(self_bpf, self_bpf_check)

/* Every fd of a map or program, by id, from a pin or otherwise, passes here. */
SEC("lsm/bpf_map")
int BPF_PROG(self_bpf_map, struct bpf_map *map, fmode_t fmode, int ret)
{
	struct krsi_self_state *st;

	if (ret)
		return krsi_pass(ret);
	st = protection();
	if (!st || is_agent(st) || !is_ours(KRSI_SELF_MAP, map->id))
		return 0;
	return tamper(KRSI_TAMPER_BPF_MAP, fmode, map->id);
}

SEC("lsm/bpf_prog")
int BPF_PROG(self_bpf_prog, struct bpf_prog *prog, int ret)
{
	struct krsi_self_state *st;

	if (ret)
		return krsi_pass(ret);
	st = protection();
	if (!st || is_agent(st) || !is_ours(KRSI_SELF_PROG, prog->aux->id))
		return 0;
	return tamper(KRSI_TAMPER_BPF_PROG, 0, prog->aux->id);
}

/*
 * Read as probes (BPF_CORE_READ): 7.x's verifier holds some of these
 * pointers as possibly NULL, and a NULL one reads as 0 here.
 */
static __always_inline int pin_dir(const struct krsi_self_state *st, struct inode *dir)
{
	__u64 ino = BPF_CORE_READ(dir, i_ino);

	return dir && BPF_CORE_READ(dir, i_sb, s_dev) == st->pin_dev &&
	       (ino == st->pin_dir_ino[0] || ino == st->pin_dir_ino[1] || ino == st->pin_dir_ino[2]);
}

SEC("lsm/inode_unlink")
int BPF_PROG(self_unlink, struct inode *dir, struct dentry *dentry, int ret)
{
	struct krsi_self_state *st;

	if (ret)
		return krsi_pass(ret);
	st = protection();
	if (!st || is_agent(st) || !pin_dir(st, dir))
		return 0;
	return tamper(KRSI_TAMPER_PIN_REMOVE, 0, BPF_CORE_READ(dentry, d_inode, i_ino));
}

SEC("lsm/inode_rmdir")
int BPF_PROG(self_rmdir, struct inode *dir, struct dentry *dentry, int ret)
{
	struct krsi_self_state *st;

	if (ret)
		return krsi_pass(ret);
	st = protection();
	if (!st || is_agent(st))
		return 0;
	if (!pin_dir(st, dir) && !pin_dir(st, BPF_CORE_READ(dentry, d_inode)))
		return 0;
	return tamper(KRSI_TAMPER_PIN_REMOVE, 0, BPF_CORE_READ(dentry, d_inode, i_ino));
}

SEC("lsm/inode_rename")
int BPF_PROG(self_rename, struct inode *old_dir, struct dentry *old_dentry, struct inode *new_dir,
	     struct dentry *new_dentry, int ret)
{
	struct krsi_self_state *st;

	if (ret)
		return krsi_pass(ret);
	st = protection();
	if (!st || is_agent(st) || !(pin_dir(st, old_dir) || pin_dir(st, new_dir)))
		return 0;
	return tamper(KRSI_TAMPER_PIN_REMOVE, 1, BPF_CORE_READ(old_dentry, d_inode, i_ino));
}

SEC("lsm/sb_umount")
int BPF_PROG(self_umount, struct vfsmount *mnt, int flags, int ret)
{
	struct krsi_self_state *st;

	if (ret)
		return krsi_pass(ret);
	st = protection();
	if (!st || is_agent(st) || mnt->mnt_sb->s_dev != st->pin_dev)
		return 0;
	return tamper(KRSI_TAMPER_UMOUNT, flags, st->pin_dev);
}

/* The agent is gone: the next one may take over its pins. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(self_exit, struct task_struct *p)
{
	struct krsi_self_state *st;
	__u32 zero = 0;

	st = bpf_map_lookup_elem(&self_state, &zero);
	if (st && st->agent_tgid && p->pid == p->tgid && p->tgid == st->agent_tgid)
		st->agent_tgid = 0;
	return 0;
}

/* Reaches the object's BTF only through this: the record is built on the stack. */
const struct krsi_tamper_event *krsi_abi_tamper_event __attribute__((unused));

// SPDX-License-Identifier: GPL-2.0
/*
 * Files: the policy's file_open and file_unlink hooks.
 *
 * file_open runs on every open in the system, so it does nothing beyond
 * picking up the policy unless some rule of the hook could match: with no
 * file_open rule and an allowing default, it returns before looking at the
 * file.  The path is resolved (bpf_d_path) only when a remaining rule has a
 * file selector, or when a noteworthy decision needs it for its event.
 *
 * file_unlink is lsm/path_unlink, which sees the directory as a struct path
 * (its mount included) and the victim's dentry.  Linux 6.1 refuses
 * bpf_d_path() on that hook (only hooks in its sleepable set may call it;
 * 6.12 allows it), so the path is built here on both kernels alike, by
 * walking from the victim's dentry up to the task's root, crossing mount
 * points as d_path() does.
 *
 * Events are emitted only for noteworthy decisions (denied, would-deny,
 * audit), never for every open.
 */
#include "common.h"
#include "hook.h"
#include "maps.h"
#include "outcome.h"
#include "policy.h"
#include "task.h"
#include "path_walk.h"
#include "content.h"

#define FMODE_WRITE 0x2

/* Scratch record: too large for the 512-byte BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct krsi_file_event);
} file_scratch SEC(".maps");

/* The record's path: st->path, already resolved (n bytes with the NUL) or not (0). */
static __always_inline void copy_path(struct krsi_file_event *e, struct policy_eval *st, long n)
{
	barrier_var(n);
	if (n > 0 && n <= KRSI_PATH_MAX) {
		bpf_probe_read_kernel(e->data, n, st->path);
		e->path_len = n;
	} else {
		e->path_len = 0;
		e->flags |= KRSI_FILE_PATH_UNRESOLVED;
	}
}

static __always_inline void fill_file(struct krsi_file_event *e, __u16 type, struct inode *inode)
{
	record_begin(&e->hdr, type);
	fill_task(&e->task);
	e->ino = inode ? BPF_CORE_READ(inode, i_ino) : 0;
	e->dev = inode ? BPF_CORE_READ(inode, i_sb, s_dev) : 0;
	e->open_flags = 0;
	e->fmode = 0;
	e->flags = 0;
}

static __always_inline __u64 file_record_size(const struct krsi_file_event *e)
{
	__u64 size = __builtin_offsetof(struct krsi_file_event, data) + e->path_len;

	return size > sizeof(*e) ? sizeof(*e) : size;
}

SEC("lsm/file_open")
int BPF_PROG(file_open, struct file *file, int ret)
{
	struct krsi_hook_stats *stats;
	struct krsi_policy_ref ref;
	struct krsi_file_event *e;
	struct policy_eval *st;
	__u32 zero = 0;
	long n = -1;	/* path not resolved yet */
	int verdict;

	/* An earlier LSM program already refused: its decision stands. */
	if (ret)
		return krsi_pass(ret);
	stats = hook_enter(KRSI_HOOK_FILE_OPEN);
	/* A file opened for writing may change: its cached digest goes. */
	if ((file->f_mode & FMODE_WRITE) && content_in_use())
		content_invalidate(file->f_inode);
	st = policy_state();
	if (!st)
		return 0;
	if (krsi_policy_begin(KRSI_PHOOK_FILE_OPEN)) {
		krsi_policy_ids();
		krsi_policy_lineage(1);
		if (krsi_policy_wants(KRSI_DIM_FILE)) {
			n = resolve_d_path(st, &file->f_path);
			if (n > 0) {
				krsi_policy_match_path(KRSI_DIM_FILE);
				krsi_policy_narrow(KRSI_DIM_FILE);
			} else {
				krsi_policy_unknown(KRSI_DIM_FILE);
			}
		}
	}
	krsi_policy_decide();
	if (!policy_noteworthy(&st->ref))
		return 0;

	/* Noteworthy: rare, so what follows may take its time. */
	ref = st->ref;
	verdict = outcome_enforce(&ref, stats);
	if (!outcome_rate_ok(stats))
		return verdict;
	e = bpf_map_lookup_elem(&file_scratch, &zero);
	if (!e)
		return verdict;
	fill_file(e, KRSI_EVENT_FILE_OPEN, file->f_inode);
	e->open_flags = file->f_flags;
	e->fmode = file->f_mode;
	if (n < 0)
		n = resolve_d_path(st, &file->f_path);
	copy_path(e, st, n);
	e->policy = ref;
	e->hdr.size = file_record_size(e);
	outcome_emit(stats, verdict != 0, e, e->hdr.size);
	return verdict;
}

/* Whether inode is the acting process's own executable. */
static __always_inline int own_executable(struct inode *inode)
{
	struct task_struct *task = bpf_get_current_task_btf();

	return inode && BPF_CORE_READ(task, mm, exe_file, f_inode) == inode;
}

/*
 * The file_unlink hook for a name about to go: unlink(2) of it, or a
 * rename(2) over it (KRSI_FILE_RENAME).  self: the file is the actor's own
 * executable (for an exchange, either file is).
 */
static __always_inline int unlink_decide(struct krsi_hook_stats *stats, struct dentry *dentry,
					 struct vfsmount *mnt, __u16 extra, int self)
{
	struct inode *inode = BPF_CORE_READ(dentry, d_inode);
	struct krsi_policy_ref ref;
	struct krsi_file_event *e;
	struct policy_eval *st;
	__u32 zero = 0;
	long n = -1;
	int verdict;

	if (inode && content_in_use())
		content_invalidate(inode);
	st = policy_state();
	if (!st)
		return 0;
	if (krsi_policy_begin(KRSI_PHOOK_FILE_UNLINK)) {
		krsi_policy_ids();
		krsi_policy_lineage(1);
		if (krsi_policy_wants(KRSI_DIM_SELF)) {
			st->value[0] = self;
			st->value[1] = st->value[2] = st->value[3] = 0;
			krsi_policy_match_value(KRSI_DIM_SELF);
			krsi_policy_narrow(KRSI_DIM_SELF);
		}
		if (krsi_policy_wants(KRSI_DIM_FILE)) {
			n = resolve_walk(st, dentry, mnt);
			if (n > 0) {
				krsi_policy_match_path(KRSI_DIM_FILE);
				krsi_policy_narrow(KRSI_DIM_FILE);
			} else {
				krsi_policy_unknown(KRSI_DIM_FILE);
			}
		}
	}
	krsi_policy_decide();
	if (!policy_noteworthy(&st->ref))
		return 0;

	ref = st->ref;
	verdict = outcome_enforce(&ref, stats);
	e = bpf_map_lookup_elem(&file_scratch, &zero);
	if (!e)
		return verdict;
	fill_file(e, KRSI_EVENT_FILE_UNLINK, inode);
	e->flags |= extra | (self ? KRSI_FILE_SELF : 0);
	if (n < 0)
		n = resolve_walk(st, dentry, mnt);
	copy_path(e, st, n);
	e->policy = ref;
	e->hdr.size = file_record_size(e);
	outcome_report(stats, verdict != 0, e, e->hdr.size);
	return verdict;
}

SEC("lsm/path_unlink")
int BPF_PROG(file_unlink, const struct path *dir, struct dentry *dentry, int ret)
{
	struct krsi_hook_stats *stats;

	if (ret)
		return krsi_pass(ret);
	stats = hook_enter(KRSI_HOOK_PATH_UNLINK);
	return unlink_decide(stats, dentry, dir->mnt, 0, own_executable(dentry->d_inode));
}

#define RENAME_EXCHANGE (1 << 1)

/*
 * A rename(2) that replaces an existing file removes that file's name as an
 * unlink does (a program replacing its own executable does it so): the
 * file_unlink hook decides, about the file replaced.  A rename to a new
 * name unlinks nothing and is not looked at.
 */
SEC("lsm/path_rename")
int BPF_PROG(file_rename, const struct path *old_dir, struct dentry *old_dentry, const struct path *new_dir,
	     struct dentry *new_dentry, unsigned int flags, int ret)
{
	struct krsi_hook_stats *stats;
	struct inode *victim;
	int self;

	if (ret)
		return krsi_pass(ret);
	victim = new_dentry->d_inode;
	if (!victim)
		return 0;
	stats = hook_enter(KRSI_HOOK_PATH_RENAME);
	self = own_executable(victim) || ((flags & RENAME_EXCHANGE) && own_executable(old_dentry->d_inode));
	return unlink_decide(stats, new_dentry, new_dir->mnt, KRSI_FILE_RENAME, self);
}

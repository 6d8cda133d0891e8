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
#include "maps.h"
#include "outcome.h"
#include "policy.h"
#include "task.h"

/* Scratch record: too large for the 512-byte BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct krsi_file_event);
} file_scratch SEC(".maps");

/*
 * The unlink path is built backwards, from the end of this buffer; the slack
 * past KRSI_PATH_MAX lets the verifier see a name of up to 255 bytes written
 * anywhere below it.
 */
#define WALK_NAME_MAX 255
#define WALK_BUF_SIZE (KRSI_PATH_MAX + KRSI_STR_MAX)

/*
 * The walk's position lives here, not on the stack: the verifier of newer
 * kernels checks a bpf_loop() callback until its states converge, and an
 * offset it tracked exactly would differ at every step.
 */
struct walk_buf {
	__u64 off;		/* the path so far is b[off, KRSI_PATH_MAX) */
	char b[WALK_BUF_SIZE];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct walk_buf);
} file_walk_buf SEC(".maps");

/* Mount crossings and components a walk follows at most (a component takes 2 bytes or more). */
#define WALK_STEPS_MAX (KRSI_PATH_MAX / 2 + 64)

/* Resolves path into st->path; returns its length with the NUL, 0 if it cannot be. */
static __always_inline long resolve_d_path(struct policy_eval *st, struct path *path)
{
	long n = bpf_d_path(path, st->path, KRSI_PATH_MAX);

	if (n <= 0 || n > KRSI_PATH_MAX) {
		st->path_len = 0;
		return 0;
	}
	st->path_len = n - 1;
	return n;
}

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
	e->hdr.type = type;
	e->hdr.abi = KRSI_ABI_VERSION;
	e->hdr.time_ns = bpf_ktime_get_ns();
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
		return ret;
	stats = hook_stats(KRSI_HOOK_FILE_OPEN);
	if (stats)
		stats->seen++;
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
	outcome_report(stats, verdict != 0, e, e->hdr.size);
	return verdict;
}

/* --- path_unlink ------------------------------------------------------------ */

struct path_walk {
	__u64 dentry;		/* the dentry whose name comes next */
	__u64 vfsmnt;		/* the mount it is seen through */
	__u64 root_dentry;	/* the task's root: the walk ends there */
	__u64 root_mnt;
	struct walk_buf *buf;
	__u64 done;		/* 1: complete; 2: too long or unreadable */
};

static __always_inline struct mount *real_mount_of(__u64 vfsmnt)
{
	return (struct mount *)(vfsmnt - bpf_core_field_offset(struct mount, mnt));
}

/*
 * One step up, as the kernel's prepend_path() takes it: at the root of a
 * mount, over to the mount point in the parent mount; else prepend the
 * dentry's name and go to its parent.
 */
static long walk_step(__u32 i, void *ctx)
{
	struct path_walk *w = ctx;
	struct dentry *d = (struct dentry *)w->dentry;
	struct vfsmount *vm = (struct vfsmount *)w->vfsmnt;
	struct dentry *parent, *mnt_root;
	const unsigned char *name;
	struct mount *m, *mp;
	__u64 len, off;		/* 64-bit: see append_arg() in exec.bpf.c */

	if (w->dentry == w->root_dentry && w->vfsmnt == w->root_mnt) {
		w->done = 1;
		return 1;
	}
	mnt_root = BPF_CORE_READ(vm, mnt_root);
	parent = BPF_CORE_READ(d, d_parent);
	if (d == mnt_root || d == parent) {
		m = real_mount_of(w->vfsmnt);
		mp = BPF_CORE_READ(m, mnt_parent);
		/* The root of the mount tree, or a dentry cut off from its mount. */
		if (d != mnt_root || m == mp || !mp) {
			w->done = 1;
			return 1;
		}
		w->dentry = (__u64)BPF_CORE_READ(m, mnt_mountpoint);
		w->vfsmnt = (__u64)mp + bpf_core_field_offset(struct mount, mnt);
		return 0;
	}
	len = BPF_CORE_READ(d, d_name.len);
	name = BPF_CORE_READ(d, d_name.name);
	off = w->buf->off;
	if (len > WALK_NAME_MAX || off < len + 1 || off > KRSI_PATH_MAX) {
		w->done = 2;
		return 1;
	}
	off -= len;
	barrier_var(off);
	if (off >= KRSI_PATH_MAX)
		return 1;
	barrier_var(len);
	if (len > WALK_NAME_MAX)
		return 1;
	if (bpf_probe_read_kernel(&w->buf->b[off], len, name)) {
		w->done = 2;
		return 1;
	}
	off -= 1;
	barrier_var(off);
	if (off >= KRSI_PATH_MAX)
		return 1;
	w->buf->b[off] = '/';
	w->buf->off = off;
	w->dentry = (__u64)parent;
	return 0;
}

/*
 * The path of dentry seen through mnt, relative to the task's root, into
 * st->path; returns its length with the NUL, 0 when it cannot be built.
 */
static __always_inline long resolve_walk(struct policy_eval *st, struct dentry *dentry, struct vfsmount *mnt)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct path_walk w = {};
	struct walk_buf *buf;
	__u32 zero = 0;
	__u64 len;

	st->path_len = 0;
	buf = bpf_map_lookup_elem(&file_walk_buf, &zero);
	if (!buf)
		return 0;
	w.dentry = (__u64)dentry;
	w.vfsmnt = (__u64)mnt;
	w.root_dentry = (__u64)BPF_CORE_READ(task, fs, root.dentry);
	w.root_mnt = (__u64)BPF_CORE_READ(task, fs, root.mnt);
	w.buf = buf;
	buf->off = KRSI_PATH_MAX;
	bpf_loop(WALK_STEPS_MAX, walk_step, &w, 0);
	if (w.done != 1)
		return 0;
	if (buf->off >= KRSI_PATH_MAX) {
		/* Nothing was prepended: the root itself. */
		st->path[0] = '/';
		st->path[1] = '\0';
		st->path_len = 1;
		return 2;
	}
	len = KRSI_PATH_MAX - buf->off;
	barrier_var(len);
	if (len == 0 || len >= KRSI_PATH_MAX)
		return 0;
	if (bpf_probe_read_kernel(st->path, len, &buf->b[KRSI_PATH_MAX - len]))
		return 0;
	st->path[len] = '\0';
	st->path_len = len;
	return len + 1;
}

SEC("lsm/path_unlink")
int BPF_PROG(file_unlink, const struct path *dir, struct dentry *dentry, int ret)
{
	struct krsi_hook_stats *stats;
	struct krsi_policy_ref ref;
	struct krsi_file_event *e;
	struct policy_eval *st;
	struct vfsmount *mnt;
	__u32 zero = 0;
	long n = -1;
	int verdict;

	if (ret)
		return ret;
	stats = hook_stats(KRSI_HOOK_PATH_UNLINK);
	if (stats)
		stats->seen++;
	st = policy_state();
	if (!st)
		return 0;
	mnt = dir->mnt;
	if (krsi_policy_begin(KRSI_PHOOK_FILE_UNLINK)) {
		krsi_policy_ids();
		krsi_policy_lineage(1);
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
	fill_file(e, KRSI_EVENT_FILE_UNLINK, dentry->d_inode);
	if (n < 0)
		n = resolve_walk(st, dentry, mnt);
	copy_path(e, st, n);
	e->policy = ref;
	e->hdr.size = file_record_size(e);
	outcome_report(stats, verdict != 0, e, e->hdr.size);
	return verdict;
}

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Paths of files: bpf_d_path() where the hook allows it, else built by
 * walking dentries, for hooks where bpf_d_path() is refused
 * (Linux 6.1 allows it only on the hooks of its sleepable set: path_unlink,
 * path_rename, file_mprotect, ptrace_access_check are not) or for paths of
 * files other than the hook's own.  The walk goes from a dentry up to the
 * task's root, crossing mount points as d_path() does.
 */
#ifndef KRSI_PATH_WALK_H
#define KRSI_PATH_WALK_H

#include "common.h"
#include "policy.h"

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
} file_walk_buf SEC(".maps") __weak;

/* Mount crossings and components a walk follows at most (a component takes 2 bytes or more). */
#define WALK_STEPS_MAX (KRSI_PATH_MAX / 2 + 64)

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

/*
 * The path of a struct path by bpf_d_path(), on the hooks that allow it
 * (cheaper than the walk: one helper call, under the kernel's own locking);
 * returns its length with the NUL, 0 if it cannot be resolved.
 */
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

/* The path of a struct path (a file's f_path), by the walk. */
static __always_inline long resolve_walk_path(struct policy_eval *st, struct path *path)
{
	return resolve_walk(st, BPF_CORE_READ(path, dentry), BPF_CORE_READ(path, mnt));
}

#endif /* KRSI_PATH_WALK_H */

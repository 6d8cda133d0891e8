// SPDX-License-Identifier: GPL-2.0
/*
 * Mounts: the policy's mount hook.
 *
 * sb_kern_mount decides.  The kernel calls it for every new file system
 * instance about to be mounted, by mount(2) (do_new_mount_fc) and by the
 * new mount API (fsconfig(FSCONFIG_CMD_CREATE)), in the mounting task, with
 * the superblock only: its type (fstype selector) and device (device
 * selector) are there, the source string and the mountpoint are not.
 *
 *  - mount(2): sb_mount runs first in the same call (path_mount) with the
 *    source (dev_name), the flags and the mountpoint.  For a new mount it
 *    keeps them in the thread's mount_stash, where sb_kern_mount finds them.
 *  - fsconfig(2): the fs_context being created is the file behind the
 *    call's fd, and its source is fc->source, exactly what the file system
 *    gets.  The fd is read from the syscall's registers (x86-64 only); the
 *    context is believed only if its root is the superblock at hand, so that
 *    a racing dup2() over the fd cannot lend another context's source.  The
 *    mountpoint is not known yet (move_mount names it later).
 * Otherwise (another architecture, a 32-bit fsconfig) the source is unknown,
 * and rules with a source selector match neither way.
 *
 * A file system on a block device also has the device's bus and removable
 * flag (bus and removable selectors): the buses of the devices above the
 * block device in the driver model (a USB stick's disk hangs below a SCSI
 * device, a USB interface and device, a PCI host controller: scsi, usb, pci),
 * and GENHD_FL_REMOVABLE of its disk.  Without a block device (tmpfs, proc,
 * 9p) rules with those selectors match neither way.
 */
#include "common.h"
#include "hook.h"
#include "maps.h"
#include "outcome.h"
#include "policy.h"
#include "task.h"

/* mount(2) flags that do not create a file system (no sb_kern_mount follows). */
#define MS_REMOUNT 32
#define MS_BIND 4096
#define MS_MOVE 8192
#define MS_UNBINDABLE (1 << 17)
#define MS_PRIVATE (1 << 18)
#define MS_SLAVE (1 << 19)
#define MS_SHARED (1 << 20)
#define MS_NOT_NEW (MS_REMOUNT | MS_BIND | MS_MOVE | MS_UNBINDABLE | MS_PRIVATE | MS_SLAVE | MS_SHARED)

#define NR_FSCONFIG 431

/* mount_stash.state */
#define STASH_MOUNT (1 << 0)		/* a mount(2) new mount is in flight */
#define STASH_MOUNTPOINT (1 << 1)
#define STASH_SOURCE (1 << 2)
#define STASH_SOURCE_TRUNCATED (1 << 3)

/* Per thread: what sb_kern_mount cannot see for itself, and room to read it. */
struct mount_stash {
	__u32 state;			/* STASH_* */
	__u32 mount_flags;		/* mount(2)'s flags */
	__u32 source_len;		/* bytes of source, NUL included */
	__u32 mountpoint_len;		/* bytes of mountpoint, NUL included */
	char source[KRSI_PATH_MAX];
	char mountpoint[KRSI_PATH_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct mount_stash);
} mount_stash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct krsi_mount_event);
} mount_scratch SEC(".maps");

/* The block device's buses (distinct, nearest first) and removable flag. */
struct mount_devinfo {
	char bus[KRSI_MOUNT_BUSES_MAX][KRSI_BUS_NAME_MAX];
	__u32 len[KRSI_MOUNT_BUSES_MAX];	/* bytes of each name, NUL included */
	__u32 count;
	__u32 removable;
	char name[KRSI_BUS_NAME_MAX];		/* the name being read */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mount_devinfo);
} mount_devinfo SEC(".maps");

struct device_walk {
	struct device *dev;
	struct mount_devinfo *info;
};

static __always_inline int same_name(const char *a, const char *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

	return x[0] == y[0] && x[1] == y[1];
}

/* One device up the parent chain: its bus, if it has one not seen yet. */
static long device_step(__u32 i, void *ctx)
{
	struct device_walk *w = ctx;
	struct mount_devinfo *info = w->info;
	struct device *dev = w->dev;
	const struct bus_type *bus;
	const char *name;
	__u32 j, n;
	long len;

	if (!dev)
		return 1;
	bus = BPF_CORE_READ(dev, bus);
	w->dev = BPF_CORE_READ(dev, parent);
	if (!bus)
		return 0;
	name = BPF_CORE_READ(bus, name);
	__builtin_memset(info->name, 0, sizeof(info->name));
	len = bpf_probe_read_kernel_str(info->name, sizeof(info->name), name);
	if (len <= 1)
		return 0;
	n = info->count;
	for (j = 0; j < KRSI_MOUNT_BUSES_MAX; j++) {
		if (j >= n)
			break;
		if (same_name(info->bus[j], info->name))
			return 0;
	}
	if (n >= KRSI_MOUNT_BUSES_MAX)
		return 1;
	__builtin_memcpy(info->bus[n & (KRSI_MOUNT_BUSES_MAX - 1)], info->name, KRSI_BUS_NAME_MAX);
	info->len[n & (KRSI_MOUNT_BUSES_MAX - 1)] = len;
	info->count = n + 1;
	return 0;
}

/* What the bus and removable selectors see of a block device. */
static __always_inline struct mount_devinfo *read_devinfo(struct block_device *bdev)
{
	struct mount_devinfo *info;
	struct device_walk w;
	__u32 zero = 0;

	info = bpf_map_lookup_elem(&mount_devinfo, &zero);
	if (!info)
		return 0;
	info->count = 0;
	info->removable = (BPF_CORE_READ(bdev, bd_disk, flags) & GENHD_FL_REMOVABLE) != 0;
	w.dev = &bdev->bd_device;
	w.info = info;
	bpf_loop(KRSI_MOUNT_DEVICE_DEPTH, device_step, &w, 0);
	return info;
}

/* The source: a kernel string, at most KRSI_PATH_MAX - 1 bytes of it. */
static __always_inline void stash_source(struct mount_stash *ms, const char *src)
{
	char last;
	long n;

	ms->state &= ~(STASH_SOURCE | STASH_SOURCE_TRUNCATED);
	ms->source_len = 0;
	if (!src)
		return;
	n = bpf_probe_read_kernel_str(ms->source, KRSI_PATH_MAX, src);
	if (n <= 0)
		return;
	ms->source_len = n;
	ms->state |= STASH_SOURCE;
	if (n == KRSI_PATH_MAX && (bpf_probe_read_kernel(&last, 1, src + n - 1) != 0 || last != '\0'))
		ms->state |= STASH_SOURCE_TRUNCATED;
}

SEC("lsm/sb_mount")
int BPF_PROG(mount_request, const char *dev_name, const struct path *path, const char *type,
	     unsigned long flags, void *data, int ret)
{
	struct krsi_hook_stats *stats = hook_stats(KRSI_HOOK_SB_MOUNT);
	struct task_struct *task = bpf_get_current_task_btf();
	struct mount_stash *ms;
	long n;

	if (ret)
		return krsi_pass(ret);
	if (stats)
		stats->seen++;
	if (flags & MS_NOT_NEW) {
		ms = bpf_task_storage_get(&mount_stash, task, 0, 0);
		if (ms)
			ms->state = 0;
		return 0;
	}
	ms = bpf_task_storage_get(&mount_stash, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!ms)
		return 0;
	ms->state = STASH_MOUNT;
	ms->mount_flags = flags;
	stash_source(ms, dev_name);
	n = bpf_d_path((struct path *)path, ms->mountpoint, KRSI_PATH_MAX);
	if (n > 0 && n <= KRSI_PATH_MAX) {
		ms->mountpoint_len = n;
		ms->state |= STASH_MOUNTPOINT;
	} else {
		ms->mountpoint_len = 0;
	}
	return 0;
}

/*
 * The fs_context that fsconfig(2), in progress, creates the superblock sb
 * of, from the call's fd; NULL when the task is not in fsconfig(2) (or this
 * is not x86-64).
 */
static __always_inline struct fs_context *fsconfig_context(struct task_struct *task,
							   const struct super_block *sb)
{
#if defined(__TARGET_ARCH_x86)
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	struct fs_context *fc;
	struct fdtable *fdt;
	struct file **fds;
	struct file *f = 0;
	__u64 fd;

	if (task->flags & PF_KTHREAD)
		return 0;
	if (regs->orig_ax != NR_FSCONFIG)
		return 0;
	fd = (__u32)regs->di;
	fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) || !f)
		return 0;
	fc = BPF_CORE_READ(f, private_data);
	if (!fc || BPF_CORE_READ(fc, root, d_sb) != sb)
		return 0;
	return fc;
#else
	return 0;
#endif
}

/* Copies n bytes (NUL included) of a kernel string to data[off]; returns n or 0. */
static __always_inline __u32 put_string(struct krsi_mount_event *e, __u64 off, const char *src, __u64 n)
{
	barrier_var(off);
	if (off > KRSI_STR_MAX + KRSI_PATH_MAX)
		return 0;
	barrier_var(n);
	if (n == 0 || n > KRSI_PATH_MAX)
		return 0;
	if (bpf_probe_read_kernel(&e->data[off], n, src))
		return 0;
	return n;
}

static __always_inline __u64 mount_record_size(const struct krsi_mount_event *e)
{
	__u64 size = __builtin_offsetof(struct krsi_mount_event, data) +
		     e->fstype_len + e->source_len + e->mountpoint_len + e->bus_len;

	return size > sizeof(*e) ? sizeof(*e) : size;
}

/* st->path := the first n bytes (NUL included) of src, for krsi_policy_match_path(). */
static __always_inline int set_path(struct policy_eval *st, const char *src, __u64 n)
{
	barrier_var(n);
	if (n <= 1 || n > KRSI_PATH_MAX)
		return 0;
	if (bpf_probe_read_kernel(st->path, n, src))
		return 0;
	st->path_len = n - 1;
	return 1;
}

SEC("lsm/sb_kern_mount")
int BPF_PROG(mount_check, const struct super_block *sb, int ret)
{
	struct krsi_hook_stats *stats;
	struct task_struct *task = bpf_get_current_task_btf();
	struct mount_devinfo *info = 0;
	struct krsi_policy_ref ref;
	struct krsi_mount_event *e;
	struct mount_stash *ms;
	struct fs_context *fc;
	struct policy_eval *st;
	__u32 zero = 0, dev, bdev = 0, api = 0, i;
	int source, verdict;
	__u64 off;
	long n;

	if (ret)
		return krsi_pass(ret);
	stats = hook_enter(KRSI_HOOK_SB_KERN_MOUNT);
	st = policy_state();
	e = bpf_map_lookup_elem(&mount_scratch, &zero);
	if (!st || !e)
		return 0;

	/* This mount's source (and for mount(2), its flags and mountpoint). */
	fc = fsconfig_context(task, sb);
	if (fc) {
		api = KRSI_MOUNT_API_FSCONFIG;
		ms = bpf_task_storage_get(&mount_stash, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (ms) {
			ms->state = 0;
			stash_source(ms, BPF_CORE_READ(fc, source));
		}
	} else {
		ms = bpf_task_storage_get(&mount_stash, task, 0, 0);
		if (ms && (ms->state & STASH_MOUNT))
			api = KRSI_MOUNT_API_MOUNT;
	}
	source = ms && api && (ms->state & STASH_SOURCE);

	dev = sb->s_dev;
	if (sb->s_bdev) {
		bdev = sb->s_bdev->bd_dev;
		info = read_devinfo(sb->s_bdev);
	}
	n = bpf_probe_read_kernel_str(e->data, KRSI_STR_MAX, sb->s_type->name);
	e->fstype_len = n > 0 ? n : 0;

	if (krsi_policy_begin(KRSI_PHOOK_MOUNT)) {
		krsi_policy_ids();
		krsi_policy_lineage(1);
		if (krsi_policy_wants(KRSI_DIM_FSTYPE)) {
			if (set_path(st, e->data, e->fstype_len)) {
				krsi_policy_match_path(KRSI_DIM_FSTYPE);
				krsi_policy_narrow(KRSI_DIM_FSTYPE);
			} else {
				krsi_policy_unknown(KRSI_DIM_FSTYPE);
			}
		}
		if (krsi_policy_wants(KRSI_DIM_DEVICE)) {
			st->value[0] = dev;
			st->value[1] = st->value[2] = st->value[3] = 0;
			krsi_policy_match_value(KRSI_DIM_DEVICE);
			if (bdev && bdev != dev) {
				st->value[0] = bdev;
				krsi_policy_match_value(KRSI_DIM_DEVICE);
			}
			krsi_policy_narrow(KRSI_DIM_DEVICE);
		}
		if (krsi_policy_wants(KRSI_DIM_SOURCE)) {
			if (source && ms && set_path(st, ms->source, ms->source_len)) {
				krsi_policy_match_path(KRSI_DIM_SOURCE);
				krsi_policy_narrow(KRSI_DIM_SOURCE);
			} else {
				krsi_policy_unknown(KRSI_DIM_SOURCE);
			}
		}
		if (krsi_policy_wants(KRSI_DIM_BUS)) {
			if (info) {
				for (i = 0; i < KRSI_MOUNT_BUSES_MAX; i++) {
					if (i >= info->count)
						break;
					if (set_path(st, info->bus[i], info->len[i]))
						krsi_policy_match_path(KRSI_DIM_BUS);
				}
				krsi_policy_narrow(KRSI_DIM_BUS);
			} else {
				krsi_policy_unknown(KRSI_DIM_BUS);
			}
		}
		if (krsi_policy_wants(KRSI_DIM_REMOVABLE)) {
			if (info) {
				st->value[0] = info->removable;
				st->value[1] = st->value[2] = st->value[3] = 0;
				krsi_policy_match_value(KRSI_DIM_REMOVABLE);
				krsi_policy_narrow(KRSI_DIM_REMOVABLE);
			} else {
				krsi_policy_unknown(KRSI_DIM_REMOVABLE);
			}
		}
	}
	krsi_policy_decide();
	ref = st->ref;
	if (!policy_noteworthy(&ref))
		goto out;

	verdict = outcome_enforce(&ref, stats);
	record_begin(&e->hdr, KRSI_EVENT_MOUNT);
	fill_task(&e->task);
	e->policy = ref;
	e->dev = dev;
	e->bdev = bdev;
	e->sb_flags = sb->s_flags;
	e->mount_flags = 0;
	e->flags = api;
	e->source_len = 0;
	e->mountpoint_len = 0;
	e->bus_len = 0;
	e->__pad2 = 0;
	off = e->fstype_len;
	if (ms && source) {
		e->source_len = put_string(e, off, ms->source, ms->source_len);
		if (e->source_len) {
			e->flags |= KRSI_MOUNT_SOURCE_KNOWN;
			if (ms->state & STASH_SOURCE_TRUNCATED)
				e->flags |= KRSI_MOUNT_SOURCE_TRUNCATED;
		}
		off += e->source_len;
	}
	if (ms && api == KRSI_MOUNT_API_MOUNT) {
		e->mount_flags = ms->mount_flags;
		if (ms->state & STASH_MOUNTPOINT) {
			e->mountpoint_len = put_string(e, off, ms->mountpoint, ms->mountpoint_len);
			if (e->mountpoint_len)
				e->flags |= KRSI_MOUNT_MOUNTPOINT_KNOWN;
		}
	}
	off += e->mountpoint_len;
	if (info) {
		if (info->removable)
			e->flags |= KRSI_MOUNT_REMOVABLE;
		for (i = 0; i < KRSI_MOUNT_BUSES_MAX; i++) {
			__u64 len;

			if (i >= info->count)
				break;
			len = info->len[i];
			barrier_var(off);
			barrier_var(len);
			if (off > KRSI_STR_MAX + 2 * KRSI_PATH_MAX + (KRSI_MOUNT_BUSES_MAX - 1) * KRSI_BUS_NAME_MAX ||
			    len == 0 || len > KRSI_BUS_NAME_MAX)
				break;
			if (bpf_probe_read_kernel(&e->data[off], len, info->bus[i]))
				break;
			off += len;
			e->bus_len += len;
		}
	}
	e->hdr.size = mount_record_size(e);
	outcome_report(stats, verdict != 0, e, e->hdr.size);
	if (ms)
		ms->state = 0;
	return verdict;
out:
	/* Used: a later mount must not inherit this one's source or mountpoint. */
	if (ms)
		ms->state = 0;
	return 0;
}

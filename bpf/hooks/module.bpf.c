// SPDX-License-Identifier: GPL-2.0
/*
 * Kernel modules: the policy's module_load hook.
 *
 * A module comes from a file or from memory:
 *  - finit_module(2) reads the file with kernel_read_file(READING_MODULE):
 *    the file selector sees its path, the module selector its name, the
 *    file's basename without .ko, .ko.xz, .ko.zst or .ko.gz.
 *  - init_module(2) passes an image.  kernel_load_data(LOADING_MODULE) runs
 *    before the image is copied in and knows nothing about it, so the hook
 *    is kernel_post_load_data(LOADING_MODULE), which has the image: the
 *    module selector sees the name the kernel will register, read from the
 *    image's .gnu.linkonce.this_module section (struct module's name).
 *    There is no file: rules with a file selector match neither way.
 *    (kmod, e.g. Debian 12's modprobe, decompresses .ko.xz itself and uses
 *    init_module(2), so this is how most modprobes look on 6.12.)
 *
 * The sha256 selector and every event see the digest of the module's bytes
 * as the kernel gets them: for a file, IMA's digest of the file, taken by a
 * sleepable program on the same hook that runs first (module_hash); for an
 * image, SHA-256 computed here over the image (bpf/lib/sha256.h).  Module
 * loads are rare: every one is reported, allowed or not.
 *
 * The module_load and module_free tracepoints tell the agent which modules
 * the kernel formed and freed, so that it can notice one that hides itself.
 */
#include "common.h"
#include "hook.h"
#include "maps.h"
#include "outcome.h"
#include "policy.h"
#include "sha256.h"
#include "task.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct krsi_module_event);
} module_scratch SEC(".maps");

/* The IMA digest of the module file being read, from module_hash to module_read. */
struct module_digest {
	__u8 sha256[32];
	__u64 ino;
	__u32 dev;
	__u32 state;		/* KRSI_HASH_* */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct module_digest);
} module_digest SEC(".maps");

static __always_inline void fill_module(struct krsi_module_event *e, __u32 source)
{
	record_begin(&e->hdr, KRSI_EVENT_MODULE_LOAD);
	fill_task(&e->task);
	e->ino = 0;
	e->dev = 0;
	e->source = source;
	e->flags = 0;
	e->name_len = 0;
	e->path_len = 0;
	e->size = 0;
	__builtin_memset(e->sha256, 0, sizeof(e->sha256));
}

static __always_inline int ends_with(const char *s, __u32 len, const char *suffix, __u32 slen)
{
	__u32 i;

	if (len < slen)
		return 0;
	for (i = 0; i < 8 && i < slen; i++) {
		__u32 at = len - slen + i;

		barrier_var(at);
		if (at >= KRSI_STR_MAX || s[at & (KRSI_STR_MAX - 1)] != suffix[i])
			return 0;
	}
	return 1;
}

/*
 * The name a module file gives its module: its basename (the dentry's
 * name) without the module suffix, into data[0]; returns name_len.
 */
static __always_inline __u16 name_from_file(struct krsi_module_event *e, struct file *file)
{
	const unsigned char *base = BPF_CORE_READ(file, f_path.dentry, d_name.name);
	long n = bpf_probe_read_kernel_str(e->data, KRSI_STR_MAX, base);
	__u32 len, cut = 0;

	if (n <= 1)
		return 0;
	len = n - 1;
	if (ends_with(e->data, len, ".ko", 3))
		cut = 3;
	else if (ends_with(e->data, len, ".ko.xz", 6) || ends_with(e->data, len, ".ko.gz", 6))
		cut = 6;
	else if (ends_with(e->data, len, ".ko.zst", 7))
		cut = 7;
	if (cut == 0 || cut >= len)
		return len + 1;
	len -= cut;
	barrier_var(len);
	if (len >= KRSI_STR_MAX)
		return 0;
	e->data[len] = '\0';
	return len + 1;
}

/* st->path := data[0, name_len): the module name, for the module selector. */
static __always_inline int name_to_path(struct policy_eval *st, struct krsi_module_event *e)
{
	__u64 n = e->name_len;

	barrier_var(n);
	if (n <= 1 || n > KRSI_STR_MAX)
		return 0;
	if (bpf_probe_read_kernel(st->path, n, e->data))
		return 0;
	st->path_len = n - 1;
	return 1;
}

static __always_inline __u64 module_record_size(const struct krsi_module_event *e)
{
	__u64 size = __builtin_offsetof(struct krsi_module_event, data) + e->name_len + e->path_len;

	return size > sizeof(*e) ? sizeof(*e) : size;
}

/* The module dimension, and the decision, once e holds the name (or none). */
static __always_inline void module_dim(struct policy_eval *st, struct krsi_module_event *e)
{
	if (!krsi_policy_wants(KRSI_DIM_MODULE))
		return;
	if (name_to_path(st, e)) {
		krsi_policy_match_path(KRSI_DIM_MODULE);
		krsi_policy_narrow(KRSI_DIM_MODULE);
	} else {
		krsi_policy_unknown(KRSI_DIM_MODULE);
	}
}

/*
 * The sha256 dimension.  A digest that could not be taken is on no list: a
 * rule `sha256: {list: [approved], not: true}` denies such a module instead
 * of letting it through, and the decision says the context was unknown.
 */
static __always_inline void sha256_dim(struct policy_eval *st, struct krsi_module_event *e)
{
	if (!krsi_policy_wants(KRSI_DIM_SHA256))
		return;
	if (e->flags & KRSI_MODULE_SHA256_KNOWN) {
		__builtin_memcpy(st->value, e->sha256, sizeof(st->value));
		krsi_policy_match_value(KRSI_DIM_SHA256);
	} else {
		st->matched = 0;
		st->flags |= KRSI_REF_CONTEXT_UNKNOWN;
	}
	krsi_policy_narrow(KRSI_DIM_SHA256);
}

/*
 * Enforces st->ref about e and reports it; returns what the hook returns.
 * Every load is reported: denials on `decisions`, the rest on `events`.
 */
static __always_inline int module_outcome(struct policy_eval *st, struct krsi_module_event *e,
					  struct krsi_hook_stats *stats)
{
	struct krsi_policy_ref ref = st->ref;
	int verdict;

	verdict = outcome_enforce(&ref, stats);
	e->policy = ref;
	e->hdr.size = module_record_size(e);
	if (policy_noteworthy(&ref))
		outcome_report(stats, verdict != 0, e, e->hdr.size);
	else
		emit(&events, stats, e, e->hdr.size);
	return verdict;
}

SEC("lsm/kernel_read_file")
int BPF_PROG(module_read, struct file *file, enum kernel_read_file_id id, bool contents, int ret)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct krsi_hook_stats *stats;
	struct krsi_module_event *e;
	struct module_digest *md;
	struct policy_eval *st;
	__u32 zero = 0;
	__u64 nl;
	long n;

	if (ret)
		return krsi_pass(ret);
	if (id != bpf_core_enum_value(enum kernel_read_file_id, READING_MODULE))
		return 0;
	stats = hook_enter(KRSI_HOOK_KERNEL_READ_FILE);
	st = policy_state();
	e = bpf_map_lookup_elem(&module_scratch, &zero);
	if (!st || !e)
		return 0;
	krsi_policy_begin(KRSI_PHOOK_MODULE_LOAD);

	/* Module loads are rare: read everything the event may need. */
	fill_module(e, KRSI_MODULE_FROM_FILE);
	e->ino = BPF_CORE_READ(file, f_inode, i_ino);
	e->dev = BPF_CORE_READ(file, f_inode, i_sb, s_dev);
	e->size = BPF_CORE_READ(file, f_inode, i_size);
	md = bpf_task_storage_get(&module_digest, task, 0, 0);
	if (md && md->state == KRSI_HASH_VALID && md->ino == e->ino && md->dev == e->dev) {
		__builtin_memcpy(e->sha256, md->sha256, sizeof(e->sha256));
		e->flags |= KRSI_MODULE_SHA256_KNOWN;
	}
	if (md)
		md->state = KRSI_HASH_NONE;
	e->name_len = name_from_file(e, file);
	nl = e->name_len;
	n = bpf_d_path(&file->f_path, st->path, KRSI_PATH_MAX);
	if (n <= 0 || n > KRSI_PATH_MAX) {
		e->flags |= KRSI_MODULE_PATH_UNRESOLVED;
		n = 0;
	}
	st->path_len = n > 0 ? n - 1 : 0;
	barrier_var(nl);
	barrier_var(n);
	if (n > 0 && n <= KRSI_PATH_MAX && nl <= KRSI_STR_MAX &&
	    !bpf_probe_read_kernel(&e->data[nl], n, st->path))
		e->path_len = n;

	if (st->candidates) {
		krsi_policy_ids();
		krsi_policy_lineage(1);
		if (krsi_policy_wants(KRSI_DIM_FILE)) {
			if (n > 0) {
				krsi_policy_match_path(KRSI_DIM_FILE);
				krsi_policy_narrow(KRSI_DIM_FILE);
			} else {
				krsi_policy_unknown(KRSI_DIM_FILE);
			}
		}
		module_dim(st, e);
		sha256_dim(st, e);
	}
	krsi_policy_decide();
	return module_outcome(st, e, stats);
}

/*
 * IMA's digest of the module file about to be read.  Hashing may sleep
 * (reading the file), hence a sleepable program of its own, attached after
 * module_read so that it runs first: BPF LSM trampolines run the most
 * recently attached program first.  kernel_read_file() denies writers before
 * this hook runs, so the digest is of the bytes the kernel then reads.
 */
SEC("lsm.s/kernel_read_file")
int BPF_PROG(module_hash, struct file *file, enum kernel_read_file_id id, bool contents, int ret)
{
	struct module_digest *md;
	long algo;

	if (ret)
		return krsi_pass(ret);
	if (id != bpf_core_enum_value(enum kernel_read_file_id, READING_MODULE))
		return 0;
	hook_enter(KRSI_HOOK_MODULE_HASH);
	md = bpf_task_storage_get(&module_digest, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!md)
		return 0;
	algo = bpf_ima_file_hash(file, md->sha256, sizeof(md->sha256));
	md->ino = file->f_inode->i_ino;
	md->dev = file->f_inode->i_sb->s_dev;
	/* Any digest but a sha256 cannot match a selector. */
	md->state = algo == HASH_ALGO_SHA256 ? KRSI_HASH_VALID : KRSI_HASH_UNAVAILABLE;
	return 0;
}

/* --- init_module(2): the name from the image ------------------------------- */

struct elf64_ehdr_min {
	__u8 ident[16];
	__u16 type;
	__u16 machine;
	__u32 version;
	__u64 entry;
	__u64 phoff;
	__u64 shoff;
	__u32 flags;
	__u16 ehsize;
	__u16 phentsize;
	__u16 phnum;
	__u16 shentsize;
	__u16 shnum;
	__u16 shstrndx;
};

struct elf64_shdr_min {
	__u32 name;
	__u32 type;
	__u64 flags;
	__u64 addr;
	__u64 offset;
	__u64 size;
	__u32 link;
	__u32 info;
	__u64 addralign;
	__u64 entsize;
};

/* Sections looked through at most; modules have a few dozen. */
#define ELF_SECTIONS_MAX 1024
#define THIS_MODULE_SECTION ".gnu.linkonce.this_module"
#define THIS_MODULE_SECTION_LEN sizeof(THIS_MODULE_SECTION)	/* NUL included */
#define MODULE_NAME_MAX 56					/* MODULE_NAME_LEN on 64-bit */

struct elf_scan {
	const char *image;
	__u64 size;
	__u64 shoff;
	__u64 shstr_off;
	__u64 shstr_size;
	__u64 found;		/* file offset of the this_module section, 0 if none */
	__u64 found_size;
	__u32 shnum;
	__u32 __pad;
};

static long elf_step(__u32 i, void *ctx)
{
	const char want[THIS_MODULE_SECTION_LEN] = THIS_MODULE_SECTION;
	char name[THIS_MODULE_SECTION_LEN];
	struct elf_scan *w = ctx;
	struct elf64_shdr_min sh;
	__u64 off;
	int j;

	if (i >= w->shnum)
		return 1;
	off = w->shoff + (__u64)i * sizeof(sh);
	if (off + sizeof(sh) > w->size || bpf_probe_read_kernel(&sh, sizeof(sh), w->image + off))
		return 1;
	if ((__u64)sh.name + sizeof(name) > w->shstr_size)
		return 0;
	if (bpf_probe_read_kernel(name, sizeof(name), w->image + w->shstr_off + sh.name))
		return 1;
	for (j = 0; j < sizeof(name); j++)
		if (name[j] != want[j])
			return 0;
	if (sh.offset > w->size || sh.size > w->size - sh.offset)
		return 1;
	w->found = sh.offset;
	w->found_size = sh.size;
	return 1;
}

/*
 * The name in the image's struct module (.gnu.linkonce.this_module), into
 * data[0]; returns name_len, 0 when the image has none to read.  Every
 * offset is checked against the image's size: a hostile image makes the
 * name unknown, never a read outside the image.
 */
static __always_inline __u16 name_from_image(struct krsi_module_event *e, const char *image, __u64 size)
{
	struct elf64_ehdr_min eh;
	struct elf64_shdr_min strtab;
	struct elf_scan w = {};
	__u64 name_off = bpf_core_field_offset(struct module, name);
	__u64 off;
	long n;

	if (size < sizeof(eh) || bpf_probe_read_kernel(&eh, sizeof(eh), image))
		return 0;
	if (eh.ident[0] != 0x7f || eh.ident[1] != 'E' || eh.ident[2] != 'L' || eh.ident[3] != 'F' ||
	    eh.ident[4] != 2 /* ELFCLASS64 */ || eh.shentsize != sizeof(strtab) || eh.shstrndx >= eh.shnum)
		return 0;
	if (eh.shoff > size || (__u64)eh.shnum * sizeof(strtab) > size - eh.shoff)
		return 0;
	off = eh.shoff + (__u64)eh.shstrndx * sizeof(strtab);
	if (bpf_probe_read_kernel(&strtab, sizeof(strtab), image + off))
		return 0;
	if (strtab.offset > size || strtab.size > size - strtab.offset)
		return 0;
	w.image = image;
	w.size = size;
	w.shoff = eh.shoff;
	w.shstr_off = strtab.offset;
	w.shstr_size = strtab.size;
	w.shnum = eh.shnum;
	bpf_loop(ELF_SECTIONS_MAX, elf_step, &w, 0);
	if (!w.found || w.found_size < name_off + MODULE_NAME_MAX)
		return 0;
	n = bpf_probe_read_kernel_str(e->data, MODULE_NAME_MAX, image + w.found + name_off);
	return n > 1 ? n : 0;
}

SEC("lsm/kernel_post_load_data")
int BPF_PROG(module_data, char *buf, loff_t size, enum kernel_load_data_id id, char *description, int ret)
{
	struct krsi_hook_stats *stats;
	struct krsi_module_event *e;
	struct policy_eval *st;
	__u32 zero = 0;

	if (ret)
		return krsi_pass(ret);
	if (id != bpf_core_enum_value(enum kernel_load_data_id, LOADING_MODULE))
		return 0;
	stats = hook_enter(KRSI_HOOK_KERNEL_LOAD_DATA);
	st = policy_state();
	e = bpf_map_lookup_elem(&module_scratch, &zero);
	if (!st || !e)
		return 0;

	fill_module(e, KRSI_MODULE_FROM_MEMORY);
	e->size = size > 0 ? size : 0;
	e->name_len = name_from_image(e, buf, e->size);
	if (!e->name_len)
		e->flags |= KRSI_MODULE_NAME_UNKNOWN;
	if (sha256_kernel(buf, e->size, e->sha256) == 0)
		e->flags |= KRSI_MODULE_SHA256_KNOWN;
	/* Hashing used bpf_loop: begin the policy afterwards, nothing in between. */
	if (krsi_policy_begin(KRSI_PHOOK_MODULE_LOAD)) {
		krsi_policy_ids();
		krsi_policy_lineage(1);
		krsi_policy_unknown(KRSI_DIM_FILE);
		module_dim(st, e);
		sha256_dim(st, e);
	}
	krsi_policy_decide();
	return module_outcome(st, e, stats);
}

/* --- the module tracepoints, for the agent's tracker ---------------------- */

static __always_inline int module_state(struct module *mod, __u32 state, __u32 hook)
{
	struct krsi_hook_stats *stats;
	struct krsi_module_state_event e = {};

	stats = hook_enter(hook);
	record_begin_sized(&e.hdr, KRSI_EVENT_MODULE_STATE, sizeof(e));
	fill_task(&e.task);
	e.taints = BPF_CORE_READ(mod, taints);
	e.state = state;
	bpf_probe_read_kernel_str(e.name, sizeof(e.name), mod->name);
	/* On `decisions`: rare, and a lost one would mislead the tracker. */
	emit(&decisions, stats, &e, sizeof(e));
	return 0;
}

SEC("tp_btf/module_load")
int BPF_PROG(module_loaded, struct module *mod)
{
	return module_state(mod, KRSI_MODULE_STATE_LOADED, KRSI_HOOK_MODULE_LOADED);
}

SEC("tp_btf/module_free")
int BPF_PROG(module_freed, struct module *mod)
{
	return module_state(mod, KRSI_MODULE_STATE_FREED, KRSI_HOOK_MODULE_FREED);
}

/* Built on the stack only: named here so that it reaches the object's BTF (scripts/gen-abi.ts). */
const struct krsi_module_state_event *krsi_abi_module_state __attribute__((unused));

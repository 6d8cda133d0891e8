// SPDX-License-Identifier: GPL-2.0
/*
 * Files mapped executable: the policy's mmap_exec hook.
 *
 * mmap_file sees every mmap(2) with PROT_EXEC of a file: the libraries the
 * dynamic loader and dlopen() map, and the program and its interpreter,
 * which the kernel maps itself during exec.  file_mprotect sees mprotect(2)
 * adding PROT_EXEC to a mapping of a file that was not executable, the other
 * way to the same end.  Anonymous executable memory (a JIT) is not a file
 * and is not looked at.
 *
 * The library selector sees the file's identity, its path and, when a rule
 * names digests, its sha256 from the content cache: a sleepable program on
 * mmap_file, attached after mmap_check so that it runs first, puts IMA's
 * digest there (or asks the agent for one, without IMA) before the decision.
 * mprotect cannot sleep and uses the cache alone: the mapping it changes was
 * made by an mmap that filled it.
 */
#include "common.h"
#include "hook.h"
#include "maps.h"
#include "outcome.h"
#include "policy.h"
#include "task.h"
#include "path_walk.h"
#include "content.h"

char LICENSE[] SEC("license") = "GPL";

#define PROT_EXEC 0x4
#define VM_EXEC 0x4

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct krsi_mmap_event);
} mmap_scratch SEC(".maps");

/* Copies st->path (n bytes with the NUL, 0: unresolved) to data[off]; returns n. */
static __always_inline __u16 put_path(struct krsi_mmap_event *e, struct policy_eval *st, __u64 off, long n)
{
	barrier_var(n);
	barrier_var(off);
	if (n <= 0 || n > KRSI_PATH_MAX || off > KRSI_PATH_MAX)
		return 0;
	if (bpf_probe_read_kernel(&e->data[off], n, st->path))
		return 0;
	return n;
}

/*
 * The mapped file's path: mmap_file is in the sleepable set, where
 * bpf_d_path() is allowed; file_mprotect is not, and walks.  source is a
 * constant at both call sites, so each program holds one of the two.
 */
static __always_inline long mapped_path(struct policy_eval *st, struct file *file, __u32 source)
{
	if (source == KRSI_MMAP_FROM_MMAP)
		return resolve_d_path(st, &file->f_path);
	return resolve_walk_path(st, &file->f_path);
}

static __always_inline int mmap_decide(struct krsi_hook_stats *stats, struct file *file, __u32 prot,
				       __u32 mflags, __u32 source)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct inode *inode = BPF_CORE_READ(file, f_inode);
	struct krsi_content_hash *cached = NULL;
	struct krsi_policy_ref ref;
	struct krsi_mmap_event *e;
	struct policy_eval *st;
	struct file *exe;
	int hash_missing = 0;
	__u32 zero = 0;
	long n = -1;
	int verdict;

	st = policy_state();
	if (!st)
		return 0;
	if (krsi_policy_begin(KRSI_PHOOK_MMAP_EXEC)) {
		krsi_policy_ids();
		krsi_policy_lineage(1);
		if (krsi_policy_wants(KRSI_DIM_LIBRARY)) {
			st->value[0] = BPF_CORE_READ(inode, i_ino);
			st->value[1] = BPF_CORE_READ(inode, i_sb, s_dev);
			st->value[2] = st->value[3] = 0;
			krsi_policy_match_value(KRSI_DIM_LIBRARY);
			if (krsi_policy_dim_flags(KRSI_DIM_LIBRARY) & KRSI_DIMF_SHA256) {
				cached = content_lookup(inode);
				if (cached) {
					__builtin_memcpy(st->value, cached->sha256, sizeof(st->value));
					krsi_policy_match_value(KRSI_DIM_LIBRARY);
				} else {
					hash_missing = 1;
				}
			}
			n = mapped_path(st, file, source);
			if (n > 0)
				krsi_policy_match_path(KRSI_DIM_LIBRARY);
			krsi_policy_narrow(KRSI_DIM_LIBRARY);
		}
	}
	krsi_policy_decide();
	if (!policy_noteworthy(&st->ref))
		return 0;

	ref = st->ref;
	verdict = outcome_enforce(&ref, stats);
	if (!outcome_rate_ok(stats))
		return verdict;
	e = bpf_map_lookup_elem(&mmap_scratch, &zero);
	if (!e)
		return verdict;
	record_begin(&e->hdr, KRSI_EVENT_MMAP_EXEC);
	fill_task(&e->task);
	e->policy = ref;
	e->ino = BPF_CORE_READ(inode, i_ino);
	e->dev = BPF_CORE_READ(inode, i_sb, s_dev);
	e->prot = prot;
	e->mmap_flags = mflags;
	e->source = source;
	e->flags = hash_missing ? KRSI_MMAP_HASH_MISSING : 0;
	e->__pad = 0;
	e->__pad2 = 0;
	if (!cached && !hash_missing)
		cached = content_lookup(inode);
	if (cached) {
		__builtin_memcpy(e->sha256, cached->sha256, sizeof(e->sha256));
		e->flags |= KRSI_MMAP_SHA256_KNOWN;
	} else {
		__builtin_memset(e->sha256, 0, sizeof(e->sha256));
	}
	if (n < 0)
		n = mapped_path(st, file, source);
	e->path_len = put_path(e, st, 0, n);
	if (!e->path_len)
		e->flags |= KRSI_MMAP_PATH_UNRESOLVED;
	/* The program: the acting process's executable. */
	exe = BPF_CORE_READ(task, mm, exe_file);
	e->exe_ino = exe ? BPF_CORE_READ(exe, f_inode, i_ino) : 0;
	e->exe_dev = exe ? BPF_CORE_READ(exe, f_inode, i_sb, s_dev) : 0;
	n = exe ? resolve_walk_path(st, &exe->f_path) : 0;
	e->exe_path_len = put_path(e, st, e->path_len, n);
	if (!e->exe_path_len)
		e->flags |= KRSI_MMAP_EXE_UNRESOLVED;
	e->hdr.size = __builtin_offsetof(struct krsi_mmap_event, data) + e->path_len + e->exe_path_len;
	if (e->hdr.size > sizeof(*e))
		e->hdr.size = sizeof(*e);
	outcome_emit(stats, verdict != 0, e, e->hdr.size);
	return verdict;
}

SEC("lsm/mmap_file")
int BPF_PROG(mmap_check, struct file *file, unsigned long reqprot, unsigned long prot, unsigned long flags, int ret)
{
	struct krsi_hook_stats *stats;

	if (ret)
		return krsi_pass(ret);
	if (!file || !(prot & PROT_EXEC))
		return 0;
	stats = hook_enter(KRSI_HOOK_MMAP_FILE);
	return mmap_decide(stats, file, prot, flags, KRSI_MMAP_FROM_MMAP);
}

SEC("lsm/file_mprotect")
int BPF_PROG(mprotect_check, struct vm_area_struct *vma, unsigned long reqprot, unsigned long prot, int ret)
{
	struct krsi_hook_stats *stats;
	struct file *file;

	if (ret)
		return krsi_pass(ret);
	if (!(prot & PROT_EXEC) || (vma->vm_flags & VM_EXEC))
		return 0;
	file = vma->vm_file;
	if (!file)
		return 0;
	stats = hook_enter(KRSI_HOOK_FILE_MPROTECT);
	return mmap_decide(stats, file, prot, 0, KRSI_MMAP_FROM_MPROTECT);
}

/*
 * The digest of a file about to be mapped executable, into the content
 * cache, when some rule's library selector names digests.  Attached after
 * mmap_check so that it runs before it.
 */
SEC("lsm.s/mmap_file")
int BPF_PROG(mmap_hash, struct file *file, unsigned long reqprot, unsigned long prot, unsigned long flags, int ret)
{
	struct krsi_hook_stats *stats;
	struct krsi_policy_needs *needs;
	struct inode *inode;
	__u8 sha[32];
	__u32 zero = 0;
	long algo;

	if (ret)
		return krsi_pass(ret);
	if (!file || !(prot & PROT_EXEC))
		return 0;
	needs = bpf_map_lookup_elem(&policy_needs, &zero);
	if (!needs || !needs->library_sha256)
		return 0;
	stats = hook_enter(KRSI_HOOK_MMAP_HASH);
	inode = file->f_inode;
	if (content_lookup(inode))
		return 0;
	if (!cfg_ima) {
		content_request(inode, &file->f_path, 0, 1, stats);
		return 0;
	}
	algo = bpf_ima_file_hash(file, sha, sizeof(sha));
	if (algo == HASH_ALGO_SHA256)
		content_store(inode, sha);
	return 0;
}

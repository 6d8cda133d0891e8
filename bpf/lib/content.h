/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The content cache: sha256 digests of files by identity (dev, ino), for the
 * sha256 selectors of exec's binary and mmap_exec's library.
 *
 * The sleepable programs fill it from IMA (bpf_ima_file_hash) where the
 * kernel offers it; otherwise (an old kernel, `krsi run --no-ima`) a miss
 * asks the agent, through a KRSI_EVENT_HASH_REQUEST record, to hash the file
 * and write the entry.  An entry holds the inode's ctime and generation as
 * they were when the digest was taken, and is used only while they still
 * are: a write changes ctime, and an inode number reused for another file
 * comes with another generation.  Entries are also deleted when the file is
 * opened for writing, unlinked or replaced (file.bpf.c), so that a changed
 * file is never judged by its old content.
 */
#ifndef KRSI_CONTENT_H
#define KRSI_CONTENT_H

#include "common.h"
#include "hook.h"
#include "maps.h"
#include "policy.h"

/*
 * 1: digests come from IMA (bpf_ima_file_hash) where the cache has none;
 * 0: from the cache alone, which the agent fills (a kernel without the
 * helper, or `krsi run --no-ima`).  With 0 the helper's call is dead code,
 * which the verifier never looks at, so the object loads where it is absent.
 */
const volatile __u32 cfg_ima __weak = 1;

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct krsi_inode_key);
	__type(value, struct krsi_content_hash);
} content_hashes SEC(".maps") __weak;

/* inode ctime: a timespec64 until 6.5, __i_ctime in 6.6-6.10, two integers from 6.11. */
struct inode___v66 {
	struct timespec64 __i_ctime;
} __attribute__((preserve_access_index));

struct inode___v611 {
	time64_t i_ctime_sec;
	u32 i_ctime_nsec;
} __attribute__((preserve_access_index));

static __always_inline void inode_ctime(struct inode *inode, __s64 *sec, __u32 *nsec)
{
	if (bpf_core_field_exists(struct inode___v611, i_ctime_sec)) {
		struct inode___v611 *i = (void *)inode;

		*sec = BPF_CORE_READ(i, i_ctime_sec);
		*nsec = BPF_CORE_READ(i, i_ctime_nsec);
	} else if (bpf_core_field_exists(struct inode___v66, __i_ctime)) {
		struct inode___v66 *i = (void *)inode;

		*sec = BPF_CORE_READ(i, __i_ctime.tv_sec);
		*nsec = BPF_CORE_READ(i, __i_ctime.tv_nsec);
	} else {
		*sec = BPF_CORE_READ(inode, i_ctime.tv_sec);
		*nsec = BPF_CORE_READ(inode, i_ctime.tv_nsec);
	}
}

static __always_inline void inode_key(struct inode *inode, struct krsi_inode_key *key)
{
	key->ino = BPF_CORE_READ(inode, i_ino);
	key->dev = BPF_CORE_READ(inode, i_sb, s_dev);
	key->__pad = 0;
}

/* The cached digest of inode, if there is one and it is still the file's. */
static __always_inline struct krsi_content_hash *content_lookup(struct inode *inode)
{
	struct krsi_inode_key key;
	struct krsi_content_hash *h;
	__s64 sec;
	__u32 nsec;

	if (!inode)
		return NULL;
	inode_key(inode, &key);
	h = bpf_map_lookup_elem(&content_hashes, &key);
	if (!h)
		return NULL;
	inode_ctime(inode, &sec, &nsec);
	if (h->ctime_sec != sec || h->ctime_nsec != nsec || h->generation != BPF_CORE_READ(inode, i_generation))
		return NULL;
	return h;
}

/* Stores a digest of inode taken now (IMA's). */
static __always_inline void content_store(struct inode *inode, const __u8 *sha256)
{
	struct krsi_content_hash v = {};
	struct krsi_inode_key key;

	inode_key(inode, &key);
	__builtin_memcpy(v.sha256, sha256, sizeof(v.sha256));
	inode_ctime(inode, &v.ctime_sec, &v.ctime_nsec);
	v.generation = BPF_CORE_READ(inode, i_generation);
	bpf_map_update_elem(&content_hashes, &key, &v, BPF_ANY);
}

/* Whether some rule needs digests: only then is the cache kept up to date. */
static __always_inline int content_in_use(void)
{
	struct krsi_policy_needs *needs;
	__u32 zero = 0;

	needs = bpf_map_lookup_elem(&policy_needs, &zero);
	return needs && (needs->sha256 || needs->library_sha256);
}

static __always_inline void content_invalidate(struct inode *inode)
{
	struct krsi_inode_key key;

	if (!inode)
		return;
	inode_key(inode, &key);
	bpf_map_delete_elem(&content_hashes, &key);
}

/*
 * Asks the agent to hash the file at path (inode's): the record is built in
 * the ring itself, as sleepable programs may not share a per-CPU scratch.
 */
static __always_inline void content_request(struct inode *inode, struct path *path, __u32 flags,
					    int with_d_path, struct krsi_hook_stats *stats)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct krsi_hash_request *r;
	struct krsi_event_header numbered = {};
	long n = 0;

	number_record(&numbered, KRSI_RING_EVENTS);
	r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		/* Numbered and lost: counted like emit()'s failed writes. */
		count_lost(KRSI_RING_EVENTS);
		if (stats)
			stats->dropped++;
		return;
	}
	r->hdr.seq = numbered.seq;
	r->hdr.cpu = numbered.cpu;
	r->hdr.ring = numbered.ring;
	record_begin_sized(&r->hdr, KRSI_EVENT_HASH_REQUEST, sizeof(*r));
	r->ino = BPF_CORE_READ(inode, i_ino);
	r->dev = BPF_CORE_READ(inode, i_sb, s_dev);
	r->tgid = bpf_get_current_pid_tgid() >> 32;
	r->start_ns = task->group_leader->start_boottime;
	inode_ctime(inode, &r->ctime_sec, &r->ctime_nsec);
	r->generation = BPF_CORE_READ(inode, i_generation);
	r->flags = flags;
	r->__pad = 0;
	if (with_d_path)
		n = bpf_d_path(path, r->path, sizeof(r->path));
	if (n <= 0 || n > KRSI_PATH_MAX) {
		n = 0;
		r->path[0] = '\0';
		r->flags |= KRSI_HASH_REQ_PATH_UNRESOLVED;
	}
	r->path_len = n;
	bpf_ringbuf_submit(r, 0);
	if (stats)
		stats->emitted++;
}

#endif /* KRSI_CONTENT_H */

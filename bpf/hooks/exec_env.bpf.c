// SPDX-License-Identifier: GPL-2.0
/*
 * The environment of a new image, from a sleepable bprm_committed_creds
 * program that runs before exec_committed (attached after it: BPF LSM
 * trampolines run the most recently attached program first).
 *
 * At bprm_committed_creds the new image's stack holds argv's strings from
 * bprm->p, then envp's, then the file name at bprm->exec, laid end to end.
 * The environment is read backwards from bprm->exec, string by string (the
 * last one first, which is the one the dynamic loader obeys when a name is
 * given twice), with faulting reads (bpf_copy_from_user) over at most
 * KRSI_ENV_SCAN_MAX bytes: a larger environment is flagged incomplete.
 *
 * For each string, its name (up to '=') is hashed (FNV-1a, as env selectors
 * are keyed) and compared with the names asked for (env_record): the value
 * of a match is copied, at most KRSI_ENV_VALUE_MAX - 1 bytes, into the task's
 * exec_env_values storage.  Other variables' bytes are read only into the stack of
 * this program, 64 at a time, to find where each string ends and what its
 * name is; nothing of them is written anywhere.  Names that env selectors use
 * (env_watch) are noted, for exec_committed's check of the decision made at
 * bprm_check_security against the environment the image really got.
 */
#include "common.h"
#include "hook.h"
#include "maps.h"
#include "policy.h"
#include "exec_env.h"

char LICENSE[] SEC("license") = "GPL";

/* 1 when the agent asked for values (env_record is not empty). */
const volatile __u32 cfg_env_record = 1;

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL
#define CHUNK 64
#define NAME_PIECES 4		/* names are hashed over their first 256 bytes (policy strings: 255) */

/* bpf_loop()'s context must be on the stack: it only carries the storage. */
struct env_ctx {
	struct exec_env_state *s;
};

/* A fresh load the verifier cannot relate to earlier ones. */
#define LOAD(x) (*(volatile typeof(x) *)&(x))

/* Looks for the highest NUL in [lo, pos), CHUNK bytes at a time, from the top. */
static long chunk_step(__u32 i, void *ctx)
{
	struct exec_env_state *s = ((struct env_ctx *)ctx)->s;
	struct env_scan_pos *c = &s->scan;
	char buf[CHUNK];
	__u64 n, start, pos = LOAD(c->pos), lo = LOAD(c->lo);
	int k;

	if (pos <= lo)
		return 1;
	n = pos - lo;
	if (n > CHUNK)
		n = CHUNK;
	start = pos - n;
	c->n = n;
	barrier_var(n);
	if (n == 0 || n > CHUNK)
		return 1;
	if (bpf_copy_from_user(buf, n, (const void *)start)) {
		c->fault = 1;
		return 1;
	}
	for (k = CHUNK - 1; k >= 0; k--) {
		if (k >= LOAD(c->n))
			continue;
		if (buf[k] == '\0') {
			c->nul = start + k;
			return 1;
		}
	}
	c->pos = start;
	return 0;
}

/* Hashes the name of the string at scan.start, CHUNK bytes at a time. */
static long name_step(__u32 i, void *ctx)
{
	struct exec_env_state *s = ((struct env_ctx *)ctx)->s;
	struct env_scan_pos *c = &s->scan;
	__u64 off = (__u64)i * CHUNK, n, len = LOAD(c->len);
	char buf[CHUNK];
	int k;

	if (LOAD(c->name_done) || off >= len)
		return 1;
	n = len - off;
	if (n > CHUNK)
		n = CHUNK;
	c->n = n;
	barrier_var(n);
	if (n == 0 || n > CHUNK)
		return 1;
	if (bpf_copy_from_user(buf, n, (const void *)(LOAD(c->start) + off))) {
		c->fault = 1;
		return 1;
	}
	if (i == 0)
		__builtin_memcpy(c->head, buf, CHUNK);
	for (k = 0; k < CHUNK; k++) {
		char ch;

		if (k >= LOAD(c->n)) {
			/* The string ended without '=': all of it is the name. */
			c->name_done = 1;
			return 1;
		}
		ch = buf[k];
		if (ch == '=') {
			c->name_done = 1;
			return 1;
		}
		c->hash = (LOAD(c->hash) ^ (__u8)ch) * FNV_PRIME;
		c->name_len = LOAD(c->name_len) + 1;
	}
	return 0;
}

static __always_inline int same_name(const char *a, const char *b, __u32 len)
{
	int k;

	for (k = 0; k < KRSI_ENV_NAME_MAX - 1; k++) {
		if (k >= len)
			return 1;
		if (a[k] != b[k])
			return 0;
	}
	return 1;
}

/*
 * Slot idx gets n bytes of the value of the string at scan.start, and the
 * name of rec; the values' storage is created on the first one.
 */
static __always_inline void copy_value(struct exec_env_state *s, __u32 idx, __u64 n, struct krsi_env_name *rec)
{
	struct env_scan_pos *c = &s->scan;
	__u64 src = LOAD(c->start) + LOAD(c->name_len) + 1;
	struct exec_env_values *v;
	char *dst;

	v = bpf_task_storage_get(&exec_env_values, bpf_get_current_task_btf(), 0,
				 BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!v) {
		c->fault = 1;
		return;
	}
	barrier_var(idx);
	idx &= KRSI_ENV_RECORD_MAX - 1;
	dst = v->value[idx];
	barrier_var(n);
	n &= KRSI_ENV_VALUE_MAX - 1;
	if (n > 0 && bpf_copy_from_user(dst, n, (const void *)src)) {
		c->fault = 1;
		return;
	}
	dst[n] = '\0';
	s->value_len[idx] = n;
	__builtin_memcpy(v->name[idx], rec->name, KRSI_ENV_NAME_MAX);
	s->name_len[idx] = rec->len;
}

static __always_inline void look_at_string(struct env_ctx *ctx)
{
	struct exec_env_state *s = ctx->s;
	struct env_scan_pos *c = &s->scan;
	struct krsi_env_name *rec;
	__u64 vlen, n, bit, len, hash;
	__u32 idx, name_len;

	c->hash = FNV_OFFSET;
	c->name_len = 0;
	c->name_done = 0;
	bpf_loop(NAME_PIECES, name_step, ctx, 0);
	if (LOAD(c->fault))
		return;
	hash = LOAD(c->hash);
	name_len = LOAD(c->name_len);
	len = LOAD(c->len);

	if (bpf_map_lookup_elem(&env_watch, &hash)) {
		idx = s->watched_count;
		if (idx < KRSI_ENV_WATCH_MAX) {
			s->watched[idx & (KRSI_ENV_WATCH_MAX - 1)] = hash;
			s->watched_count = idx + 1;
		} else {
			s->flags |= KRSI_EXEC_ENV_INCOMPLETE;
		}
	}
	if (!cfg_env_record)
		return;
	rec = bpf_map_lookup_elem(&env_record, &hash);
	if (!rec || rec->len != name_len || rec->len >= KRSI_ENV_NAME_MAX || rec->index >= KRSI_ENV_RECORD_MAX ||
	    len <= name_len)
		return;
	idx = rec->index;
	bit = 1ULL << (idx & (KRSI_ENV_RECORD_MAX - 1));
	/* The last occurrence of a name was seen first: it is the one kept. */
	if ((s->found & bit) || !same_name(c->head, rec->name, rec->len))
		return;
	vlen = len - name_len - 1;
	n = vlen < KRSI_ENV_VALUE_MAX - 1 ? vlen : KRSI_ENV_VALUE_MAX - 1;
	copy_value(s, idx, n, rec);
	if (LOAD(c->fault))
		return;
	s->found |= bit;
	if (vlen > n)
		s->truncated |= bit;
}

/* One environment string, from the last: delimit it, then look at it. */
static long string_step(__u32 i, void *ctx)
{
	struct exec_env_state *s = ((struct env_ctx *)ctx)->s;
	struct env_scan_pos *c = &s->scan;
	__u64 start, first, lo;

	if (LOAD(c->left) == 0)
		return 1;
	c->pos = LOAD(c->cur_end);
	c->nul = 0;
	bpf_loop(KRSI_ENV_SCAN_MAX / CHUNK, chunk_step, ctx, 0);
	if (LOAD(c->fault))
		return 1;
	first = LOAD(c->first);
	lo = LOAD(c->lo);
	if (LOAD(c->nul))
		start = LOAD(c->nul) + 1;
	else if (lo == first)
		start = first;		/* the area's first string (no argv before it) */
	else
		return 1;		/* beyond what may be read: incomplete */
	c->start = start;
	c->len = LOAD(c->cur_end) - start;
	look_at_string(ctx);
	if (LOAD(c->fault))
		return 1;
	c->left = LOAD(c->left) - 1;
	if (start <= first || start <= lo)
		return 1;
	c->cur_end = start - 1;
	return 0;
}

SEC("lsm.s/bprm_committed_creds")
int BPF_PROG(exec_env_scan, struct linux_binprm *bprm)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct krsi_policy_needs *needs;
	struct env_ctx wrap = {};
	struct exec_inflight *inflight;
	struct exec_env_state *s;
	__u64 end, first;
	__u32 zero = 0;

	needs = bpf_map_lookup_elem(&policy_needs, &zero);
	if (!cfg_env_record && !(needs && needs->env_backstop))
		return 0;
	hook_enter(KRSI_HOOK_EXEC_ENV);
	inflight = bpf_task_storage_get(&exec_ctx, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!inflight)
		return 0;
	s = &inflight->env;
	s->bprm = (__u64)bprm;
	s->flags = 0;
	s->found = 0;
	s->truncated = 0;
	s->watched_count = 0;
	s->scan.fault = 0;

	end = (__u64)bprm->exec;	/* the file name; the last env string's NUL is just below */
	first = bprm->p;
	s->scan.first = first;
	s->scan.left = bprm->envc;
	if (bprm->envc == 0 || end <= first)
		return 0;
	s->scan.cur_end = end - 1;
	s->scan.lo = end - first > KRSI_ENV_SCAN_MAX ? end - KRSI_ENV_SCAN_MAX : first;
	wrap.s = s;
	bpf_loop(KRSI_ENV_MAX, string_step, &wrap, 0);
	if (LOAD(s->scan.left) || LOAD(s->scan.fault))
		s->flags |= KRSI_EXEC_ENV_INCOMPLETE;
	return 0;
}

/* Written by the agent or built in the ring: named here so that the types reach the object's BTF. */
const struct krsi_hash_request *krsi_abi_hash_request __attribute__((unused));
const struct krsi_env_name *krsi_abi_env_name __attribute__((unused));

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the sleepable exec_env program (bpf/hooks/exec_env.bpf.c) found in a
 * new image's environment, for exec_committed (bpf/hooks/exec.bpf.c), which
 * runs after it on the same hook: the values of the variables named in
 * env_record, and which names that policies select on (env_watch) are
 * present.  It is part of the exec in flight (exec_ctx below), apart from
 * struct krsi_task_ctx, which the agent rewrites.  The values take 9 KiB and
 * are rarely there: they have a storage of their own, allocated only when one
 * is found (zeroing 9 KiB on every exec was the largest single cost of the
 * exec path measured by `krsi bench progs`).
 */
#ifndef KRSI_EXEC_ENV_H
#define KRSI_EXEC_ENV_H

#include "common.h"

/*
 * The scan's position.  It lives in the storage, not on the stack, so that
 * the verifier sees every load of it as an unknown value: a bpf_loop()
 * callback is verified until its states converge on newer kernels, and
 * positions and lengths it could track exactly would never converge.
 */
struct env_scan_pos {
	__u64 lo;		/* lowest address that may be read */
	__u64 first;		/* where the area's first string starts (bprm->p) */
	__u64 cur_end;		/* the NUL that ends the string being delimited */
	__u64 pos;		/* the NUL search reads below this */
	__u64 n;		/* bytes of the current chunk */
	__u64 nul;		/* the NUL found below cur_end; 0 if none yet */
	__u64 start;		/* the string looked at */
	__u64 len;
	__u64 hash;		/* FNV-1a of its name */
	__u32 name_len;
	__u32 name_done;
	__u32 left;		/* environment strings not looked at yet */
	__u32 fault;
	char head[64];		/* the string's first bytes: its name, for the comparison */
};

/*
 * Kept by the task from one exec to the next (exec_committed clears bprm):
 * the common exec, whose environment names nothing recorded, allocates and
 * frees nothing here.
 */
struct exec_env_state {
	struct env_scan_pos scan;
	__u64 bprm;				/* the exec this is about (0: none) */
	__u32 flags;				/* KRSI_EXEC_ENV_INCOMPLETE */
	__u32 found;				/* bit i: slot i holds a value */
	__u32 truncated;			/* bit i: slot i's value was cut */
	__u32 watched_count;
	__u64 watched[KRSI_ENV_WATCH_MAX];	/* FNV-1a hashes of watched names present */
	__u16 value_len[KRSI_ENV_RECORD_MAX];	/* bytes, NUL excluded */
	__u8 name_len[KRSI_ENV_RECORD_MAX];
};

/*
 * The recorded values themselves (9 KiB), created only when the environment
 * holds a name of env_record, and deleted by exec_committed once reported.
 */
struct exec_env_values {
	char name[KRSI_ENV_RECORD_MAX][KRSI_ENV_NAME_MAX];
	char value[KRSI_ENV_RECORD_MAX][KRSI_ENV_VALUE_MAX];
};

/*
 * The exec in flight, one storage per task for both programs' halves: what
 * bprm_check_security decided (and the digest it saw), and what the
 * environment scan found.  Only BPF writes it.  One storage, not two: a
 * storage's first allocation is a large part of a fork+exec's cost.
 */
struct exec_inflight {
	struct krsi_exec_ctx x;
	struct exec_env_state env;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct exec_inflight);
} exec_ctx SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct exec_env_values);
} exec_env_values SEC(".maps") __weak;

/* Names whose values exec events carry, by FNV-1a hash of the name (set by the agent). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KRSI_ENV_RECORD_MAX);
	__type(key, __u64);
	__type(value, struct krsi_env_name);
} env_record SEC(".maps") __weak;

/* Names that env selectors of any installed generation or env list name (FNV-1a). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u32);
} env_watch SEC(".maps") __weak;

#endif /* KRSI_EXEC_ENV_H */

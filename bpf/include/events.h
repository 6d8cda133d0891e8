/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The kernel/user ABI of krsi.
 *
 * Every record a BPF program writes to a ring buffer and every key or value
 * that user space puts in a map is declared here, once.  This header is
 * included by every BPF program under bpf/, by the native binding (which reads the
 * record header to copy no more than the valid bytes) and, through the
 * decoders that scripts/gen-abi.ts generates from the compiled objects' BTF,
 * by the TypeScript agent.  A test compares those decoders with the BTF so
 * the two sides cannot drift apart silently.
 *
 * Rules that keep the layout identical on both sides:
 *  - fixed-width types only; no bool, no enum-typed fields, no pointers;
 *  - every field naturally aligned and every hole filled by an explicit
 *    __pad field, so sizeof() never depends on the compiler;
 *  - constants are #defines with integer values (the generator reads them
 *    with `clang -dM -E`).
 */
#ifndef KRSI_EVENTS_H
#define KRSI_EVENTS_H

#ifndef __bpf__
#include <linux/types.h>
#endif

/* Bumped whenever a record's layout changes incompatibly. */
#define KRSI_ABI_VERSION 1

#define KRSI_COMM_LEN 16
/* bpf_d_path() writes at most PATH_MAX bytes, the trailing NUL included. */
#define KRSI_PATH_MAX 4096
/* The name execve() was called with, as the kernel keeps it (bprm->filename). */
#define KRSI_FILENAME_MAX 256
/* Bytes of argv strings, NUL separators included, that one event carries. */
#define KRSI_ARGS_MAX 4096
/* Strings of argv read at most; the loop bound the verifier needs. */
#define KRSI_ARGV_MAX 128

/*
 * Variable-length tail of an exec record: path, then filename, then argv.
 * Each region is written at the end of the previous one, and the verifier
 * must see every write stay inside the buffer whatever the earlier lengths
 * were, hence the slack: the last argv string may start just below
 * KRSI_ARGS_MAX and be read with a KRSI_ARGS_MAX bound.  Only the bytes in
 * use (hdr.size) travel through the ring.
 */
#define KRSI_EXEC_DATA_MAX (KRSI_PATH_MAX + KRSI_FILENAME_MAX + 2 * KRSI_ARGS_MAX)

/* struct krsi_event_header.type */
#define KRSI_EVENT_EXEC 1

/* Which LSM or tracepoint hook a counter or an event belongs to. */
#define KRSI_HOOK_BPRM_CHECK 0
#define KRSI_HOOK_BPRM_COMMITTED 1
#define KRSI_HOOK_COUNT 2

/* Decision recorded in an event. */
#define KRSI_DECISION_ALLOW 0
#define KRSI_DECISION_DENY 1

/* struct krsi_exec_event.flags */
#define KRSI_EXEC_ARGV_TRUNCATED (1 << 0)   /* more argv than the bounds: some strings or bytes are missing */
#define KRSI_EXEC_ARGV_UNREADABLE (1 << 1)  /* argv could not be read (fault, kernel-initiated exec) */
#define KRSI_EXEC_PATH_UNRESOLVED (1 << 2)  /* bpf_d_path() failed: path is empty */
#define KRSI_EXEC_FILENAME_TRUNCATED (1 << 3)

/* First bytes of every ring buffer record. */
struct krsi_event_header {
	__u16 type;		/* KRSI_EVENT_* */
	__u16 abi;		/* KRSI_ABI_VERSION of the program that wrote it */
	__u32 size;		/* bytes of this record that hold data (<= the ring sample) */
	__u64 time_ns;		/* bpf_ktime_get_ns(): CLOCK_MONOTONIC, the clock of uv_hrtime() */
};

/* The task an event is about, read in the context of the hook. */
struct krsi_task {
	__u32 pid;		/* thread id (task->pid) */
	__u32 tgid;		/* process id (task->tgid) */
	__u32 ppid;		/* process id of the real parent */
	__u32 uid;		/* real ids */
	__u32 gid;
	__u32 euid;		/* effective ids */
	__u32 egid;
	__u32 __pad;
	__u64 cgroup_id;	/* cgroup v2 id, as bpf_get_current_cgroup_id() */
	__u64 start_ns;		/* task->start_boottime: with tgid, a process identity that survives pid reuse */
	char comm[KRSI_COMM_LEN];
};

/*
 * One exec.  Allowed execs are reported from bprm_committed_creds, after the
 * point of no return, with the new image's credentials and argv; denied ones
 * from bprm_check_security, with the caller's credentials and comm and the
 * argv the caller passed.
 */
struct krsi_exec_event {
	struct krsi_event_header hdr;
	struct krsi_task task;
	__u64 ino;		/* inode of the executed file */
	__u32 dev;		/* its superblock's dev_t, kernel encoding: major << 20 | minor */
	__u32 decision;		/* KRSI_DECISION_* */
	__u32 flags;		/* KRSI_EXEC_* */
	__u32 argc;		/* argc of the exec; may exceed args_count */
	__u16 path_len;		/* bytes of data[] holding the path, its NUL included; 0 if unresolved */
	__u16 filename_len;	/* bytes after the path holding the filename, NUL included */
	__u16 args_len;		/* bytes after the filename holding argv strings, NULs included */
	__u16 args_count;	/* argv strings in those bytes */
	__u32 rule_id;		/* the deny rule that matched, 0 when none */
	__u32 __pad;
	char data[KRSI_EXEC_DATA_MAX];
};

/* Key of the deny_exec map: a file by its identity, whatever name reaches it. */
struct krsi_inode_key {
	__u64 ino;
	__u32 dev;		/* kernel encoding, as krsi_exec_event.dev */
	__u32 __pad;
};

/* Per-hook, per-CPU counters (the counters map, index KRSI_HOOK_*). */
struct krsi_hook_stats {
	__u64 seen;		/* times the program ran to its end or its decision */
	__u64 denied;		/* decisions that returned -EPERM */
	__u64 emitted;		/* records written to a ring */
	__u64 dropped;		/* records lost because a ring was full */
};

#endif /* KRSI_EVENTS_H */

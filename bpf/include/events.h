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

/*
 * KRSI_ABI_VERSION, which every record header carries: generated from the
 * layouts of every struct below (scripts/gen-abi.ts), never bumped by hand.
 */
#include "abi_version.h"

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
#define KRSI_EVENT_FILE_OPEN 2
#define KRSI_EVENT_FILE_UNLINK 3
#define KRSI_EVENT_MOUNT 4
#define KRSI_EVENT_MODULE_LOAD 5
#define KRSI_EVENT_CONNECT 6
#define KRSI_EVENT_MODULE_STATE 7	/* a module formed or freed (tracepoints): the agent's module tracker */
#define KRSI_EVENT_MMAP_EXEC 16		/* a file mapped executable (mmap, mprotect) */
#define KRSI_EVENT_PTRACE 17		/* a ptrace attach or PTRACE_TRACEME */
#define KRSI_EVENT_BPF 18		/* a bpf(BPF_PROG_LOAD) */
#define KRSI_EVENT_SETID 19		/* a change of user or group ids */
#define KRSI_EVENT_HASH_REQUEST 20	/* not an event: the agent is asked to hash a file for the content cache */

/* Which LSM or tracepoint hook a counter belongs to (the counters map index). */
#define KRSI_HOOK_BPRM_CHECK 0
#define KRSI_HOOK_BPRM_COMMITTED 1
#define KRSI_HOOK_EXEC_HASH 2
#define KRSI_HOOK_TASK_FORK 3
#define KRSI_HOOK_FILE_OPEN 4
#define KRSI_HOOK_PATH_UNLINK 5
#define KRSI_HOOK_SB_KERN_MOUNT 6
#define KRSI_HOOK_KERNEL_READ_FILE 7
#define KRSI_HOOK_KERNEL_LOAD_DATA 8
#define KRSI_HOOK_SOCKET_CONNECT 9
#define KRSI_HOOK_SB_MOUNT 10		/* mount(2)'s source, flags and mountpoint, for sb_kern_mount */
#define KRSI_HOOK_MODULE_HASH 11	/* IMA digest of a module file (sleepable kernel_read_file) */
#define KRSI_HOOK_MODULE_LOADED 12	/* tracepoint module_load */
#define KRSI_HOOK_MODULE_FREED 13	/* tracepoint module_free */
#define KRSI_HOOK_EXEC_ENV 14		/* sleepable bprm_committed_creds: the new image's environment */
#define KRSI_HOOK_PATH_RENAME 15
#define KRSI_HOOK_MMAP_FILE 16
#define KRSI_HOOK_FILE_MPROTECT 17
#define KRSI_HOOK_MMAP_HASH 18		/* sleepable mmap_file: IMA digest of a library, for the content cache */
#define KRSI_HOOK_PTRACE_ACCESS 19
#define KRSI_HOOK_PTRACE_TRACEME 20
#define KRSI_HOOK_BPF 21
#define KRSI_HOOK_SETUID 22
#define KRSI_HOOK_SETGID 23
#define KRSI_HOOK_COUNT 24

/* struct krsi_exec_event.flags */
#define KRSI_EXEC_ARGV_TRUNCATED (1 << 0)   /* more argv than the bounds: some strings or bytes are missing */
#define KRSI_EXEC_ARGV_UNREADABLE (1 << 1)  /* argv could not be read (fault, kernel-initiated exec) */
#define KRSI_EXEC_PATH_UNRESOLVED (1 << 2)  /* bpf_d_path() failed: path is empty */
#define KRSI_EXEC_FILENAME_TRUNCATED (1 << 3)
#define KRSI_EXEC_FILELESS_MEMFD (1 << 4)    /* the file is a memfd (memfd_create), never on a file system */
#define KRSI_EXEC_FILELESS_DELETED (1 << 5)  /* the file has no name left (i_nlink 0): unlinked, or O_TMPFILE */
#define KRSI_EXEC_ENV_INCOMPLETE (1 << 6)    /* the environment was not scanned entirely (KRSI_ENV_SCAN_MAX, a fault) */
#define KRSI_EXEC_ENV_MISMATCH (1 << 7)      /* the new image's environment made the policy decide otherwise than the check */
#define KRSI_EXEC_HASH_MISSING (1 << 8)      /* a sha256 selector needed the file's digest and none was known */
#define KRSI_EXEC_ENV_READ (1 << 9)          /* the new image's environment was scanned: env_* say what was recorded */

/* --- The environment of an exec ------------------------------------------
 *
 * A sleepable bprm_committed_creds program scans the new image's
 * environment strings (on its new stack, below the file name, envc of them)
 * and records the values of the variables named in the env_record map: an
 * exec event carries them as "NAME=value" strings after argv.  Other
 * variables' bytes are only looked at for the NUL that ends them.
 */
#define KRSI_ENV_RECORD_MAX 8		/* names whose values are recorded */
#define KRSI_ENV_NAME_MAX 64		/* bytes of such a name, "=" included */
#define KRSI_ENV_VALUE_MAX 1024		/* bytes of a recorded value, its NUL included */
#define KRSI_ENV_SCAN_MAX (32 * 4096)	/* bytes of environment strings read at most (MAX_ARG_STRLEN) */
#define KRSI_ENV_WATCH_MAX 16		/* names policies select on, found in one exec's environment */
#define KRSI_EXEC_ENV_DATA_MAX (KRSI_ENV_RECORD_MAX * (KRSI_ENV_NAME_MAX + KRSI_ENV_VALUE_MAX))

/* A name whose value exec events carry: env_record, keyed by the name's FNV-1a hash. */
struct krsi_env_name {
	__u32 len;			/* bytes of name, no NUL, at most KRSI_ENV_NAME_MAX - 1 */
	__u32 index;			/* its slot, below KRSI_ENV_RECORD_MAX */
	char name[KRSI_ENV_NAME_MAX];
};

/* --- Policy ----------------------------------------------------------------
 *
 * Policies compile into tables the programs read.  A rule belongs to one
 * hook and is one bit of a u64: a hook has at most KRSI_RULES_MAX rules.
 * For each event, every selector dimension of the hook yields the set of
 * rules it lets through; the rules that match are the AND of those sets.
 *
 * A generation is a complete set of tables.  The agent builds a new one in
 * fresh inner maps, never changes them once published, and makes it current
 * by writing one u32 (the slot) in policy_active: a program reads the slot
 * once and uses that generation's tables throughout, so a decision never
 * mixes two generations.
 */
#define KRSI_RULES_MAX 64
#define KRSI_RULE_NONE 255		/* no rule: the hook's default decided */
#define KRSI_GEN_SLOTS 4		/* generations the outer maps hold at once */
#define KRSI_STR_MAX 256		/* policy strings: 255 bytes and a NUL */
#define KRSI_PREFIX_MAX 255		/* LPM data is at most 256 bytes: table byte + string */
#define KRSI_DIM_LISTS_MAX 4		/* dynamic lists one selector dimension may use */
#define KRSI_CLASSES_MAX 64		/* binary classes: bits of a u64 */
#define KRSI_CGROUP_LEVELS_MAX 16	/* cgroup ancestors a cgroup selector looks through */
#define KRSI_ENV_MAX 4096		/* environment strings an env selector reads at most */
#define KRSI_DFA_STATES_MAX 16384

/* Policy hooks: rule.hook.  CLASSES is not a hook but the table of binary
 * classes, evaluated on the new executable at every exec. */
#define KRSI_PHOOK_EXEC 0
#define KRSI_PHOOK_FILE_OPEN 1
#define KRSI_PHOOK_FILE_UNLINK 2
#define KRSI_PHOOK_MOUNT 3
#define KRSI_PHOOK_MODULE_LOAD 4
#define KRSI_PHOOK_CONNECT 5
#define KRSI_PHOOK_CLASSES 6
#define KRSI_PHOOK_MMAP_EXEC 7
#define KRSI_PHOOK_PTRACE 8
#define KRSI_PHOOK_BPF 9
#define KRSI_PHOOK_SETID 10
#define KRSI_PHOOK_COUNT 11

/* Rows of struct krsi_hook_policy.class_rules: which process a class selector is about. */
#define KRSI_CLASS_BINARY 0
#define KRSI_CLASS_PARENT 1
#define KRSI_CLASS_ANCESTOR 2
#define KRSI_CLASS_TARGET 3
#define KRSI_CLASS_ROWS 4

/* Selector dimensions.  A table id, which keys every policy map, is
 * hook * KRSI_DIM_COUNT + dim. */
#define KRSI_DIM_BINARY 0
#define KRSI_DIM_PARENT 1
#define KRSI_DIM_ANCESTOR 2
#define KRSI_DIM_UID 3
#define KRSI_DIM_GID 4
#define KRSI_DIM_CGROUP 5
#define KRSI_DIM_ENV 6
#define KRSI_DIM_FILE 7
#define KRSI_DIM_FSTYPE 8
#define KRSI_DIM_SOURCE 9
#define KRSI_DIM_DEVICE 10
#define KRSI_DIM_MODULE 11
#define KRSI_DIM_ADDRESS 12
#define KRSI_DIM_PORT 13
#define KRSI_DIM_SHA256 14		/* module_load: the digest of the module's bytes */
#define KRSI_DIM_BUS 15			/* mount: buses of the block device's parent devices */
#define KRSI_DIM_REMOVABLE 16		/* mount: the block device's disk is removable */
#define KRSI_DIM_FILELESS 17		/* exec: the file is a memfd or has no name (1) or not (0) */
#define KRSI_DIM_SELF 18		/* file_unlink: the victim is the actor's own executable (1) or not (0) */
#define KRSI_DIM_LIBRARY 19		/* mmap_exec: the file mapped executable */
#define KRSI_DIM_TARGET 20		/* ptrace: the other process's executable (binary classes) */
#define KRSI_DIM_PROG_TYPE 21		/* bpf: the program type (enum bpf_prog_type) */
#define KRSI_DIM_NEW_UID 22		/* setid: the new effective user id */
#define KRSI_DIM_NEW_GID 23		/* setid: the new effective group id */
#define KRSI_DIM_COUNT 24
/* A bound the verifier can see on a dimension index: a power of two above KRSI_DIM_COUNT - 1. */
#define KRSI_DIM_MASK 31

/* struct krsi_dim_policy.flags: which tables hold entries for the dimension */
#define KRSI_DIMF_STRINGS (1 << 0)
#define KRSI_DIMF_PREFIXES (1 << 1)
#define KRSI_DIMF_GLOBS (1 << 2)
#define KRSI_DIMF_VALUES (1 << 3)
#define KRSI_DIMF_NETS (1 << 4)
#define KRSI_DIMF_LISTS (1 << 5)
#define KRSI_DIMF_CLASSES (1 << 6)	/* evaluated through the task's binary classes */
#define KRSI_DIMF_SHA256 (1 << 7)	/* values include sha256 digests: the exec needs IMA's hash */

/* struct krsi_list_ref.kind: which list map holds the list's entries */
#define KRSI_LIST_STRINGS 1
#define KRSI_LIST_VALUES 2

/* Actions, as rules name them and events report them */
#define KRSI_ACTION_NONE 0
#define KRSI_ACTION_AUDIT 1
#define KRSI_ACTION_ALLOW 2
#define KRSI_ACTION_DENY 3
#define KRSI_ACTION_KILL 4
#define KRSI_ACTION_SECUREEXEC 5

/* struct krsi_hook_policy.default_action */
#define KRSI_DEFAULT_ALLOW 0
#define KRSI_DEFAULT_DENY 1
#define KRSI_DEFAULT_MONITOR_DENY 2	/* a monitor-mode policy's default deny: reported, not enforced */

/* struct krsi_policy_ref.verdict */
#define KRSI_VERDICT_ALLOW 0
#define KRSI_VERDICT_DENY 1

/* struct krsi_policy_ref.flags */
#define KRSI_REF_DEFAULT (1 << 0)	/* no rule decided: the hook's default did */
#define KRSI_REF_WOULD_DENY (1 << 1)	/* a monitor-mode rule or default would have denied */
#define KRSI_REF_AUDIT (1 << 2)		/* an audit rule matched */
#define KRSI_REF_SECUREEXEC (1 << 3)	/* the exec runs with AT_SECURE */
#define KRSI_REF_KILLED (1 << 4)	/* SIGKILL was sent to the acting process */
#define KRSI_REF_CONTEXT_UNKNOWN (1 << 5) /* the task's binary classes were unknown (rules on them did not match) */
#define KRSI_REF_NO_POLICY (1 << 6)	/* no generation is loaded */

/* Key of policy_strings (exact strings) and list_strings (table = list id). */
struct krsi_str_key {
	__u32 table;
	char s[KRSI_STR_MAX];
};

/* Key of policy_prefixes, an LPM trie: prefixlen counts bits of table and s. */
struct krsi_prefix_key {
	__u32 prefixlen;
	__u8 table;
	char s[KRSI_PREFIX_MAX];
};

/* Key of policy_values and list_values: ids, inodes, digests, ports. */
struct krsi_value_key {
	__u32 table;
	__u32 __pad;
	__u64 v[4];
};

/* Key of policy_nets, an LPM trie over IPv6 addresses (IPv4 as ::ffff:a.b.c.d). */
struct krsi_net_key {
	__u32 prefixlen;		/* 8 (the table byte) + address bits */
	__u8 table;
	__u8 addr[16];
	__u8 __pad[3];
};

/* Value of list_strings and list_values. */
struct krsi_list_entry {
	__u64 expires_ns;		/* CLOCK_MONOTONIC; 0: never */
};

/* One dynamic list a dimension consults, and the rules that reference it. */
struct krsi_list_ref {
	__u32 list;			/* list id: the table of its entries */
	__u32 kind;			/* KRSI_LIST_* */
	__u64 rules;
};

/* How one selector dimension of one hook is evaluated. */
struct krsi_dim_policy {
	__u64 constrained;		/* rules with a selector on this dimension */
	__u64 negated;			/* of those, rules whose selector says not: true */
	__u32 flags;			/* KRSI_DIMF_* */
	__u32 dfa_start;		/* policy_dfa index of the glob automaton's start state */
	struct krsi_list_ref lists[KRSI_DIM_LISTS_MAX];
};

/* Events of a rule reported per period, at most (events == 0: no limit). */
struct krsi_rate_limit {
	__u32 events;
	__u32 period_ms;
};

/* Everything about one hook in one generation (policy_hooks, index = hook). */
struct krsi_hook_policy {
	__u64 generation;
	__u64 rules;			/* bits in use */
	__u64 audit;			/* rules by action */
	__u64 allow;
	__u64 deny;
	__u64 kill;
	__u64 secureexec;
	__u64 monitor;			/* rules in monitor mode */
	__u64 after_lock;		/* rules in force only once the lock point is reached (lock_point) */
	__u32 default_action;		/* KRSI_DEFAULT_* */
	__u32 dims;			/* dimensions some rule constrains, 1 << KRSI_DIM_* */
	struct krsi_dim_policy dim[KRSI_DIM_COUNT];
	/* Rules whose binary, parent or ancestor selector each binary class satisfies. */
	__u64 class_rules[KRSI_CLASS_ROWS][KRSI_CLASSES_MAX];
	struct krsi_rate_limit rate[KRSI_RULES_MAX];
};

/* A state of a glob automaton (policy_dfa): next state per byte. */
struct krsi_dfa_state {
	__u64 accept;			/* rules whose glob matches a string ending here */
	__u16 next[256];
};

/*
 * The lock point (the lock_point map): a one-way switch, reached at boot
 * complete or by `krsi lock-point`, from which on the rules with
 * afterLockPoint: true are in force.  The agent writes it once and freezes
 * the map: nothing in user space can go back.
 */
struct krsi_lock_point {
	__u64 reached_ns;		/* CLOCK_MONOTONIC when it was reached; 0: not yet */
};

/* The current generation: one u32, so that readers never see half a write. */
struct krsi_policy_active {
	__u32 slot;			/* index into the outer policy maps; KRSI_GEN_SLOTS: none loaded */
};

/* Which policy decided, in every event that a policy decision produced. */
struct krsi_policy_ref {
	__u64 generation;
	__u64 matched;			/* every rule that matched */
	__u8 hook;			/* KRSI_PHOOK_* */
	__u8 rule;			/* the deciding rule's bit, KRSI_RULE_NONE for the default */
	__u8 action;			/* KRSI_ACTION_* of the deciding rule or default */
	__u8 verdict;			/* KRSI_VERDICT_* */
	__u8 would_rule;		/* the monitor-mode rule that would have denied */
	__u8 audit_rule;		/* the first audit rule that matched */
	__u16 flags;			/* KRSI_REF_* */
};

/* Per-task context (task storage): binary classes and the exec in flight. */
struct krsi_task_ctx {
	__u64 self_generation;		/* generation self was computed in */
	__u64 self;			/* binary classes of the task's executable */
	__u64 ancestors_generation;
	__u64 ancestors;		/* binary classes of its ancestors' executables */
};

/*
 * The exec in flight, from bprm_check_security to bprm_committed_creds.
 * Apart from the classes, which the agent rewrites for older processes: a
 * rewrite must never race with an exec between its two hooks.
 */
struct krsi_exec_ctx {
	__u8 sha256[32];		/* IMA digest of the file being executed */
	__u64 hash_ino;			/* the file that digest is of */
	__u32 hash_dev;
	__u32 hash_state;		/* KRSI_HASH_* */
	__u64 exec_bprm;		/* the exec in flight (its linux_binprm), to tell execs apart */
	struct krsi_policy_ref exec_ref; /* what bprm_check_security decided for it */
};

#define KRSI_HASH_NONE 0
#define KRSI_HASH_VALID 1
#define KRSI_HASH_UNAVAILABLE 2	/* IMA could not hash the file */
#define KRSI_HASH_MISSING 3	/* no IMA and no valid entry in the content cache: the agent was asked */

/* The rings: decisions (denials, kills, tampering) and events (telemetry). */
#define KRSI_RING_DECISIONS 0
#define KRSI_RING_EVENTS 1
#define KRSI_RING_COUNT 2

/* First bytes of every ring buffer record. */
struct krsi_event_header {
	__u16 type;		/* KRSI_EVENT_* */
	__u16 abi;		/* KRSI_ABI_VERSION of the program that wrote it */
	__u32 size;		/* bytes of this record that hold data (<= the ring sample) */
	__u64 time_ns;		/* bpf_ktime_get_ns(): CLOCK_MONOTONIC, the clock of uv_hrtime() */
	__u64 seq;		/* per ring and CPU, every record programs tried to write, lost ones included: gaps show */
	__u32 cpu;
	__u32 ring;		/* KRSI_RING_* */
};

/*
 * The value of the ring_read map, per ring and CPU: written by the agent
 * only, after every batch it delivered and every loss it marked, so that a
 * successor adopting the pinned state neither marks a loss twice nor misses
 * one.  Counts are since the maps were created (the kernel's ring_lost too).
 */
struct krsi_ring_read {
	__u64 seq;		/* the last sequence number the agent consumed */
	__u64 jump_lost;	/* records numbered before seq that never arrived (jumps) */
	__u64 marked;		/* records the agent's gap events stood for */
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
 * argv the caller passed.  policy says which rule decided (at the check).
 */
struct krsi_exec_event {
	struct krsi_event_header hdr;
	struct krsi_task task;
	struct krsi_policy_ref policy;
	__u64 ino;		/* inode of the executed file */
	__u32 dev;		/* its superblock's dev_t, kernel encoding: major << 20 | minor */
	__u32 flags;		/* KRSI_EXEC_* */
	__u32 argc;		/* argc of the exec; may exceed args_count */
	__u16 path_len;		/* bytes of data[] holding the path, its NUL included; 0 if unresolved */
	__u16 filename_len;	/* bytes after the path holding the filename, NUL included */
	__u16 args_len;		/* bytes after the filename holding argv strings, NULs included */
	__u16 args_count;	/* argv strings in those bytes */
	__u16 env_len;		/* bytes after argv holding recorded variables, "NAME=value" NUL-terminated each */
	__u8 env_count;		/* strings in those bytes */
	__u8 env_truncated;	/* bit i: the value of the i-th of them was cut at KRSI_ENV_VALUE_MAX - 1 bytes */
	char data[KRSI_EXEC_DATA_MAX + KRSI_EXEC_ENV_DATA_MAX];
};


/* struct krsi_file_event.flags */
#define KRSI_FILE_PATH_UNRESOLVED (1 << 0)	/* the path could not be built: path is empty */
#define KRSI_FILE_SELF (1 << 1)			/* unlink, rename: the victim is the actor's own executable */
#define KRSI_FILE_RENAME (1 << 2)		/* file_unlink: a rename(2) that replaces the file, not an unlink */

/*
 * A file opened (KRSI_EVENT_FILE_OPEN) or unlinked (KRSI_EVENT_FILE_UNLINK),
 * reported only when the decision is noteworthy (denied, would-deny, audit).
 */
struct krsi_file_event {
	struct krsi_event_header hdr;
	struct krsi_task task;
	struct krsi_policy_ref policy;
	__u64 ino;		/* the file's inode (unlink: the victim's) */
	__u32 dev;		/* its superblock's dev_t, kernel encoding */
	__u32 open_flags;	/* file_open: f_flags (O_*), as open(2) was given them; unlink: 0 */
	__u32 fmode;		/* file_open: f_mode (FMODE_*); unlink: 0 */
	__u16 path_len;		/* bytes of data[] holding the path, its NUL included; 0 if unresolved */
	__u16 flags;		/* KRSI_FILE_* */
	char data[KRSI_PATH_MAX];
};

/* struct krsi_mount_event.flags */
#define KRSI_MOUNT_SOURCE_KNOWN (1 << 0)	/* source holds the mount's source string */
#define KRSI_MOUNT_SOURCE_TRUNCATED (1 << 1)	/* ... cut at KRSI_PATH_MAX - 1 bytes */
#define KRSI_MOUNT_MOUNTPOINT_KNOWN (1 << 2)	/* mountpoint holds where mount(2) mounts it */
#define KRSI_MOUNT_API_MOUNT (1 << 3)		/* a mount(2) new mount: mount_flags are its MS_* flags */
#define KRSI_MOUNT_API_FSCONFIG (1 << 4)	/* fsconfig(FSCONFIG_CMD_CREATE) of the new mount API */
#define KRSI_MOUNT_REMOVABLE (1 << 5)		/* the block device's disk is removable (GENHD_FL_REMOVABLE) */

/* Parent devices of a block device whose bus is read, at most, and bytes of a bus name. */
#define KRSI_MOUNT_DEVICE_DEPTH 16
#define KRSI_MOUNT_BUSES_MAX 8
#define KRSI_BUS_NAME_MAX 16

/* Variable tail of a mount record: fstype, source, mountpoint, bus names. */
#define KRSI_MOUNT_DATA_MAX (KRSI_STR_MAX + 2 * KRSI_PATH_MAX + KRSI_MOUNT_BUSES_MAX * KRSI_BUS_NAME_MAX)

/*
 * A new file system instance about to be mounted (sb_kern_mount), reported
 * when the decision is noteworthy.
 */
struct krsi_mount_event {
	struct krsi_event_header hdr;
	struct krsi_task task;
	struct krsi_policy_ref policy;
	__u32 dev;		/* sb->s_dev, kernel encoding */
	__u32 bdev;		/* sb->s_bdev->bd_dev, 0 without a block device */
	__u32 sb_flags;		/* sb->s_flags (SB_*) */
	__u32 mount_flags;	/* mount(2)'s flags (MS_*) with KRSI_MOUNT_API_MOUNT, else 0 */
	__u32 flags;		/* KRSI_MOUNT_* */
	__u16 fstype_len;	/* bytes of data[] holding sb->s_type->name, NUL included */
	__u16 source_len;	/* bytes after the fstype holding the source, NUL included; 0 if unknown */
	__u16 mountpoint_len;	/* bytes after the source holding the mountpoint, NUL included; 0 if unknown */
	/* Bytes after the mountpoint holding the distinct bus names of the block
	 * device's parent devices, nearest first, each NUL-terminated (usb, scsi,
	 * pci, ...); 0 without a block device or a device with a bus. */
	__u16 bus_len;
	__u32 __pad2;
	char data[KRSI_MOUNT_DATA_MAX];
};

/* struct krsi_module_event.source */
#define KRSI_MODULE_FROM_FILE 1		/* finit_module(2): kernel_read_file(READING_MODULE) */
#define KRSI_MODULE_FROM_MEMORY 2	/* init_module(2): kernel_post_load_data(LOADING_MODULE) */

/* struct krsi_module_event.flags */
#define KRSI_MODULE_PATH_UNRESOLVED (1 << 0)	/* a file load whose path could not be resolved */
#define KRSI_MODULE_NAME_UNKNOWN (1 << 1)	/* no name: an image without a readable .gnu.linkonce.this_module */
#define KRSI_MODULE_SHA256_KNOWN (1 << 2)	/* sha256 holds the digest of the module's bytes */

/* Variable tail of a module record: name, then path. */
#define KRSI_MODULE_DATA_MAX (KRSI_STR_MAX + KRSI_PATH_MAX)

/* A kernel module about to be loaded, reported when the decision is noteworthy. */
struct krsi_module_event {
	struct krsi_event_header hdr;
	struct krsi_task task;
	struct krsi_policy_ref policy;
	__u64 ino;		/* the module file's inode (file loads) */
	__u32 dev;		/* its superblock's dev_t, kernel encoding (file loads) */
	__u32 source;		/* KRSI_MODULE_FROM_* */
	__u32 flags;		/* KRSI_MODULE_* */
	__u16 name_len;		/* bytes of data[] holding the module name, NUL included; 0 if unknown */
	__u16 path_len;		/* bytes after the name holding the file's path, NUL included; 0 for memory */
	/* SHA-256 of the module's bytes as the kernel got them: the file (IMA's
	 * digest) for finit_module(2), the image for init_module(2). */
	__u8 sha256[32];
	__u64 size;		/* bytes of the file (file loads) or of the image (memory loads) */
	char data[KRSI_MODULE_DATA_MAX];
};

/* struct krsi_module_state_event.state */
#define KRSI_MODULE_STATE_LOADED 1	/* tracepoint module_load: formed and linked, its init about to run */
#define KRSI_MODULE_STATE_FREED 2	/* tracepoint module_free: unloaded, or its init failed */

#define KRSI_MODULE_NAME_MAX 64		/* struct module's name: MODULE_NAME_LEN (56 on 64-bit) and room */

/*
 * A module's life as the kernel's module tracepoints see it, for the agent's
 * tracker of loaded modules (a module loaded and never freed that is missing
 * from /proc/modules or /sys/module has been hidden).  Not an event of its own.
 */
struct krsi_module_state_event {
	struct krsi_event_header hdr;
	struct krsi_task task;		/* the task loading or freeing it */
	__u64 taints;			/* mod->taints: TAINT_* bits */
	__u32 state;			/* KRSI_MODULE_STATE_* */
	__u32 __pad;
	char name[KRSI_MODULE_NAME_MAX];
};

/* struct krsi_connect_event.flags */
#define KRSI_CONNECT_ADDRESS_KNOWN (1 << 0)	/* an AF_INET or AF_INET6 address: addr and port hold it */

/* A connect(2) on a socket, reported when the decision is noteworthy. */
struct krsi_connect_event {
	struct krsi_event_header hdr;
	struct krsi_task task;
	struct krsi_policy_ref policy;
	__u8 addr[16];		/* destination, IPv6; IPv4 as ::ffff:a.b.c.d */
	__u16 family;		/* sa_family of the address given (AF_*) */
	__u16 port;		/* destination port, host order */
	__u16 type;		/* sock->type (SOCK_STREAM, SOCK_DGRAM, ...) */
	__u16 protocol;		/* sk->sk_protocol (IPPROTO_*) */
	__u32 flags;		/* KRSI_CONNECT_* */
	__u32 __pad;
};

/*
 * The content cache (content_hashes): sha256 digests of files by identity,
 * filled by the sleepable programs from IMA, or by the agent when the kernel
 * cannot hash (no bpf_ima_file_hash, or `krsi run --no-ima`).  An entry is
 * valid only while the inode's ctime and generation are those it was taken
 * at (a write changes ctime; a reused inode number has another generation),
 * and is deleted when the file is opened for writing, unlinked or replaced.
 */
struct krsi_inode_key {
	__u64 ino;
	__u32 dev;			/* kernel encoding */
	__u32 __pad;
};

struct krsi_content_hash {
	__u8 sha256[32];
	__s64 ctime_sec;		/* the inode's ctime when the digest was taken */
	__u32 ctime_nsec;
	__u32 generation;		/* inode->i_generation */
};

/* struct krsi_hash_request.flags */
#define KRSI_HASH_REQ_EXEC (1 << 0)	/* an exec's file: /proc/tgid/exe names it too */
#define KRSI_HASH_REQ_PATH_UNRESOLVED (1 << 1)

/* Asks the agent to hash a file the kernel could not (KRSI_EVENT_HASH_REQUEST). */
struct krsi_hash_request {
	struct krsi_event_header hdr;
	__u64 ino;
	__u32 dev;
	__u32 tgid;			/* a process that has the file open or mapped */
	__u64 start_ns;			/* its task->start_boottime */
	__s64 ctime_sec;		/* the inode's ctime and generation, to be stored with the digest */
	__u32 ctime_nsec;
	__u32 generation;
	__u32 flags;			/* KRSI_HASH_REQ_* */
	__u16 path_len;			/* bytes of path, NUL included; 0 if unresolved */
	__u16 __pad;
	char path[KRSI_PATH_MAX];
};


/* struct krsi_mmap_event.source */
#define KRSI_MMAP_FROM_MMAP 1		/* mmap(2) with PROT_EXEC (mmap_file), the kernel's own for exec included */
#define KRSI_MMAP_FROM_MPROTECT 2	/* mprotect(2) adding PROT_EXEC to a file mapping (file_mprotect) */

/* struct krsi_mmap_event.flags */
#define KRSI_MMAP_PATH_UNRESOLVED (1 << 0)
#define KRSI_MMAP_EXE_UNRESOLVED (1 << 1)	/* the program's path could not be built */
#define KRSI_MMAP_SHA256_KNOWN (1 << 2)		/* sha256 holds the file's digest */
#define KRSI_MMAP_HASH_MISSING (1 << 3)		/* a sha256 selector needed the digest and none was known */

/* A file mapped executable (policy hook mmap_exec), reported when noteworthy. */
struct krsi_mmap_event {
	struct krsi_event_header hdr;
	struct krsi_task task;
	struct krsi_policy_ref policy;
	__u64 ino;		/* the file mapped (a library, usually) */
	__u32 dev;
	__u32 prot;		/* PROT_* asked for */
	__u32 mmap_flags;	/* MAP_* (mmap); 0 for mprotect */
	__u32 source;		/* KRSI_MMAP_FROM_* */
	__u64 exe_ino;		/* the program: the acting process's executable */
	__u32 exe_dev;
	__u16 flags;		/* KRSI_MMAP_* */
	__u16 path_len;		/* bytes of data[] holding the file's path, NUL included; 0 if unresolved */
	__u16 exe_path_len;	/* bytes after it holding the program's path, NUL included; 0 if unresolved */
	__u16 __pad;
	__u32 __pad2;
	__u8 sha256[32];
	char data[2 * KRSI_PATH_MAX];
};

/* struct krsi_ptrace_event.request */
#define KRSI_PTRACE_ATTACH 1		/* ptrace_access_check with PTRACE_MODE_ATTACH: the actor would control target */
#define KRSI_PTRACE_TRACEME 2		/* PTRACE_TRACEME: the actor asks its parent (target) to trace it */

/* struct krsi_ptrace_event.flags */
#define KRSI_PTRACE_TARGET_PATH_UNRESOLVED (1 << 0)

/* A ptrace relation about to be made (policy hook ptrace), reported when noteworthy. */
struct krsi_ptrace_event {
	struct krsi_event_header hdr;
	struct krsi_task task;
	struct krsi_policy_ref policy;
	struct krsi_task target;	/* the tracee (attach) or the tracer (traceme) */
	__u64 target_ino;		/* its executable */
	__u32 target_dev;
	__u32 request;			/* KRSI_PTRACE_* */
	__u32 mode;			/* PTRACE_MODE_* of the access check; 0 for traceme */
	__u16 flags;			/* KRSI_PTRACE_* flags */
	__u16 path_len;			/* bytes of data[] holding the target's executable path, NUL included */
	char data[KRSI_PATH_MAX];
};

#define KRSI_BPF_PROG_NAME_LEN 16

/* A bpf(BPF_PROG_LOAD) (policy hook bpf), reported when noteworthy. */
struct krsi_bpf_event {
	struct krsi_event_header hdr;
	struct krsi_task task;
	struct krsi_policy_ref policy;
	__u32 cmd;			/* the bpf(2) command: BPF_PROG_LOAD */
	__u32 prog_type;		/* enum bpf_prog_type */
	__u32 attach_type;		/* expected_attach_type */
	__u32 insn_cnt;
	__u32 prog_flags;
	__u32 attach_btf_id;
	char prog_name[KRSI_BPF_PROG_NAME_LEN];
};

/* struct krsi_setid_event.kind */
#define KRSI_SETID_UID 1		/* task_fix_setuid: setuid, setreuid, setresuid, setfsuid */
#define KRSI_SETID_GID 2		/* task_fix_setgid */

/* A change of a process's user or group ids (policy hook setid), reported when noteworthy. */
struct krsi_setid_event {
	struct krsi_event_header hdr;
	struct krsi_task task;
	struct krsi_policy_ref policy;
	__u32 kind;			/* KRSI_SETID_* */
	__u32 flags;			/* LSM_SETID_*: 1 ID, 2 RE, 4 RES, 8 FS */
	__u32 old_uids[4];		/* real, effective, saved, fs */
	__u32 new_uids[4];
	__u32 old_gids[4];
	__u32 new_gids[4];
};

/* Per-hook, per-CPU counters (the counters map, index KRSI_HOOK_*). */
struct krsi_hook_stats {
	__u64 seen;		/* times the program ran to its end or its decision */
	__u64 denied;		/* decisions that returned -EPERM */
	__u64 emitted;		/* records written to a ring */
	__u64 dropped;		/* records lost because a ring was full */
	__u64 rate_limited;	/* events a rule's rate limit suppressed */
};



/* --- Self-protection (bpf/hooks/self.bpf.c) --------------------------------
 *
 * The agent's process, maps, programs, links and pins are protected from
 * every other process, root included, while protection is on.  The agent is
 * known by its tgid in struct krsi_self_state; when it exits, a tracepoint
 * clears it, and the next agent to start takes its place (adopts the pins).
 */
#define KRSI_EVENT_TAMPER 32

/* struct krsi_tamper_event.what */
#define KRSI_TAMPER_SIGNAL 1		/* a signal to the agent (detail: the signal) */
#define KRSI_TAMPER_PTRACE 2		/* ptrace, /proc/PID/mem, process_vm_*: the agent's memory */
#define KRSI_TAMPER_BPF_MAP 3		/* an fd of one of the agent's maps (target: map id) */
#define KRSI_TAMPER_BPF_PROG 4		/* an fd of one of its programs (target: program id) */
#define KRSI_TAMPER_BPF_LINK 5		/* an fd of one of its links (target: link id) */
#define KRSI_TAMPER_BPF_PIN 6		/* BPF_OBJ_GET of one of its pins */
#define KRSI_TAMPER_BPF_LOAD 7		/* loading an LSM or extension program, or one attached to a BPF program (detail: type) */
#define KRSI_TAMPER_PIN_REMOVE 8	/* unlinking, removing or renaming its pins */
#define KRSI_TAMPER_UMOUNT 9		/* unmounting the bpffs that holds its pins */

/* struct krsi_self_id.kind */
#define KRSI_SELF_MAP 1
#define KRSI_SELF_PROG 2
#define KRSI_SELF_LINK 3

/* Counters of self-protection (self_counters, per CPU), by struct krsi_tamper_event.what. */
#define KRSI_TAMPER_COUNT 10

#define KRSI_PIN_ROOT_MAX 128

struct krsi_self_state {
	__u32 agent_tgid;		/* the agent; 0: none running */
	__u32 protect;			/* 1: deny tampering by any other process */
	__u32 pin_dev;			/* s_dev of the bpffs holding the pins */
	__u32 pin_root_len;		/* bytes of pin_root, its trailing '/' included */
	__u64 pin_dir_ino[3];		/* the pin root and its maps/ and links/ directories */
	char pin_root[KRSI_PIN_ROOT_MAX]; /* "/sys/fs/bpf/krsi/" */
};

/* Key of self_ids: a map, program or link of the agent, by kernel id. */
struct krsi_self_id {
	__u32 kind;			/* KRSI_SELF_* */
	__u32 id;
};

/* A tampering attempt, denied. */
struct krsi_tamper_event {
	struct krsi_event_header hdr;
	struct krsi_task task;		/* who tried */
	__u32 what;			/* KRSI_TAMPER_* */
	__u32 detail;			/* the signal, the bpf command, the program type */
	__u64 target;			/* the agent's pid, an object id, a pin's inode */
};


/* --- Process snapshot (bpf/hooks/proc_snapshot.bpf.c) --------------------
 *
 * What an iterator over the tasks writes for each process, for the agent:
 * struct krsi_proc_entry, then path_len bytes of the executable's path.
 */
#define KRSI_PROC_HAS_EXE (1 << 0)	/* a user process with an executable (not a kernel thread) */

struct krsi_proc_entry {
	__u32 tgid;
	__u32 ppid;			/* real_parent's tgid */
	__u64 start_ns;			/* start_boottime */
	__u64 ino;			/* of the executable */
	__u32 dev;			/* kernel dev_t of its file system (major << 20 | minor) */
	__u32 path_len;			/* bytes of path that follow; 0: unresolved */
	__u32 flags;			/* KRSI_PROC_* */
	__u32 __pad;
};

struct krsi_proc_record {
	struct krsi_proc_entry entry;
	char path[KRSI_PATH_MAX];
};

#endif /* KRSI_EVENTS_H */

// SPDX-License-Identifier: GPL-2.0
/*
 * Exec: the policy's exec hook, the binary classes of every new image, and
 * an event for every exec.
 *
 * bprm_check_security decides.  It evaluates the exec rules against the
 * file about to run (its path, identity and IMA digest), the caller's ids,
 * cgroup and lineage, and the environment the caller passes; a deny returns
 * -EPERM (and a kill also sends SIGKILL to the caller), a secureexec sets
 * AT_SECURE for the new image.  The decision is kept in the task's context.
 *
 * bprm_committed_creds runs after the point of no return, when current
 * already runs the new image: it records the image's binary classes (what
 * the binary, parent and ancestor selectors of every hook will see) and
 * reports the exec with the decision that let it through.  Its credentials,
 * comm and argv (read from the new stack) are the ones the process really has.
 *
 * Both programs are non-sleepable: every user page they read was touched by
 * the kernel during this very exec, so non-faulting reads succeed, and a
 * non-sleepable program may use a per-CPU scratch record safely.
 */
#include "common.h"
#include "hook.h"
#include "maps.h"
#include "policy.h"
#include "task.h"
#include "content.h"
#include "exec_env.h"
#include "path_walk.h"

char LICENSE[] SEC("license") = "GPL";

/* Emit allowed execs on the events ring (noteworthy ones are always emitted). */
const volatile __u32 cfg_emit_allowed = 1;
/* Bytes of argv strings an event carries, at most KRSI_ARGS_MAX. */
const volatile __u32 cfg_args_max = KRSI_ARGS_MAX;

#define BPF_F_BPRM_SECUREEXEC (1ULL << 0)
#define SIGKILL 9

/* Scratch record: too large for the 512-byte BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct krsi_exec_event);
} exec_scratch SEC(".maps");

#define ARGS_BASE_MAX (KRSI_PATH_MAX + KRSI_FILENAME_MAX)

static __always_inline __u64 args_limit(void)
{
	__u64 limit = cfg_args_max;

	return limit > KRSI_ARGS_MAX ? KRSI_ARGS_MAX : limit;
}

/*
 * Appends the user string at src to the argv bytes of e, which start at
 * data[base] and hold *len bytes.  Returns 0 to go on, 1 to stop.
 *
 * Offsets are 64-bit on purpose: with 32-bit ones clang bounds-checks a
 * zero-extended copy and hands the verifier the unchecked register.
 */
static __always_inline int append_arg(struct krsi_exec_event *e, __u64 base,
				      __u64 *len, const char *src)
{
	__u64 limit = args_limit();
	__u64 off = *len;
	__u64 room;
	long n;
	char last;

	if (off >= limit) {
		e->flags |= KRSI_EXEC_ARGV_TRUNCATED;
		return 1;
	}
	barrier_var(base);
	if (base > ARGS_BASE_MAX)
		return 1;
	barrier_var(off);
	if (off >= KRSI_ARGS_MAX)
		return 1;
	room = limit - off;
	barrier_var(room);
	if (room > KRSI_ARGS_MAX || room == 0)
		return 1;
	n = bpf_probe_read_user_str(&e->data[base + off], room, src);
	if (n <= 0) {
		e->flags |= KRSI_EXEC_ARGV_UNREADABLE;
		return 1;
	}
	*len = off + n;
	e->args_count++;
	/* A string that filled the room exactly may have been cut short. */
	if (n == room &&
	    (bpf_probe_read_user(&last, 1, src + n - 1) != 0 || last != '\0')) {
		e->flags |= KRSI_EXEC_ARGV_TRUNCATED;
		return 1;
	}
	return 0;
}

/*
 * argv is read in bpf_loop() callbacks: the verifier checks a callback once,
 * whatever state the caller is in, where an inline loop would be walked
 * iteration by iteration for every path through the policy code before it.
 */
struct argv_walk {
	struct krsi_exec_event *e;
	__u64 base;
	__u64 len;
	const char *next;		/* the new image: strings laid end to end */
	const char *const *argv;	/* the caller: an array of pointers */
};

static long new_argv_step(__u32 i, void *ctx)
{
	struct argv_walk *w = ctx;
	__u64 start = w->len;

	if (i >= w->e->argc)
		return 1;
	if (append_arg(w->e, w->base, &w->len, w->next))
		return 1;
	w->next += w->len - start;
	return 0;
}

/* argv of the new image: argc NUL-terminated strings from bprm->p on. */
static __always_inline __u64 read_new_argv(struct krsi_exec_event *e, __u64 base,
					   struct linux_binprm *bprm)
{
	struct argv_walk w = { .e = e, .base = base, .next = (const char *)bprm->p };

	bpf_loop(KRSI_ARGV_MAX, new_argv_step, &w, 0);
	return w.len;
}

/*
 * The argv and envp pointer arrays the execve/execveat syscall received,
 * from the caller's registers at syscall entry, for an exec that has no new
 * image yet.  Only x86-64's native syscalls are understood; anything else
 * (compat, a kernel-initiated exec) leaves both NULL, never guessed at.
 */
static __always_inline void caller_vectors(const char *const **argv, const char *const **envp)
{
	*argv = 0;
	*envp = 0;
#if defined(__TARGET_ARCH_x86)
	struct task_struct *task = bpf_get_current_task_btf();
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);

	if (task->flags & PF_KTHREAD)
		return;
	if (regs->orig_ax == 59) {		/* __NR_execve */
		*argv = (const char *const *)regs->si;
		*envp = (const char *const *)regs->dx;
	} else if (regs->orig_ax == 322) {	/* __NR_execveat */
		*argv = (const char *const *)regs->dx;
		*envp = (const char *const *)regs->r10;
	}
#endif
}

static long caller_argv_step(__u32 i, void *ctx)
{
	struct argv_walk *w = ctx;
	const char *arg;

	if (i >= w->e->argc)
		return 1;
	if (bpf_probe_read_user(&arg, sizeof(arg), &w->argv[i]) || !arg) {
		w->e->flags |= KRSI_EXEC_ARGV_UNREADABLE;
		return 1;
	}
	return append_arg(w->e, w->base, &w->len, arg);
}

static __always_inline __u64 read_caller_argv(struct krsi_exec_event *e, __u64 base)
{
	struct argv_walk w = { .e = e, .base = base };
	const char *const *envp;

	caller_vectors(&w.argv, &envp);
	if (!w.argv) {
		e->flags |= KRSI_EXEC_ARGV_UNREADABLE;
		return 0;
	}
	bpf_loop(KRSI_ARGV_MAX, caller_argv_step, &w, 0);
	return w.len;
}

/*
 * Resolves the executed file's path into st->path, where the policy looks for
 * it, and fills everything of the record but argv and the policy reference;
 * returns the offset in data[] where argv goes.
 */
static __always_inline __u64 fill_exec(struct krsi_exec_event *e, struct policy_eval *st,
				       struct linux_binprm *bprm)
{
	struct file *file = bprm->file;
	long n;
	char last;

	record_begin(&e->hdr, KRSI_EVENT_EXEC);
	fill_task(&e->task);
	e->ino = file->f_inode->i_ino;
	e->dev = file->f_inode->i_sb->s_dev;
	e->flags = 0;
	e->argc = bprm->argc;
	e->args_len = 0;
	e->args_count = 0;
	e->env_len = 0;
	e->env_count = 0;
	e->env_truncated = 0;
	if (BPF_CORE_READ(file, f_inode, i_nlink) == 0) {
		char head[6] = {};

		/* memfd_create() names its files "memfd:NAME"; anything else without a link was unlinked or O_TMPFILE. */
		bpf_probe_read_kernel(head, sizeof(head), BPF_CORE_READ(file, f_path.dentry, d_name.name));
		if (head[0] == 'm' && head[1] == 'e' && head[2] == 'm' && head[3] == 'f' && head[4] == 'd' && head[5] == ':')
			e->flags |= KRSI_EXEC_FILELESS_MEMFD;
		else
			e->flags |= KRSI_EXEC_FILELESS_DELETED;
	}

	n = resolve_d_path(st, &file->f_path);
	if (!n)
		e->flags |= KRSI_EXEC_PATH_UNRESOLVED;
	e->path_len = n;
	barrier_var(n);
	if (n > 0 && n <= KRSI_PATH_MAX)
		bpf_probe_read_kernel(e->data, n, st->path);
	else
		n = 0;
	{
		const char *filename = bprm->filename;
		long m = bpf_probe_read_kernel_str(&e->data[n], KRSI_FILENAME_MAX, filename);

		if (m <= 0) {
			m = 0;
		} else if (m == KRSI_FILENAME_MAX &&
			   (bpf_probe_read_kernel(&last, 1, filename + m - 1) != 0 || last != '\0')) {
			e->flags |= KRSI_EXEC_FILENAME_TRUNCATED;
		}
		e->filename_len = m;
		return n + m;
	}
}

static __always_inline __u64 exec_record_size(const struct krsi_exec_event *e)
{
	__u64 size = __builtin_offsetof(struct krsi_exec_event, data) +
		     e->path_len + e->filename_len + e->args_len + e->env_len;

	return size > sizeof(*e) ? sizeof(*e) : size;
}

/*
 * The binary selector (exec's, or the binary classes') against the file
 * being executed: its identity, its IMA digest when one was taken, and its
 * path (already in st->path).
 */
static __always_inline void binary_dim(struct policy_eval *st, struct krsi_exec_event *e,
				       struct krsi_exec_ctx *xctx)
{
	if (!krsi_policy_wants(KRSI_DIM_BINARY))
		return;
	st->value[0] = e->ino;
	st->value[1] = e->dev;
	st->value[2] = st->value[3] = 0;
	krsi_policy_match_value(KRSI_DIM_BINARY);
	if ((krsi_policy_dim_flags(KRSI_DIM_BINARY) & KRSI_DIMF_SHA256) && xctx &&
	    xctx->hash_state == KRSI_HASH_VALID && xctx->hash_ino == e->ino &&
	    xctx->hash_dev == e->dev) {
		__builtin_memcpy(st->value, xctx->sha256, sizeof(st->value));
		krsi_policy_match_value(KRSI_DIM_BINARY);
	} else if ((krsi_policy_dim_flags(KRSI_DIM_BINARY) & KRSI_DIMF_SHA256) && xctx &&
		   xctx->hash_state == KRSI_HASH_MISSING) {
		e->flags |= KRSI_EXEC_HASH_MISSING;
	}
	if (!(e->flags & KRSI_EXEC_PATH_UNRESOLVED))
		krsi_policy_match_path(KRSI_DIM_BINARY);
	krsi_policy_narrow(KRSI_DIM_BINARY);
}

/* fileless: true matches a memfd or a file without a name. */
static __always_inline void fileless_dim(struct policy_eval *st, struct krsi_exec_event *e)
{
	if (!krsi_policy_wants(KRSI_DIM_FILELESS))
		return;
	st->value[0] = (e->flags & (KRSI_EXEC_FILELESS_MEMFD | KRSI_EXEC_FILELESS_DELETED)) ? 1 : 0;
	st->value[1] = st->value[2] = st->value[3] = 0;
	krsi_policy_match_value(KRSI_DIM_FILELESS);
	krsi_policy_narrow(KRSI_DIM_FILELESS);
}

/* Of two decisions on one exec (a script, then its interpreter), the one to keep. */
static __always_inline int outranks(const struct krsi_policy_ref *a, const struct krsi_policy_ref *b)
{
	if (a->verdict != b->verdict)
		return a->verdict == KRSI_VERDICT_DENY;
	return policy_noteworthy(a) && !policy_noteworthy(b);
}

SEC("lsm/bprm_check_security")
int BPF_PROG(exec_check, struct linux_binprm *bprm, int ret)
{
	struct krsi_hook_stats *stats = hook_stats(KRSI_HOOK_BPRM_CHECK);
	struct task_struct *task = bpf_get_current_task_btf();
	const char *const *argv, *const *envp;
	struct krsi_policy_ref ref = {};
	struct exec_inflight *inflight;
	struct krsi_exec_ctx *xctx;
	struct krsi_exec_event *e;
	struct policy_eval *st;
	__u32 zero = 0;
	__u64 base, size;

	/* An earlier LSM program already refused: its decision stands. */
	if (ret)
		return krsi_pass(ret);
	if (stats)
		stats->seen++;
	e = bpf_map_lookup_elem(&exec_scratch, &zero);
	st = policy_state();
	if (!e || !st)
		return 0;
	inflight = bpf_task_storage_get(&exec_ctx, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	xctx = inflight ? &inflight->x : NULL;

	base = fill_exec(e, st, bprm);
	if (krsi_policy_begin(KRSI_PHOOK_EXEC)) {
		krsi_policy_ids();
		krsi_policy_lineage(0);
		binary_dim(st, e, xctx);
		fileless_dim(st, e);
		caller_vectors(&argv, &envp);
		krsi_policy_env((__u64)envp);
	}
	krsi_policy_decide();
	ref = st->ref;

	if (xctx) {
		if (xctx->exec_bprm != (__u64)bprm || outranks(&ref, &xctx->exec_ref))
			xctx->exec_ref = ref;
		xctx->exec_bprm = (__u64)bprm;
	}
	if (ref.verdict == KRSI_VERDICT_ALLOW) {
		if (ref.flags & KRSI_REF_SECUREEXEC)
			bpf_bprm_opts_set(bprm, BPF_F_BPRM_SECUREEXEC);
		return 0;
	}

	/* Denied: what follows only reports it, and cannot undo it. */
	if (ref.action == KRSI_ACTION_KILL) {
		bpf_send_signal(SIGKILL);
		ref.flags |= KRSI_REF_KILLED;
	}
	if (stats)
		stats->denied++;
	e->policy = ref;
	e->args_len = read_caller_argv(e, base);
	size = exec_record_size(e);
	e->hdr.size = size;
	st->ref = ref;
	if (krsi_policy_rate_ok())
		emit(&decisions, stats, e, size);
	else if (stats)
		stats->rate_limited++;
	return -EPERM;
}

/*
 * The IMA digest of the file about to run, for sha256 selectors.  Hashing
 * may sleep (reading the file), so it is a sleepable program of its own on
 * the same hook, attached after exec_check so that it runs first: BPF LSM
 * trampolines run the most recently attached program first.  The digest goes
 * to the task's context with the identity of the file it belongs to.
 */
SEC("lsm.s/bprm_check_security")
int BPF_PROG(exec_hash, struct linux_binprm *bprm, int ret)
{
	struct krsi_hook_stats *stats = hook_stats(KRSI_HOOK_EXEC_HASH);
	struct task_struct *task = bpf_get_current_task_btf();
	struct krsi_policy_needs *needs;
	struct krsi_content_hash *cached;
	struct exec_inflight *inflight;
	struct krsi_exec_ctx *xctx;
	struct file *file = bprm->file;
	__u32 zero = 0;
	long algo;

	if (ret)
		return krsi_pass(ret);
	needs = bpf_map_lookup_elem(&policy_needs, &zero);
	if (!needs || !needs->sha256)
		return 0;
	if (stats)
		stats->seen++;
	inflight = bpf_task_storage_get(&exec_ctx, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!inflight)
		return 0;
	xctx = &inflight->x;
	xctx->hash_ino = file->f_inode->i_ino;
	xctx->hash_dev = file->f_inode->i_sb->s_dev;
	/* The content cache first: IMA reads the whole file every time. */
	cached = content_lookup(file->f_inode);
	if (cached) {
		__builtin_memcpy(xctx->sha256, cached->sha256, sizeof(xctx->sha256));
		xctx->hash_state = KRSI_HASH_VALID;
		return 0;
	}
	if (!cfg_ima) {
		xctx->hash_state = KRSI_HASH_MISSING;
		content_request(file->f_inode, &file->f_path, KRSI_HASH_REQ_EXEC, 1, stats);
		return 0;
	}
	algo = bpf_ima_file_hash(file, xctx->sha256, sizeof(xctx->sha256));
	/* Any digest but a sha256 cannot match a selector. */
	xctx->hash_state = algo == HASH_ALGO_SHA256 ? KRSI_HASH_VALID : KRSI_HASH_UNAVAILABLE;
	if (algo == HASH_ALGO_SHA256)
		content_store(file->f_inode, xctx->sha256);
	return 0;
}

/*
 * The recorded variables, "NAME=value" NUL-terminated each, at data[off]
 * (right after argv); returns the bytes written.
 */
static __always_inline __u64 append_env(struct krsi_exec_event *e, __u64 off, struct exec_env_state *envs,
				       struct exec_env_values *vals)
{
	__u64 used = 0;
	int k;

	if (!vals)
		return 0;
	barrier_var(off);
	if (off > ARGS_BASE_MAX + KRSI_ARGS_MAX)
		return 0;
	for (k = 0; k < KRSI_ENV_RECORD_MAX; k++) {
		__u64 nl, vl, at;

		if (!(envs->found & (1U << k)))
			continue;
		nl = envs->name_len[k];
		vl = envs->value_len[k];
		if (nl == 0 || nl >= KRSI_ENV_NAME_MAX || vl >= KRSI_ENV_VALUE_MAX)
			continue;
		at = off + used;
		barrier_var(at);
		if (at > ARGS_BASE_MAX + KRSI_ARGS_MAX + KRSI_EXEC_ENV_DATA_MAX - KRSI_ENV_NAME_MAX - KRSI_ENV_VALUE_MAX)
			break;
		bpf_probe_read_kernel(&e->data[at], nl & (KRSI_ENV_NAME_MAX - 1), vals->name[k]);
		e->data[at + nl] = '=';
		/*
		 * Knowing vl < KRSI_ENV_VALUE_MAX, clang drops the mask below as
		 * a no-op; 6.1's verifier has lost that bound by then (vl was
		 * spilled before the check) and refuses the read.  Keep the mask.
		 */
		barrier_var(vl);
		bpf_probe_read_kernel(&e->data[at + nl + 1], (vl + 1) & (2 * KRSI_ENV_VALUE_MAX - 1), vals->value[k]);
		used += nl + 1 + vl + 1;
		if (envs->truncated & (1U << k))
			e->env_truncated |= 1 << e->env_count;
		e->env_count++;
	}
	return used;
}

/*
 * The backstop of env rules.  bprm_check_security read the environment's
 * names from the caller's memory, which another thread of the caller may
 * have rewritten after the kernel copied it to the new stack.  Here the
 * decision is made again with the names the new image really has (found by
 * exec_env_scan): if it now denies by a rule with an env selector, the new
 * image is killed before it runs a single instruction; if it now asks for
 * secure execution, AT_SECURE is set, which the loader reads from the
 * auxiliary vector that is built after this hook.  Returns 1 when the
 * decision in ref changed.
 */
static __always_inline int env_backstop(struct policy_eval *st, struct krsi_exec_event *e,
					struct krsi_exec_ctx *xctx, struct exec_env_state *envs,
					struct linux_binprm *bprm, struct krsi_policy_ref *ref)
{
	struct krsi_policy_ref now;
	__u32 i;

	if (!krsi_policy_begin(KRSI_PHOOK_EXEC) || !krsi_policy_wants(KRSI_DIM_ENV))
		return 0;
	krsi_policy_ids();
	krsi_policy_lineage(0);
	binary_dim(st, e, xctx);
	fileless_dim(st, e);
	if (krsi_policy_wants(KRSI_DIM_ENV)) {
		if (envs->flags & KRSI_EXEC_ENV_INCOMPLETE) {
			krsi_policy_env_unknown();
		} else {
			for (i = 0; i < KRSI_ENV_WATCH_MAX; i++) {
				if (i >= envs->watched_count)
					break;
				st->value[0] = envs->watched[i];
				st->value[1] = st->value[2] = st->value[3] = 0;
				krsi_policy_match_value(KRSI_DIM_ENV);
			}
			krsi_policy_narrow(KRSI_DIM_ENV);
		}
	}
	krsi_policy_decide();
	now = st->ref;
	if (now.verdict == KRSI_VERDICT_DENY && ref->verdict != KRSI_VERDICT_DENY && now.rule < KRSI_RULES_MAX &&
	    (krsi_policy_dim_rules(KRSI_DIM_ENV) & (1ULL << now.rule))) {
		bpf_send_signal(SIGKILL);
		now.flags |= KRSI_REF_KILLED;
		*ref = now;
		return 1;
	}
	if (now.verdict == KRSI_VERDICT_ALLOW && (now.flags & KRSI_REF_SECUREEXEC) && !(ref->flags & KRSI_REF_SECUREEXEC)) {
		bpf_bprm_opts_set(bprm, BPF_F_BPRM_SECUREEXEC);
		ref->flags |= KRSI_REF_SECUREEXEC;
		ref->matched |= now.matched;
		return 1;
	}
	return 0;
}

SEC("lsm/bprm_committed_creds")
int BPF_PROG(exec_committed, struct linux_binprm *bprm)
{
	struct krsi_hook_stats *stats;
	struct task_struct *task = bpf_get_current_task_btf();
	struct krsi_policy_needs *needs;
	struct exec_inflight *inflight;
	struct exec_env_state *envs = NULL;
	struct krsi_task_ctx *tctx;
	struct krsi_exec_ctx *xctx = NULL;
	struct krsi_exec_event *e;
	struct policy_eval *st;
	__u32 zero = 0;
	__u64 base, size;
	int changed = 0;

	stats = hook_enter(KRSI_HOOK_BPRM_COMMITTED);
	e = bpf_map_lookup_elem(&exec_scratch, &zero);
	st = policy_state();
	if (!e || !st)
		return 0;
	tctx = bpf_task_storage_get(&task_ctx, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	inflight = bpf_task_storage_get(&exec_ctx, task, 0, 0);
	if (inflight) {
		xctx = &inflight->x;
		/* The scan found the environment of this exec, or none was done. */
		if (inflight->env.bprm == (__u64)bprm)
			envs = &inflight->env;
	}
	base = fill_exec(e, st, bprm);

	if (xctx && xctx->exec_bprm == (__u64)bprm) {
		e->policy = xctx->exec_ref;
	} else {
		__builtin_memset(&e->policy, 0, sizeof(e->policy));
		e->policy.rule = KRSI_RULE_NONE;
		e->policy.would_rule = KRSI_RULE_NONE;
		e->policy.audit_rule = KRSI_RULE_NONE;
		e->policy.flags = KRSI_REF_DEFAULT | KRSI_REF_CONTEXT_UNKNOWN;
	}
	needs = bpf_map_lookup_elem(&policy_needs, &zero);
	if (envs && xctx && xctx->exec_bprm == (__u64)bprm && needs && needs->env_backstop) {
		changed = env_backstop(st, e, xctx, envs, bprm, &e->policy);
		if (changed) {
			e->flags |= KRSI_EXEC_ENV_MISMATCH;
			if (e->policy.verdict == KRSI_VERDICT_DENY && stats)
				stats->denied++;
		}
	}

	/* The new image's binary classes, for every later decision about it. */
	if (tctx) {
		if (krsi_policy_begin(KRSI_PHOOK_CLASSES))
			binary_dim(st, e, xctx);
		tctx->self = st->candidates;
		tctx->self_generation = krsi_policy_generation();
	}
	if (xctx) {
		xctx->hash_state = KRSI_HASH_NONE;
		xctx->exec_bprm = 0;
	}

	if (!cfg_emit_allowed && !changed) {
		/* Reported only for its policy's sake: the rule's rate limit applies. */
		if (!policy_noteworthy(&e->policy))
			goto out;
		krsi_policy_begin(KRSI_PHOOK_EXEC);
		st->ref = e->policy;
		if (!krsi_policy_rate_ok()) {
			if (stats)
				stats->rate_limited++;
			goto out;
		}
	}
	e->args_len = read_new_argv(e, base, bprm);
	if (envs) {
		e->flags |= KRSI_EXEC_ENV_READ | (envs->flags & KRSI_EXEC_ENV_INCOMPLETE);
		e->env_len = append_env(e, base + e->args_len, envs,
					envs->found ? bpf_task_storage_get(&exec_env_values, task, 0, 0) : NULL);
	}
	size = exec_record_size(e);
	e->hdr.size = size;
	emit(e->policy.verdict == KRSI_VERDICT_DENY ? (void *)&decisions : (void *)&events, stats, e, size);
out:
	if (envs) {
		/* Kept for the task's next exec; the values, rare and large, are not. */
		if (envs->found)
			bpf_task_storage_delete(&exec_env_values, task);
		envs->bprm = 0;
	}
	return 0;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * Policy evaluation, shared by every hook (see policy.h for how hooks use
 * it, src/policy/compile.ts for how the tables are built, and
 * src/policy/evaluate.ts for the same algorithm in TypeScript).
 *
 * For a dimension d, with M the rules whose selector on d found the event's
 * value in its tables (exact strings, prefixes, glob automata, values,
 * networks, dynamic lists, binary classes):
 *
 *	passing(d) = unconstrained(d) | ((M ^ negated(d)) & constrained(d))
 *
 * and the rules that match are the AND of passing(d) over the dimensions.
 *
 * Every function here is global: the verifier checks it once, with only
 * its arguments' types known, so each re-derives the hook's policy from
 * st->slot and st->hook rather than trusting a pointer from its caller.
 */
#include "common.h"
#include "policy.h"

static __always_inline struct krsi_hook_policy *hook_policy(struct policy_eval *st)
{
	__u32 slot = st->slot, hook = st->hook;
	void *hooks = bpf_map_lookup_elem(&policy_hooks, &slot);

	return hooks ? bpf_map_lookup_elem(hooks, &hook) : NULL;
}

/* The current generation's inner map of an outer policy map. */
static __always_inline void *inner(void *outer, struct policy_eval *st)
{
	__u32 slot = st->slot;

	return bpf_map_lookup_elem(outer, &slot);
}

_Static_assert(KRSI_DIM_COUNT <= KRSI_DIM_MASK + 1, "KRSI_DIM_MASK must bound every dimension");

static __always_inline struct krsi_dim_policy *dim_policy(struct krsi_hook_policy *hp, __u32 dim)
{
	/* Global functions get dim as an unknown scalar: bound it for the verifier. */
	barrier_var(dim);
	if (!hp || dim >= KRSI_DIM_COUNT)
		return NULL;
	return &hp->dim[dim & KRSI_DIM_MASK];
}

static __always_inline __u32 table_id(struct policy_eval *st, __u32 dim)
{
	return st->hook * KRSI_DIM_COUNT + dim;
}

__noinline int krsi_policy_begin(__u32 hook)
{
	struct policy_eval *st = policy_state();
	struct krsi_policy_active *active;
	struct krsi_hook_policy *hp;
	__u32 zero = 0;

	if (!st)
		return 0;
	st->candidates = 0;
	st->matched = 0;
	st->flags = 0;
	st->hook = hook;
	st->slot = 0;
	active = bpf_map_lookup_elem(&policy_active, &zero);
	if (active)
		st->slot = active->slot;
	hp = hook_policy(st);
	if (!hp) {
		st->flags |= KRSI_REF_NO_POLICY;
		return 0;
	}
	st->candidates = hp->rules;
	if (hp->after_lock) {
		struct krsi_lock_point *lp = bpf_map_lookup_elem(&lock_point, &zero);

		if (!lp || !lp->reached_ns)
			st->candidates &= ~hp->after_lock;
	}
	return st->candidates != 0;
}

__noinline __u64 krsi_policy_generation(void)
{
	struct policy_eval *st = policy_state();
	struct krsi_hook_policy *hp;

	if (!st)
		return 0;
	hp = hook_policy(st);
	return hp ? hp->generation : 0;
}

__noinline int krsi_policy_wants(__u32 dim)
{
	struct policy_eval *st = policy_state();
	struct krsi_dim_policy *d;

	if (!st || !st->candidates)
		return 0;
	d = dim_policy(hook_policy(st), dim);
	return d && (d->constrained & st->candidates) != 0;
}

__noinline int krsi_policy_dim_flags(__u32 dim)
{
	struct policy_eval *st = policy_state();
	struct krsi_dim_policy *d;

	if (!st)
		return 0;
	d = dim_policy(hook_policy(st), dim);
	return d ? d->flags : 0;
}

__noinline int krsi_policy_narrow(__u32 dim)
{
	struct policy_eval *st = policy_state();
	struct krsi_hook_policy *hp;
	struct krsi_dim_policy *d;

	if (!st)
		return 0;
	hp = hook_policy(st);
	d = dim_policy(hp, dim);
	if (hp && d)
		st->candidates &= (hp->rules & ~d->constrained) |
				  ((st->matched ^ d->negated) & d->constrained);
	st->matched = 0;
	return 0;
}

/* Dimension dim cannot be known for this event: its rules match neither way. */
static __always_inline void narrow_unknown(struct policy_eval *st, struct krsi_hook_policy *hp,
					   struct krsi_dim_policy *d)
{
	st->candidates &= hp->rules & ~d->constrained;
	st->matched = 0;
	st->flags |= KRSI_REF_CONTEXT_UNKNOWN;
}

/*
 * The task's binary classes are unknown (its task storage could not be
 * allocated, or it raced a generation swap): fail closed.  A selector on them
 * counts as met for the rules that restrict (deny, kill, secure-exec) and as
 * missed for those that permit or only audit, so running out of memory can
 * never turn a deny into an allow.
 */
static __always_inline void narrow_unknown_classes(struct policy_eval *st, struct krsi_hook_policy *hp,
						   struct krsi_dim_policy *d)
{
	st->candidates &= (hp->rules & ~d->constrained) |
			  (d->constrained & (hp->deny | hp->kill | hp->secureexec));
	st->flags |= KRSI_REF_CONTEXT_UNKNOWN;
}

/*
 * For hooks whose event may lack a dimension (a connect without an IP
 * address, a mount whose source is unknown): like a task context that is
 * unknown, the rules that need it match neither way, not even negated.
 */
__noinline int krsi_policy_unknown(__u32 dim)
{
	struct policy_eval *st = policy_state();
	struct krsi_hook_policy *hp;
	struct krsi_dim_policy *d;

	if (!st || !st->candidates)
		return 0;
	hp = hook_policy(st);
	d = dim_policy(hp, dim);
	if (hp && d && (d->constrained & st->candidates))
		narrow_unknown(st, hp, d);
	return 0;
}

static __always_inline int list_live(struct krsi_list_entry *e)
{
	return e && (e->expires_ns == 0 || e->expires_ns > bpf_ktime_get_ns());
}

/*
 * Dynamic lists of d kept in `map` (list_values or list_strings, by `kind`):
 * key is that map's key with everything but its table set; *table is the
 * key's first field, set to each list's id in turn.
 */
static __always_inline __u64 lists_match(struct krsi_dim_policy *d, __u32 kind, void *map,
					 __u32 *table, void *key)
{
	__u64 matched = 0;
	int i;

	if (!(d->flags & KRSI_DIMF_LISTS))
		return 0;
	for (i = 0; i < KRSI_DIM_LISTS_MAX; i++) {
		if (d->lists[i].kind != kind)
			continue;
		*table = d->lists[i].list;
		if (list_live(bpf_map_lookup_elem(map, key)))
			matched |= d->lists[i].rules;
	}
	return matched;
}

#define lists_values(d, key) lists_match(d, KRSI_LIST_VALUES, &list_values, &(key)->table, key)
#define lists_strings(d, key) lists_match(d, KRSI_LIST_STRINGS, &list_strings, &(key)->table, key)

static __always_inline __u64 match_value(struct policy_eval *st, struct krsi_dim_policy *d, __u32 dim)
{
	struct krsi_value_key *key = &st->vkey;
	__u64 matched = 0;
	void *values;
	__u64 *mask;

	key->__pad = 0;
	key->v[0] = st->value[0];
	key->v[1] = st->value[1];
	key->v[2] = st->value[2];
	key->v[3] = st->value[3];
	if (d->flags & KRSI_DIMF_VALUES) {
		values = inner(&policy_values, st);
		key->table = table_id(st, dim);
		if (values && (mask = bpf_map_lookup_elem(values, key)))
			matched |= *mask;
	}
	return matched | lists_values(d, key);
}

__noinline int krsi_policy_match_value(__u32 dim)
{
	struct policy_eval *st = policy_state();
	struct krsi_dim_policy *d;

	if (!st)
		return 0;
	d = dim_policy(hook_policy(st), dim);
	if (d)
		st->matched |= match_value(st, d, dim);
	return 0;
}

struct dfa_walk {
	void *dfa;
	struct policy_eval *st;
	__u32 state;
	__u32 len;
};

static long dfa_step(__u32 i, void *ctx)
{
	struct dfa_walk *w = ctx;
	struct krsi_dfa_state *s;
	__u32 idx = i;
	__u8 c;

	if (i >= w->len)
		return 1;
	/* The mask is the bound the verifier sees; the barrier keeps clang from
	 * dropping it as redundant with the comparison above. */
	barrier_var(idx);
	c = w->st->path[idx & (KRSI_PATH_MAX - 1)];
	s = bpf_map_lookup_elem(w->dfa, &w->state);
	if (!s)
		return 1;
	w->state = s->next[c];
	return 0;
}

/*
 * st->path (path_len bytes, no NUL) may be longer than any policy string:
 * exact strings and prefixes see its first 255 bytes (a longer path equals
 * no policy string, and every prefix is shorter), while the glob automaton
 * walks all of it, so that a long path cannot slip past a glob.
 */
__noinline int krsi_policy_match_path(__u32 dim)
{
	struct policy_eval *st = policy_state();
	struct krsi_dim_policy *d;
	__u64 matched = 0;
	__u32 len, n;
	__u64 *mask;
	void *map;

	if (!st)
		return 0;
	d = dim_policy(hook_policy(st), dim);
	if (!d)
		return 0;
	len = st->path_len;
	if (len > KRSI_PATH_MAX)
		len = KRSI_PATH_MAX;
	n = len < KRSI_STR_MAX - 1 ? len : KRSI_STR_MAX - 1;
	if (d->flags & (KRSI_DIMF_STRINGS | KRSI_DIMF_PREFIXES | KRSI_DIMF_LISTS)) {
		__builtin_memset(st->str.s, 0, sizeof(st->str.s));
		bpf_probe_read_kernel(st->str.s, n & (KRSI_STR_MAX - 1), st->path);
	}
	if ((d->flags & KRSI_DIMF_STRINGS) && len < KRSI_STR_MAX) {
		map = inner(&policy_strings, st);
		st->str.table = table_id(st, dim);
		if (map && (mask = bpf_map_lookup_elem(map, &st->str)))
			matched |= *mask;
	}
	if (d->flags & KRSI_DIMF_PREFIXES) {
		__u32 pn = n < KRSI_PREFIX_MAX ? n : KRSI_PREFIX_MAX;

		st->prefix.table = table_id(st, dim);
		__builtin_memcpy(st->prefix.s, st->str.s, KRSI_PREFIX_MAX);
		st->prefix.prefixlen = 8 + 8 * pn;
		map = inner(&policy_prefixes, st);
		if (map && (mask = bpf_map_lookup_elem(map, &st->prefix)))
			matched |= *mask;
	}
	if (d->flags & KRSI_DIMF_GLOBS) {
		struct dfa_walk w = { .st = st, .state = d->dfa_start, .len = len };
		struct krsi_dfa_state *s;

		w.dfa = inner(&policy_dfa, st);
		if (w.dfa) {
			bpf_loop(KRSI_PATH_MAX, dfa_step, &w, 0);
			s = bpf_map_lookup_elem(w.dfa, &w.state);
			if (s)
				matched |= s->accept;
		}
	}
	if (len < KRSI_STR_MAX)
		matched |= lists_strings(d, &st->str);
	st->matched |= matched;
	return 0;
}

/* st->net.addr: an IPv6 address, IPv4 as ::ffff:a.b.c.d. */
__noinline int krsi_policy_match_net(__u32 dim)
{
	struct policy_eval *st = policy_state();
	struct krsi_dim_policy *d;
	__u64 *mask;
	void *map;

	if (!st)
		return 0;
	d = dim_policy(hook_policy(st), dim);
	if (!d)
		return 0;
	if (d->flags & KRSI_DIMF_NETS) {
		st->net.table = table_id(st, dim);
		st->net.prefixlen = 8 + 128;
		st->net.__pad[0] = st->net.__pad[1] = st->net.__pad[2] = 0;
		map = inner(&policy_nets, st);
		if (map && (mask = bpf_map_lookup_elem(map, &st->net)))
			st->matched |= *mask;
	}
	/* Addresses in dynamic lists are exact values. */
	__builtin_memcpy(st->value, st->net.addr, 16);
	st->value[2] = st->value[3] = 0;
	st->matched |= match_value(st, d, dim);
	return 0;
}

/* The cgroup and each of its ancestors: a cgroup selector covers a subtree. */
struct cgroup_walk {
	struct policy_eval *st;
	struct krsi_dim_policy *d;
	__u64 matched;
};

static long cgroup_step(__u32 level, void *ctx)
{
	struct cgroup_walk *w = ctx;
	__u64 id = bpf_get_current_ancestor_cgroup_id(level);

	if (!id)
		return 1;
	w->st->value[0] = id;
	w->st->value[1] = w->st->value[2] = w->st->value[3] = 0;
	w->matched |= match_value(w->st, w->d, KRSI_DIM_CGROUP);
	return 0;
}

__noinline int krsi_policy_ids(void)
{
	struct policy_eval *st = policy_state();
	struct krsi_hook_policy *hp;
	struct krsi_dim_policy *d;
	__u64 uid_gid = bpf_get_current_uid_gid();

	if (!st || !st->candidates)
		return 0;
	hp = hook_policy(st);
	if (!hp)
		return 0;
	d = dim_policy(hp, KRSI_DIM_UID);
	if (d && (d->constrained & st->candidates)) {
		st->value[0] = (__u32)uid_gid;
		st->value[1] = st->value[2] = st->value[3] = 0;
		st->matched = match_value(st, d, KRSI_DIM_UID);
		krsi_policy_narrow(KRSI_DIM_UID);
	}
	d = dim_policy(hp, KRSI_DIM_GID);
	if (d && (d->constrained & st->candidates)) {
		st->value[0] = uid_gid >> 32;
		st->value[1] = st->value[2] = st->value[3] = 0;
		st->matched = match_value(st, d, KRSI_DIM_GID);
		krsi_policy_narrow(KRSI_DIM_GID);
	}
	d = dim_policy(hp, KRSI_DIM_CGROUP);
	if (d && (d->constrained & st->candidates)) {
		struct cgroup_walk w = { .st = st, .d = d };

		bpf_loop(KRSI_CGROUP_LEVELS_MAX, cgroup_step, &w, 0);
		st->matched = w.matched;
		krsi_policy_narrow(KRSI_DIM_CGROUP);
	}
	return 0;
}

/*
 * Binary classes: selectors on the acting process's executable (or its
 * parent's, or its ancestors') were evaluated when that executable was
 * exec'd; classes holds the result, valid if computed in this generation.
 */
struct classes_walk {
	__u64 *rules;
	__u64 classes;
	__u64 matched;
};

static long classes_step(__u32 i, void *ctx)
{
	struct classes_walk *w = ctx;

	if (i >= KRSI_CLASSES_MAX)
		return 1;
	if (w->classes & (1ULL << i))
		w->matched |= w->rules[i];
	return 0;
}

static __always_inline void classes_dim(struct policy_eval *st, struct krsi_hook_policy *hp,
					__u32 dim, __u32 which, __u64 classes, __u64 generation)
{
	struct krsi_dim_policy *d = dim_policy(hp, dim);
	struct classes_walk w = { .classes = classes };

	if (!d || which >= KRSI_CLASS_ROWS || !(d->constrained & st->candidates))
		return;
	if (generation != hp->generation) {
		narrow_unknown_classes(st, hp, d);
		return;
	}
	barrier_var(which);
	w.rules = hp->class_rules[which & (KRSI_CLASS_ROWS - 1)];
	if (classes)
		bpf_loop(KRSI_CLASSES_MAX, classes_step, &w, 0);
	st->candidates &= (hp->rules & ~d->constrained) |
			  ((w.matched ^ d->negated) & d->constrained);
}

/*
 * A task's context, or its thread group leader's when its own is missing or
 * from another generation: threads share the executable, and the agent can
 * only seed leaders (a pidfd names a process) of tasks older than it.
 */
static __always_inline struct krsi_task_ctx *lineage_ctx(struct task_struct *task, __u64 generation)
{
	struct krsi_task_ctx *ctx = bpf_task_storage_get(&task_ctx, task, 0, 0);
	struct krsi_task_ctx *leader;

	if (ctx && ctx->self_generation == generation)
		return ctx;
	leader = bpf_task_storage_get(&task_ctx, task->group_leader, 0, 0);
	return leader ? leader : ctx;
}

__noinline int krsi_policy_lineage(__u32 with_binary)
{
	struct policy_eval *st = policy_state();
	struct task_struct *task = bpf_get_current_task_btf();
	struct krsi_task_ctx *tctx, *pctx;
	struct krsi_hook_policy *hp;
	__u64 none = 0;

	if (!st || !st->candidates)
		return 0;
	hp = hook_policy(st);
	if (!hp || !(hp->dims & ((1 << KRSI_DIM_BINARY) | (1 << KRSI_DIM_PARENT) | (1 << KRSI_DIM_ANCESTOR))))
		return 0;
	if (task->flags & PF_KTHREAD) {
		/* Kernel threads run no executable: known, in no class. */
		if (with_binary)
			classes_dim(st, hp, KRSI_DIM_BINARY, 0, none, hp->generation);
		classes_dim(st, hp, KRSI_DIM_ANCESTOR, 2, none, hp->generation);
		classes_dim(st, hp, KRSI_DIM_PARENT, 1, none, hp->generation);
		return 0;
	}
	tctx = lineage_ctx(task, hp->generation);
	if (with_binary)
		classes_dim(st, hp, KRSI_DIM_BINARY, 0, tctx ? tctx->self : none,
			    tctx ? tctx->self_generation : none);
	classes_dim(st, hp, KRSI_DIM_ANCESTOR, 2, tctx ? tctx->ancestors : none,
		    tctx ? tctx->ancestors_generation : none);
	if ((hp->dims & (1 << KRSI_DIM_PARENT)) && (task->real_parent->flags & PF_KTHREAD)) {
		classes_dim(st, hp, KRSI_DIM_PARENT, 1, none, hp->generation);
	} else if (hp->dims & (1 << KRSI_DIM_PARENT)) {
		pctx = lineage_ctx(task->real_parent, hp->generation);
		classes_dim(st, hp, KRSI_DIM_PARENT, 1, pctx ? pctx->self : none,
			    pctx ? pctx->self_generation : none);
	}
	return 0;
}

/*
 * A class selector about another process than the actor (ptrace's target):
 * the hook looked up that task's classes and their generation, in
 * st->value[0] and st->value[1].
 */
__noinline int krsi_policy_classes(__u32 dim, __u32 row)
{
	struct policy_eval *st = policy_state();
	struct krsi_hook_policy *hp;

	if (!st || !st->candidates)
		return 0;
	hp = hook_policy(st);
	if (!hp || row >= KRSI_CLASS_ROWS)
		return 0;
	classes_dim(st, hp, dim, row, st->value[0], st->value[1]);
	return 0;
}

__noinline __u64 krsi_policy_dim_rules(__u32 dim)
{
	struct policy_eval *st = policy_state();
	struct krsi_dim_policy *d;

	if (!st)
		return 0;
	d = dim_policy(hook_policy(st), dim);
	return d ? d->constrained : 0;
}

/* FNV-1a, 64 bits: how env names are keyed (src/policy/compile.ts hashes alike). */
#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

struct env_scan {
	struct policy_eval *st;
	struct krsi_dim_policy *d;
	const char *const *envp;
	__u64 matched;
	__u32 ended;
};

static long env_step(__u32 i, void *ctx)
{
	struct env_scan *sc = ctx;
	char *buf = sc->st->str.s;
	__u64 hash = FNV_OFFSET;
	const char *p;
	int j;

	if (bpf_probe_read_user(&p, sizeof(p), &sc->envp[i]) || !p) {
		sc->ended = 1;
		return 1;
	}
	if (bpf_probe_read_user_str(buf, KRSI_STR_MAX, p) <= 0)
		return 0;
	for (j = 0; j < KRSI_STR_MAX; j++) {
		char c = buf[j];

		if (c == '\0' || c == '=')
			break;
		hash = (hash ^ (__u8)c) * FNV_PRIME;
	}
	sc->st->value[0] = hash;
	sc->st->value[1] = sc->st->value[2] = sc->st->value[3] = 0;
	sc->matched |= match_value(sc->st, sc->d, KRSI_DIM_ENV);
	return 0;
}

/*
 * Environment variable names the caller passes.  More than KRSI_ENV_MAX
 * strings cannot all be read: then every positive env selector is taken to
 * match, so that padding the environment never slips past a deny.
 */
__noinline int krsi_policy_env(__u64 envp)
{
	struct policy_eval *st = policy_state();
	struct krsi_dim_policy *d;
	struct env_scan sc = {};

	if (!st || !st->candidates)
		return 0;
	d = dim_policy(hook_policy(st), KRSI_DIM_ENV);
	if (!d || !(d->constrained & st->candidates))
		return 0;
	sc.st = st;
	sc.d = d;
	sc.envp = (const char *const *)envp;
	if (envp)
		bpf_loop(KRSI_ENV_MAX, env_step, &sc, 0);
	if (!envp || !sc.ended) {
		sc.matched = d->constrained & ~d->negated;
		st->flags |= KRSI_REF_CONTEXT_UNKNOWN;
	}
	st->matched = sc.matched;
	return krsi_policy_narrow(KRSI_DIM_ENV);
}

__noinline int krsi_policy_env_unknown(void)
{
	struct policy_eval *st = policy_state();
	struct krsi_dim_policy *d;

	if (!st || !st->candidates)
		return 0;
	d = dim_policy(hook_policy(st), KRSI_DIM_ENV);
	if (!d || !(d->constrained & st->candidates))
		return 0;
	st->matched = d->constrained & ~d->negated;
	st->flags |= KRSI_REF_CONTEXT_UNKNOWN;
	return krsi_policy_narrow(KRSI_DIM_ENV);
}

/* Index of the lowest set bit, without a loop. */
static __always_inline __u8 lowest_rule(__u64 m)
{
	__u8 n = 0;

	if (!m)
		return KRSI_RULE_NONE;
	if (!(m & 0xffffffffULL)) {
		n += 32;
		m >>= 32;
	}
	if (!(m & 0xffffULL)) {
		n += 16;
		m >>= 16;
	}
	if (!(m & 0xffULL)) {
		n += 8;
		m >>= 8;
	}
	if (!(m & 0xfULL)) {
		n += 4;
		m >>= 4;
	}
	if (!(m & 0x3ULL)) {
		n += 2;
		m >>= 2;
	}
	if (!(m & 0x1ULL))
		n += 1;
	return n;
}

/*
 * The decision: an enforced deny or kill wins, then an enforced allow, then
 * the hook's default.  Monitor-mode rules and defaults only leave a trace.
 */
__noinline int krsi_policy_decide(void)
{
	struct policy_eval *st = policy_state();
	struct krsi_policy_ref *ref = st ? &st->ref : NULL;
	struct krsi_hook_policy *hp;
	__u64 m, enforced, denying;

	if (!st || !ref)
		return 0;
	hp = hook_policy(st);
	m = st->candidates;
	ref->matched = m;
	ref->hook = st->hook;
	ref->flags = st->flags;
	ref->would_rule = KRSI_RULE_NONE;
	ref->audit_rule = KRSI_RULE_NONE;
	ref->rule = KRSI_RULE_NONE;
	ref->action = KRSI_ACTION_ALLOW;
	ref->verdict = KRSI_VERDICT_ALLOW;
	if (!hp) {
		ref->generation = 0;
		ref->flags |= KRSI_REF_DEFAULT;
		return 0;
	}
	ref->generation = hp->generation;
	enforced = m & ~hp->monitor;
	denying = enforced & (hp->deny | hp->kill);
	if (denying) {
		if (enforced & hp->kill) {
			ref->rule = lowest_rule(enforced & hp->kill);
			ref->action = KRSI_ACTION_KILL;
		} else {
			ref->rule = lowest_rule(denying);
			ref->action = KRSI_ACTION_DENY;
		}
		ref->verdict = KRSI_VERDICT_DENY;
	} else if (enforced & hp->allow) {
		ref->rule = lowest_rule(enforced & hp->allow);
	} else {
		ref->flags |= KRSI_REF_DEFAULT;
		if (hp->default_action == KRSI_DEFAULT_DENY) {
			ref->action = KRSI_ACTION_DENY;
			ref->verdict = KRSI_VERDICT_DENY;
		} else if (hp->default_action == KRSI_DEFAULT_MONITOR_DENY) {
			ref->flags |= KRSI_REF_WOULD_DENY;
		}
	}
	if (m & hp->monitor & (hp->deny | hp->kill)) {
		ref->would_rule = lowest_rule(m & hp->monitor & (hp->deny | hp->kill));
		ref->flags |= KRSI_REF_WOULD_DENY;
	}
	if (m & hp->audit) {
		ref->audit_rule = lowest_rule(m & hp->audit);
		ref->flags |= KRSI_REF_AUDIT;
	}
	if (ref->verdict == KRSI_VERDICT_ALLOW && (enforced & hp->secureexec))
		ref->flags |= KRSI_REF_SECUREEXEC;
	return 0;
}

/*
 * A fixed window per rule; racing CPUs may let a few extra events through at
 * a window edge, never fewer than the limit.
 */
__noinline int krsi_policy_rate_ok(void)
{
	struct policy_eval *st = policy_state();
	struct krsi_policy_ref *ref = st ? &st->ref : NULL;
	struct krsi_rate_limit *limit;
	struct krsi_hook_policy *hp;
	struct rate_state_value *rs;
	__u64 window;
	__u32 idx;
	__u8 rule;

	if (!st || !ref)
		return 1;
	hp = hook_policy(st);
	rule = ref->rule != KRSI_RULE_NONE ? ref->rule :
	       ref->would_rule != KRSI_RULE_NONE ? ref->would_rule : ref->audit_rule;
	if (!hp || rule >= KRSI_RULES_MAX)
		return 1;
	limit = &hp->rate[rule & (KRSI_RULES_MAX - 1)];
	if (!limit->events || !limit->period_ms)
		return 1;
	idx = st->hook * KRSI_RULES_MAX + rule;
	rs = bpf_map_lookup_elem(&rate_state, &idx);
	if (!rs)
		return 1;
	window = bpf_ktime_get_ns() / ((__u64)limit->period_ms * 1000000ULL);
	if (rs->window != window) {
		rs->window = window;
		rs->count = 0;
	}
	return __sync_fetch_and_add(&rs->count, 1) < limit->events;
}

/*
 * Types that only user space writes, named here so that they reach the
 * object's BTF, from which scripts/gen-abi.ts generates the agent's encoders.
 */
const struct krsi_hook_policy *krsi_abi_hook_policy __attribute__((unused));
const struct krsi_dfa_state *krsi_abi_dfa_state __attribute__((unused));

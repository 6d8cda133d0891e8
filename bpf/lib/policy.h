/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Policy evaluation, shared by every hook.
 *
 * A hook program calls policy_begin() to pick up the current generation,
 * then one policy_dim_*() per selector dimension it can see (cheapest first:
 * each narrows ev->candidates and a dimension is skipped once no rule is
 * left), then policy_decide().  The tables are built by the agent
 * (src/policy/compile.ts); src/policy/evaluate.ts is the same algorithm in
 * TypeScript, and the two are tested against each other.
 *
 * For a dimension d, with M the rules whose selector on d found the event's
 * value in its tables (exact strings, prefixes, glob automata, values,
 * networks, dynamic lists, binary classes):
 *
 *	passing(d) = unconstrained(d) | ((M ^ negated(d)) & constrained(d))
 *
 * and the rules that match are the AND of passing(d) over the dimensions.
 */
#ifndef KRSI_POLICY_H
#define KRSI_POLICY_H

#include "common.h"

/*
 * Inner map shapes; the agent creates one of each per generation.  Sizes, not
 * BTF types: an object that includes this header without using a table would
 * carry only a forward declaration of its struct, which the static linker
 * cannot size.
 */
struct hooks_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KRSI_PHOOK_COUNT);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct krsi_hook_policy));
};

struct strings_inner {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(struct krsi_str_key));
	__uint(value_size, sizeof(__u64));
};

struct prefixes_inner {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(key_size, sizeof(struct krsi_prefix_key));
	__uint(value_size, sizeof(__u64));
};

struct values_inner {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(struct krsi_value_key));
	__uint(value_size, sizeof(__u64));
};

struct nets_inner {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(key_size, sizeof(struct krsi_net_key));
	__uint(value_size, sizeof(__u64));
};

/* Automata differ in size from one generation to the next, hence BPF_F_INNER_MAP. */
struct dfa_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_INNER_MAP);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct krsi_dfa_state));
};

#define KRSI_OUTER(name, inner)                                                \
	struct {                                                               \
		__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);                      \
		__uint(max_entries, KRSI_GEN_SLOTS);                           \
		__type(key, __u32);                                            \
		__array(values, struct inner);                                 \
	} name SEC(".maps") __weak

KRSI_OUTER(policy_hooks, hooks_inner);
KRSI_OUTER(policy_strings, strings_inner);
KRSI_OUTER(policy_prefixes, prefixes_inner);
KRSI_OUTER(policy_values, values_inner);
KRSI_OUTER(policy_nets, nets_inner);
KRSI_OUTER(policy_dfa, dfa_inner);

/* The slot of the current generation; a slot with no inner maps: no policy. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct krsi_policy_active);
} policy_active SEC(".maps") __weak;

/* The lock point: rules of hp->after_lock are candidates only once it is reached. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct krsi_lock_point);
} lock_point SEC(".maps") __weak;

/*
 * What the current or next generation needs done before the decision, set
 * by the agent before a swap to a generation that needs it: the sleepable
 * hash program cannot read the map-in-map tables on every kernel.
 */
struct krsi_policy_needs {
	__u32 sha256;			/* take IMA's digest of every executed file */
	__u32 library_sha256;		/* ... and of every file mapped executable (mmap_exec) */
	__u32 env_backstop;		/* exec rules on env deny, kill or secureexec: check the new image's environment */
	__u32 __pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct krsi_policy_needs);
} policy_needs SEC(".maps") __weak;

/*
 * Dynamic lists: changed in place by the agent, shared by all generations.
 * Only the agent adds entries, so they need not be preallocated: an idle
 * list costs nothing, and the capacity (the agent's --list-capacity, set
 * before load) can be large.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct krsi_str_key);
	__type(value, struct krsi_list_entry);
} list_strings SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct krsi_value_key);
	__type(value, struct krsi_list_entry);
} list_values SEC(".maps") __weak;

/* Per-task binary classes (the agent seeds them for processes older than a generation). */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct krsi_task_ctx);
} task_ctx SEC(".maps") __weak;

/* Rate limits: a fixed window per rule, shared by all CPUs. */
struct rate_state_value {
	__u64 window;
	__u64 count;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KRSI_PHOOK_COUNT * KRSI_RULES_MAX);
	__type(key, __u32);
	__type(value, struct rate_state_value);
} rate_state SEC(".maps") __weak;

/*
 * Evaluation state, in a per-CPU map (programs using it do not sleep): the
 * hook programs fill in what the event is (st->value, st->path, st->net) and
 * call the functions below.  The functions are global BPF functions
 * (bpf/lib/policy.bpf.c): the verifier checks each once, on its own, where
 * inlined policy code would be walked again for every path of every caller.
 * They take scalars only and find the state themselves, because a global
 * function's pointer arguments cannot key map lookups on older kernels.
 */
struct policy_eval {
	__u64 candidates;		/* rules that still match */
	__u64 matched;			/* what the match functions found for the dimension at hand */
	__u64 value[4];			/* the value krsi_policy_match_value() looks up */
	__u32 slot;
	__u32 hook;
	__u32 flags;			/* KRSI_REF_* gathered on the way */
	__u32 path_len;			/* bytes of path, no NUL */
	struct krsi_policy_ref ref;	/* krsi_policy_decide()'s answer */
	struct krsi_str_key str;
	struct krsi_prefix_key prefix;
	struct krsi_value_key vkey;
	struct krsi_net_key net;	/* net.addr: the address krsi_policy_match_net() looks up */
	char path[KRSI_PATH_MAX];	/* the path krsi_policy_match_path() looks up */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct policy_eval);
} policy_scratch SEC(".maps") __weak;

static __always_inline struct policy_eval *policy_state(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&policy_scratch, &zero);
}

/* Starts evaluating hook: 1 when rules remain to be matched, 0 when the decision is already known. */
extern int krsi_policy_begin(__u32 hook);
/* The generation being evaluated (0: none loaded). */
extern __u64 krsi_policy_generation(void);
/* Whether some remaining rule has a selector on dim (worth reading the event for). */
extern int krsi_policy_wants(__u32 dim);
/* KRSI_DIMF_* of dim in the current generation. */
extern int krsi_policy_dim_flags(__u32 dim);
/* Add to st->matched the rules of dim matching st->value / st->path / st->net.addr. */
extern int krsi_policy_match_value(__u32 dim);
extern int krsi_policy_match_path(__u32 dim);
extern int krsi_policy_match_net(__u32 dim);
/* Apply st->matched to the candidates as dim's verdict, and clear it. */
extern int krsi_policy_narrow(__u32 dim);
/* dim cannot be known for this event: rules with a selector on it match neither way. */
extern int krsi_policy_unknown(__u32 dim);
/* The dimensions every hook has: uid, gid, cgroup; binary (unless exec's own), parent, ancestor. */
extern int krsi_policy_ids(void);
extern int krsi_policy_lineage(__u32 with_binary);
/* exec: names in the environment the caller passes (a user pointer to envp). */
extern int krsi_policy_env(__u64 envp);
/* exec: the environment could not be read entirely: positive env selectors match, as in krsi_policy_env. */
extern int krsi_policy_env_unknown(void);
/* Class selector dim (row KRSI_CLASS_*) against st->value[0] (the classes) of generation st->value[1]. */
extern int krsi_policy_classes(__u32 dim, __u32 row);
/* Rules of the current generation with a selector on dim. */
extern __u64 krsi_policy_dim_rules(__u32 dim);
/* The decision, into st->ref. */
extern int krsi_policy_decide(void);
/* 1 to report an event about st->ref, 0 when its rule's rate limit suppresses it. */
extern int krsi_policy_rate_ok(void);

/* Whether a decision is worth an event beyond the hook's own telemetry. */
static __always_inline int policy_noteworthy(const struct krsi_policy_ref *ref)
{
	return ref->verdict == KRSI_VERDICT_DENY ||
	       (ref->flags & (KRSI_REF_WOULD_DENY | KRSI_REF_AUDIT | KRSI_REF_SECUREEXEC));
}

#endif /* KRSI_POLICY_H */

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The steps every krsi LSM program takes, in the order it takes them:
 *
 *	if (ret)			an earlier BPF LSM program refused: its
 *		return ret;		decision stands, and this one adds nothing
 *	(filters on the arguments)	the cheap ones, before any map lookup
 *	stats = hook_enter(KRSI_HOOK_*);
 *	(policy evaluation)		krsi_policy_begin() ... (policy.h)
 *	krsi_policy_decide();
 *	if (!policy_noteworthy(&st->ref))
 *		return 0;		allowed, nothing worth a record
 *	ref = st->ref;
 *	verdict = outcome_enforce(&ref, stats);		(outcome.h)
 *	record_begin_sized(&e->hdr, KRSI_EVENT_*, sizeof(*e));
 *	fill_task(&e->task); e->policy = ref; ...
 *	outcome_report(stats, verdict != 0, e, size);
 *	return verdict;
 *
 * The ret check stays in each program, visible: a macro that returns from
 * its caller would hide the one line a reader must see.  So does the
 * decision tail: wrapped in a helper it compiled to 2-5% more instructions
 * in six programs, and verification time under emulation is what krsi's
 * start costs.  What is here compiles to exactly what it replaces (the
 * objects' instruction counts are compared when it changes).
 */
#ifndef KRSI_HOOK_H
#define KRSI_HOOK_H

#include "common.h"
#include "maps.h"
#include "outcome.h"
#include "policy.h"

/*
 * Counts a run of the program in its hook's counters and gives them (NULL:
 * no counters, not fatal).  A statement expression, not an inline function:
 * written out in the caller, it compiles to exactly what the caller would
 * have written (one inline level more costs some programs a dozen
 * instructions through register allocation).
 */
#define hook_enter(hook)						\
	({								\
		struct krsi_hook_stats *__stats = hook_stats(hook);	\
									\
		if (__stats)						\
			__stats->seen++;				\
		__stats;						\
	})

/*
 * The header every record starts with, but its number (emit() gives it)
 * and, for a variable record, its size (known once its tail is written).
 */
static __always_inline void record_begin(struct krsi_event_header *hdr, __u16 type)
{
	hdr->type = type;
	hdr->abi = KRSI_ABI_VERSION;
	hdr->time_ns = bpf_ktime_get_ns();
}

/* The same for a record of a fixed size; the stores in the order the compiler merges best. */
static __always_inline void record_begin_sized(struct krsi_event_header *hdr, __u16 type, __u32 size)
{
	hdr->type = type;
	hdr->abi = KRSI_ABI_VERSION;
	hdr->size = size;
	hdr->time_ns = bpf_ktime_get_ns();
}

#endif /* KRSI_HOOK_H */

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What a policy hook does once krsi_policy_decide() has spoken, shared by the
 * hooks that report only noteworthy decisions (file_open, file_unlink, mount,
 * module_load, connect): carry out a deny or kill, then report it, within the
 * deciding rule's rate limit.  Denials travel on `decisions`, audit and
 * monitor-mode events on `events`.
 */
#ifndef KRSI_OUTCOME_H
#define KRSI_OUTCOME_H

#include "common.h"
#include "maps.h"
#include "policy.h"

#ifndef SIGKILL
#define SIGKILL 9
#endif

/*
 * Carries out ref: a kill sends SIGKILL to the acting process (and says so
 * in ref); returns what the hook returns, -EPERM for a deny or kill.
 */
static __always_inline int outcome_enforce(struct krsi_policy_ref *ref, struct krsi_hook_stats *stats)
{
	if (ref->verdict != KRSI_VERDICT_DENY)
		return 0;
	if (ref->action == KRSI_ACTION_KILL) {
		bpf_send_signal(SIGKILL);
		ref->flags |= KRSI_REF_KILLED;
	}
	if (stats)
		stats->denied++;
	return -EPERM;
}

/*
 * Whether a record about st->ref may be reported (its rule's rate limit);
 * counts the suppression.  Hot hooks ask before they build the record: a
 * rate-limited audit rule that matches every exec or open must cost no path
 * walk and no record.
 */
static __always_inline int outcome_rate_ok(struct krsi_hook_stats *stats)
{
	if (krsi_policy_rate_ok())
		return 1;
	if (stats)
		stats->rate_limited++;
	return 0;
}

/* Denials travel on `decisions`, the rest on `events`. */
static __always_inline void outcome_emit(struct krsi_hook_stats *stats, int denied, void *record, __u64 size)
{
	if (denied)
		emit(&decisions, stats, record, size);
	else
		emit(&events, stats, record, size);
}

/* Reports a record about st->ref, unless its rule's rate limit suppresses it. */
static __always_inline void outcome_report(struct krsi_hook_stats *stats, int denied, void *record, __u64 size)
{
	if (outcome_rate_ok(stats))
		outcome_emit(stats, denied, record, size);
}

#endif /* KRSI_OUTCOME_H */

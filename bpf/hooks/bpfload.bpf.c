// SPDX-License-Identifier: GPL-2.0
/*
 * bpf(2) program loads: the policy's bpf hook (lsm/bpf, cmd BPF_PROG_LOAD).
 *
 * The hook runs before the kernel's own checks (capabilities, the
 * verifier), with the attributes already copied into the kernel.  Other bpf
 * commands (maps, links, BTF, lookups) are not looked at.  krsi's own
 * programs are loaded before this one is attached; an agent started while
 * another enforces a rule that denies its loads cannot load.
 */
#include "common.h"
#include "hook.h"
#include "maps.h"
#include "outcome.h"
#include "policy.h"
#include "task.h"

char LICENSE[] SEC("license") = "GPL";

/*
 * Both programs of the hook (KRSI_LSM_BPF_PROGRAMS); ret is what an earlier LSM decided.
 */
static __always_inline int bpf_load(int cmd, union bpf_attr *attr, int ret)
{
	struct krsi_hook_stats *stats;
	struct krsi_policy_ref ref;
	struct krsi_bpf_event e = {};
	struct policy_eval *st;
	__u32 prog_type;
	int verdict;

	if (ret)
		return krsi_pass(ret);
	if (cmd != BPF_PROG_LOAD)
		return 0;
	stats = hook_enter(KRSI_HOOK_BPF);
	st = policy_state();
	if (!st)
		return 0;
	prog_type = BPF_CORE_READ(attr, prog_type);
	if (krsi_policy_begin(KRSI_PHOOK_BPF)) {
		krsi_policy_ids();
		krsi_policy_lineage(1);
		if (krsi_policy_wants(KRSI_DIM_PROG_TYPE)) {
			st->value[0] = prog_type;
			st->value[1] = st->value[2] = st->value[3] = 0;
			krsi_policy_match_value(KRSI_DIM_PROG_TYPE);
			krsi_policy_narrow(KRSI_DIM_PROG_TYPE);
		}
	}
	krsi_policy_decide();
	if (!policy_noteworthy(&st->ref))
		return 0;

	ref = st->ref;
	verdict = outcome_enforce(&ref, stats);
	record_begin_sized(&e.hdr, KRSI_EVENT_BPF, sizeof(e));
	fill_task(&e.task);
	e.policy = ref;
	e.cmd = cmd;
	e.prog_type = prog_type;
	e.attach_type = BPF_CORE_READ(attr, expected_attach_type);
	e.insn_cnt = BPF_CORE_READ(attr, insn_cnt);
	e.prog_flags = BPF_CORE_READ(attr, prog_flags);
	e.attach_btf_id = BPF_CORE_READ(attr, attach_btf_id);
	bpf_probe_read_kernel(e.prog_name, sizeof(e.prog_name), &attr->prog_name);
	outcome_report(stats, verdict != 0, &e, sizeof(e));
	return verdict;
}

KRSI_LSM_BPF_PROGRAMS(bpf_load_check, bpf_load)

/* Built on the stack: named here so that the type reaches the object's BTF (scripts/gen-abi.ts). */
const struct krsi_bpf_event *krsi_abi_bpf_event __attribute__((unused));

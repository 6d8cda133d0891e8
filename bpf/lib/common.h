/* SPDX-License-Identifier: GPL-2.0 */
/* What every krsi BPF program includes: kernel types (CO-RE), libbpf's
 * helpers, the shared ABI, and the few kernel constants vmlinux.h lacks. */
#ifndef KRSI_COMMON_H
#define KRSI_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "events.h"

/* errno values and task flags are macros in the kernel, so BTF lacks them. */
#define EPERM 1
#define PF_KTHREAD 0x00200000
#define MAX_ERRNO 4095

/*
 * The decision of the LSMs before ours, passed on.  Newer kernels (7.x)
 * check that an LSM program returns 0 or a negative errno, and an argument
 * is an unknown value to the verifier: one outside that range cannot come
 * from a well-formed hook, so it is a denial.
 */
static __always_inline int krsi_pass(int ret)
{
	if (ret < -MAX_ERRNO || ret > 0)
		return -EPERM;
	return ret;
}

/*
 * The bpf hook's two signatures: 7.x passes `bool kernel` (a call from
 * inside the kernel) before the earlier LSM's ret.  A program reads its
 * arguments by position, so there is one program per signature, both
 * deciding through body(cmd, attr, ret): `name` for the 3-argument hook,
 * `name`_k for the 4-argument one.  The agent loads the one the kernel's BTF
 * (bpf_lsm_bpf) fits and leaves the other out (PROGRAM_VARIANTS,
 * src/agent/kernel-features.ts).
 */
#define KRSI_LSM_BPF_PROGRAMS(name, body)							\
	SEC("lsm/bpf")										\
	int BPF_PROG(name, int cmd, union bpf_attr *attr, unsigned int size, int ret)		\
	{											\
		return body(cmd, attr, ret);							\
	}											\
	SEC("lsm/bpf")										\
	int BPF_PROG(name##_k, int cmd, union bpf_attr *attr, unsigned int size, bool kernel,	\
		     int ret)									\
	{											\
		return body(cmd, attr, ret);							\
	}

#endif /* KRSI_COMMON_H */

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

#endif /* KRSI_COMMON_H */

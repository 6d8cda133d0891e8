// SPDX-License-Identifier: GPL-2.0
/*
 * What an attacker would load to sit beside krsi's hooks: one LSM program
 * that allows everything.  The tamper suite (test/vm/tamper.test.ts) checks
 * that a protected agent makes the kernel refuse to load it.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

SEC("lsm/file_open")
int BPF_PROG(intruder_file_open, struct file *file, int ret)
{
	return ret;
}

char LICENSE[] SEC("license") = "GPL";

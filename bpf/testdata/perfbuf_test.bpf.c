// SPDX-License-Identifier: GPL-2.0
/*
 * Test-only object for test/host/perfbuf.test.ts: the native binding's
 * PerfBuffer reader against the running kernel.  tp_btf only, so that it
 * loads where LSM programs do not.
 *
 * On every exec of a task whose real parent is target_ppid (the test
 * process) it writes `burst` records to the perf event array `events`,
 * each numbered, so the test can check that every record arrives intact
 * and in order per CPU, or, with a small buffer and a large burst, that the
 * kernel's lost count accounts for what did not.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "events.h"

char LICENSE[] SEC("license") = "GPL";

/* Process id of the test; 0 disables the program. */
const volatile __u32 target_ppid = 0;
/* Records per exec: a large burst overruns a small buffer. */
const volatile __u32 burst = 1;

#define TEST_EVENT_PERF 0x7e5b
#define TEST_BURST_MAX 4096
#define TEST_FILL_LEN 64

/*
 * hdr.size covers the whole record: the reader must deliver exactly that,
 * not the 4 bytes of padding perf adds to raw samples.
 */
struct test_perf_record {
	struct krsi_event_header hdr;
	__u32 pid;
	__u32 seq;		/* index within the burst */
	__u32 burst;
	__u32 cpu;		/* the CPU that wrote it: the reader's tag */
	__u8 fill[TEST_FILL_LEN];	/* (seq + i) & 0xff: checks the copy */
};

struct test_perf_counters {
	__u64 sent;		/* bpf_perf_event_output() succeeded */
	__u64 failed;		/* it did not: the CPU's buffer was full */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct test_perf_counters);
} counters SEC(".maps");

/*
 * The record is built in a per-CPU map value, not on the stack: the
 * program then stays within the verifier's 512-byte stack whatever
 * TEST_FILL_LEN becomes.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct test_perf_record);
} scratch SEC(".maps");

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec_perf, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct test_perf_counters *ctr;
	struct test_perf_record *rec;
	__u32 zero = 0, n = burst, i, j;

	if (!target_ppid || BPF_CORE_READ(p, real_parent, tgid) != target_ppid)
		return 0;
	ctr = bpf_map_lookup_elem(&counters, &zero);
	rec = bpf_map_lookup_elem(&scratch, &zero);
	if (!ctr || !rec)
		return 0;
	rec->hdr.type = TEST_EVENT_PERF;
	rec->hdr.abi = KRSI_ABI_VERSION;
	rec->hdr.size = sizeof(*rec);
	rec->pid = BPF_CORE_READ(p, tgid);
	rec->burst = n;
	rec->cpu = bpf_get_smp_processor_id();
	for (i = 0; i < TEST_BURST_MAX && i < n; i++) {
		rec->hdr.time_ns = bpf_ktime_get_ns();
		rec->seq = i;
		for (j = 0; j < TEST_FILL_LEN; j++)
			rec->fill[j] = (i + j) & 0xff;
		if (bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, rec, sizeof(*rec)) == 0)
			__sync_fetch_and_add(&ctr->sent, 1);
		else
			__sync_fetch_and_add(&ctr->failed, 1);
	}
	return 0;
}

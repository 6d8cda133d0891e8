// SPDX-License-Identifier: GPL-2.0
/*
 * Test-only object for test/host/binding.test.ts: it exercises the native
 * binding against the running kernel, so it only uses program types that
 * load on a kernel without BPF trampolines (tp_btf, not lsm or fentry).
 *
 * On every exec whose task was spawned by the test process (its real
 * parent's tgid is target_ppid) it writes a record to ring_a, a header-only
 * record to ring_b, and bumps counters in three kinds of maps.  Execs of
 * anybody else are ignored, so the test counts exactly what it caused.
 *
 * Two more programs on the same tracepoint, for test/host/binding-maps.test.ts,
 * write to ring_c only: on_exec_task_storage reports the exec'ing task's
 * task_store value, on_exec_inner what it finds through the map-in-map
 * outer[0][TEST_INNER_KEY].
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "events.h"

char LICENSE[] SEC("license") = "GPL";

/* Process id of the test; 0 disables the program. */
const volatile __u32 target_ppid = 0;
/* Records written to ring_a per exec, to test the per-tick budget. */
const volatile __u32 burst = 1;
/* A .data variable: copied into every ring_b record, so a test can see it. */
__u32 mark_word = 0x5a5a5a5a;

#define TEST_EVENT_EXEC 0x7e57
#define TEST_EVENT_MARK 0x7e58
#define TEST_BURST_MAX 1024
#define TEST_FILENAME_LEN 64
#define TEST_TAIL_LEN 40
#define TEST_TAIL_BYTE 0xaa
#define TEST_EVENT_TASK_STORAGE 0x7e59
#define TEST_EVENT_INNER 0x7e5a
/* The key on_exec_inner looks up in the inner map of outer[0]. */
#define TEST_INNER_KEY 1

/*
 * Sent on ring_a.  hdr.size stops before tail[]: the binding must deliver
 * only the bytes up to there, never the 0xaa filler behind them.
 */
struct test_exec_record {
	struct krsi_event_header hdr;
	__u32 pid;		/* tgid of the task that exec'd */
	__u32 ppid;		/* tgid of its real parent */
	__u32 seq;		/* index within the burst */
	__u32 burst;		/* records of this burst */
	char comm[KRSI_COMM_LEN];
	char filename[TEST_FILENAME_LEN];
	__u8 tail[TEST_TAIL_LEN];
};

/*
 * Sent on ring_b with hdr.size = 0, an invalid size: the binding must then
 * deliver the whole sample.
 */
struct test_mark_record {
	struct krsi_event_header hdr;
	__u32 pid;
	__u32 word;		/* mark_word */
};

struct test_counters {
	__u64 execs;		/* execs of the test's children seen */
	__u64 records;		/* records written to ring_a */
	__u64 dropped;		/* reservations that failed */
};

/* Execs per child: key is the child's tgid. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} exec_count SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct test_counters);
} counters SEC(".maps");

/* A 4-byte value, so user space sees it rounded up to 8 bytes per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} percpu_execs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} ring_a SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
} ring_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
} ring_c SEC(".maps");

/* Per-task value: user space sets it through a pidfd key. */
struct test_task_value {
	__u64 a;
	__u64 b;		/* bumped by on_exec_task_storage after it reports */
};

/* Local storage maps need BTF for key and value: BpfMap.create() cannot make one. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct test_task_value);
} task_store SEC(".maps");

/* Sent on ring_c by on_exec_task_storage. */
struct test_task_record {
	struct krsi_event_header hdr;
	__u32 pid;
	__u32 __pad;
	__u64 a;
	__u64 b;
};

/* The shape of every map outer holds; inner_a is in outer[0] after load. */
struct inner_hash {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
};

struct inner_hash inner_a SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner_hash);
} outer SEC(".maps") = {
	.values = { [0] = &inner_a },
};

/* Sent on ring_c by on_exec_inner. */
struct test_inner_record {
	struct krsi_event_header hdr;
	__u32 pid;
	__u32 has_inner;	/* outer[0] holds a map */
	__u32 has_value;	/* that map holds TEST_INNER_KEY */
	__u32 __pad;
	__u64 value;
};

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct test_counters *ctr;
	struct test_mark_record *mark;
	__u32 zero = 0, pid, ppid, n, i;
	__u64 one = 1, *execs;
	__u32 *pc;

	if (!target_ppid)
		return 0;
	ppid = BPF_CORE_READ(p, real_parent, tgid);
	if (ppid != target_ppid)
		return 0;
	pid = BPF_CORE_READ(p, tgid);

	ctr = bpf_map_lookup_elem(&counters, &zero);
	if (!ctr)
		return 0;
	__sync_fetch_and_add(&ctr->execs, 1);

	pc = bpf_map_lookup_elem(&percpu_execs, &zero);
	if (pc)
		*pc += 1;	/* per-CPU: no other CPU writes this slot */

	execs = bpf_map_lookup_elem(&exec_count, &pid);
	if (execs)
		__sync_fetch_and_add(execs, 1);
	else
		bpf_map_update_elem(&exec_count, &pid, &one, BPF_NOEXIST);

	n = burst;
	for (i = 0; i < TEST_BURST_MAX && i < n; i++) {
		struct test_exec_record *rec;

		rec = bpf_ringbuf_reserve(&ring_a, sizeof(*rec), 0);
		if (!rec) {
			__sync_fetch_and_add(&ctr->dropped, 1);
			break;
		}
		rec->hdr.type = TEST_EVENT_EXEC;
		rec->hdr.abi = KRSI_ABI_VERSION;
		rec->hdr.size = __builtin_offsetof(struct test_exec_record, tail);
		rec->hdr.time_ns = bpf_ktime_get_ns();
		rec->pid = pid;
		rec->ppid = ppid;
		rec->seq = i;
		rec->burst = n;
		bpf_get_current_comm(rec->comm, sizeof(rec->comm));
		bpf_probe_read_kernel_str(rec->filename, sizeof(rec->filename),
					  BPF_CORE_READ(bprm, filename));
		__builtin_memset(rec->tail, TEST_TAIL_BYTE, sizeof(rec->tail));
		bpf_ringbuf_submit(rec, 0);
		__sync_fetch_and_add(&ctr->records, 1);
	}

	mark = bpf_ringbuf_reserve(&ring_b, sizeof(*mark), 0);
	if (!mark)
		return 0;
	mark->hdr.type = TEST_EVENT_MARK;
	mark->hdr.abi = KRSI_ABI_VERSION;
	mark->hdr.size = 0;
	mark->hdr.time_ns = bpf_ktime_get_ns();
	mark->pid = pid;
	mark->word = mark_word;
	bpf_ringbuf_submit(mark, 0);
	return 0;
}

/*
 * Rejected by the verifier on purpose: the index can reach 7, the array has
 * two slots, so the read may leave the stack slot.  The leading '?' keeps
 * libbpf from loading it unless a test turns autoload on.
 */
SEC("?tp_btf/sched_process_exec")
int BPF_PROG(rejected_oob_read, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	volatile __u64 slots[2] = {};
	__u32 i = bpf_get_prandom_u32() & 7;

	return slots[i];
}

/*
 * Gets (creating it if need be) the exec'ing task's task_store value,
 * reports it and bumps b: user space sees both directions.
 */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec_task_storage, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct test_task_value *v;
	struct test_task_record *rec;

	if (!target_ppid || BPF_CORE_READ(p, real_parent, tgid) != target_ppid)
		return 0;
	v = bpf_task_storage_get(&task_store, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!v)
		return 0;
	rec = bpf_ringbuf_reserve(&ring_c, sizeof(*rec), 0);
	if (!rec)
		return 0;
	rec->hdr.type = TEST_EVENT_TASK_STORAGE;
	rec->hdr.abi = KRSI_ABI_VERSION;
	rec->hdr.size = sizeof(*rec);
	rec->hdr.time_ns = bpf_ktime_get_ns();
	rec->pid = BPF_CORE_READ(p, tgid);
	rec->__pad = 0;
	rec->a = v->a;
	rec->b = v->b;
	/* Before the submit: whoever has read the record sees the bump too. */
	__sync_fetch_and_add(&v->b, 1);
	bpf_ringbuf_submit(rec, 0);
	return 0;
}

/* Reports outer[0][TEST_INNER_KEY], whichever inner map outer[0] holds now. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec_inner, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct test_inner_record *rec;
	__u32 zero = 0, key = TEST_INNER_KEY;
	__u64 *value = NULL;
	void *inner;

	if (!target_ppid || BPF_CORE_READ(p, real_parent, tgid) != target_ppid)
		return 0;
	inner = bpf_map_lookup_elem(&outer, &zero);
	if (inner)
		value = bpf_map_lookup_elem(inner, &key);
	rec = bpf_ringbuf_reserve(&ring_c, sizeof(*rec), 0);
	if (!rec)
		return 0;
	rec->hdr.type = TEST_EVENT_INNER;
	rec->hdr.abi = KRSI_ABI_VERSION;
	rec->hdr.size = sizeof(*rec);
	rec->hdr.time_ns = bpf_ktime_get_ns();
	rec->pid = BPF_CORE_READ(p, tgid);
	rec->has_inner = inner != NULL;
	rec->has_value = value != NULL;
	rec->__pad = 0;
	rec->value = value ? *value : 0;
	bpf_ringbuf_submit(rec, 0);
	return 0;
}

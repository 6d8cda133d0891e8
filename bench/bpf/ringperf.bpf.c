// SPDX-License-Identifier: GPL-2.0
/*
 * The ring buffer against a per-CPU perf buffer at equal load, for
 * `krsi bench pipeline` (src/bench/ringperf.ts).  Two programs on the same
 * raw syscall tracepoint, attached one at a time: each turns every getppid()
 * of the bench's children (build/bench/getppidloop) into one 256-byte
 * record, the size of an exec event's header and a short path, and sends it
 * with bpf_ringbuf_output() or bpf_perf_event_output().  Both copy the same
 * record from the same per-CPU scratch value, so only the transport differs.
 *
 * Sends and refusals are counted per CPU, per transport: a ring buffer says
 * nothing of what it refused, so this count is its only drop figure; for
 * the perf buffer it checks the kernel's own lost count.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "events.h"

char LICENSE[] SEC("license") = "GPL";

#if defined(__TARGET_ARCH_x86)
#define RP_NR_GETPPID 110
#elif defined(__TARGET_ARCH_arm64)
#define RP_NR_GETPPID 173
#else
#error "getppid's syscall number is not known for this architecture"
#endif

#define RP_EVENT 0x7e60
#define RP_RECORD_SIZE 256
#define RP_RING 0
#define RP_PERF 1

/* The bench process: only its children's calls count.  0 disables. */
const volatile __u32 target_ppid = 0;

struct rp_record {
	struct krsi_event_header hdr;
	__u64 seq;		/* per CPU and transport: gaps show drops */
	__u32 cpu;
	__u32 pid;
	__u8 payload[RP_RECORD_SIZE - sizeof(struct krsi_event_header) - 16];
};

_Static_assert(sizeof(struct rp_record) == RP_RECORD_SIZE, "a 256-byte record");

struct rp_counters {
	__u64 sent;
	__u64 failed;		/* the ring or the CPU's perf buffer was full */
};

/* Its size is the capacity under test: set by the bench before load. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} rp_ring SEC(".maps");

/* The per-CPU buffers' size is the reader's (perf_buffer__new's page count). */
struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} rp_perf SEC(".maps");

/* Per CPU: no atomics, which would cost the two transports differently. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct rp_counters);
} rp_counts SEC(".maps");

/* A 256-byte record would take half the BPF stack: built here instead. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rp_record);
} rp_scratch SEC(".maps");

/*
 * Sends one record on the transport if this syscall is one of ours.  Both
 * programs inline it, the transport a constant: only the output call differs.
 */
static __always_inline int rp_emit(void *ctx, long id, __u32 transport)
{
	struct task_struct *task;
	struct rp_counters *ctr;
	struct rp_record *rec;
	__u32 zero = 0;
	long err;

	if (id != RP_NR_GETPPID || !target_ppid)
		return 0;
	task = bpf_get_current_task_btf();
	if (BPF_CORE_READ(task, real_parent, tgid) != target_ppid)
		return 0;
	ctr = bpf_map_lookup_elem(&rp_counts, &transport);
	rec = bpf_map_lookup_elem(&rp_scratch, &zero);
	if (!ctr || !rec)
		return 0;
	rec->hdr.type = RP_EVENT;
	rec->hdr.abi = KRSI_ABI_VERSION;
	rec->hdr.size = sizeof(*rec);
	rec->hdr.time_ns = bpf_ktime_get_ns();
	rec->seq = ctr->sent + ctr->failed;
	rec->cpu = bpf_get_smp_processor_id();
	rec->pid = task->tgid;
	if (transport == RP_RING)
		err = bpf_ringbuf_output(&rp_ring, rec, sizeof(*rec), 0);
	else
		err = bpf_perf_event_output(ctx, &rp_perf, BPF_F_CURRENT_CPU, rec, sizeof(*rec));
	if (err)
		ctr->failed++;
	else
		ctr->sent++;
	return 0;
}

SEC("?tp_btf/sys_enter")
int BPF_PROG(rp_ring_enter, struct pt_regs *regs, long id)
{
	return rp_emit(ctx, id, RP_RING);
}

SEC("?tp_btf/sys_enter")
int BPF_PROG(rp_perf_enter, struct pt_regs *regs, long id)
{
	return rp_emit(ctx, id, RP_PERF);
}

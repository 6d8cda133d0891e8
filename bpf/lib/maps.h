/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Maps shared by every hook.  Each hook under bpf/hooks/ includes this header and
 * the objects are statically linked into one krsi.bpf.o (bpftool gen object);
 * the definitions are __weak so the linker keeps one of each.
 */
#ifndef KRSI_MAPS_H
#define KRSI_MAPS_H

#include "common.h"

/*
 * Two rings, so that telemetry cannot starve decisions: a flood of allowed
 * execs fills `events`, while denials and kills travel on `decisions`.  User
 * space may resize both before load; sizes must be powers of two and page
 * multiples.
 */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} events SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} decisions SEC(".maps") __weak;

/* Per-CPU so that counting never contends and never loses an increment. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KRSI_HOOK_COUNT);
	__type(key, __u32);
	__type(value, struct krsi_hook_stats);
} counters SEC(".maps") __weak;

/* Records each program tried to write to each ring, per CPU: the sequence
 * numbers of the records, so that the agent sees where any went missing. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KRSI_RING_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} ring_seq SEC(".maps") __weak;

/*
 * Records that could not be written, per ring and CPU: the ring had no room.
 * A jump in the sequence shows the agent a loss only once a later record of
 * the same CPU arrives; this count shows it at once, so that the agent marks
 * losses at the tail of a sequence too, and reports them exactly at any time.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KRSI_RING_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} ring_lost SEC(".maps") __weak;

/* Only the agent writes this one: how far it consumed each ring on each CPU
 * and what it marked lost (struct krsi_ring_read).  It is pinned with the
 * rest, so that an agent adopting the state counts what was written, and
 * lost, while no agent ran, and marks no loss twice. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KRSI_RING_COUNT);
	__type(key, __u32);
	__type(value, struct krsi_ring_read);
} ring_read SEC(".maps") __weak;

static __always_inline struct krsi_hook_stats *hook_stats(__u32 hook)
{
	return bpf_map_lookup_elem(&counters, &hook);
}

/*
 * Numbers a record for ring idx (KRSI_RING_*): taken before the write is
 * tried, so that a record the ring had no room for leaves a gap the agent
 * sees and counts.  Records reserved in the ring itself take theirs first.
 */
static __always_inline void number_record(struct krsi_event_header *hdr, __u32 idx)
{
	__u64 *seq = bpf_map_lookup_elem(&ring_seq, &idx);

	hdr->seq = seq ? ++*seq : 0;
	hdr->cpu = bpf_get_smp_processor_id();
	hdr->ring = idx;
}

/*
 * Counts a numbered record that ring idx had no room for.  Every write site
 * calls it where the write fails, so that ring_lost and the jumps in
 * ring_seq agree.  Atomic: a sleepable or preempted program may share the
 * CPU's slot with another, and a lost increment would be a silent loss.
 */
static __always_inline void count_lost(__u32 idx)
{
	__u64 *lost = bpf_map_lookup_elem(&ring_lost, &idx);

	if (lost)
		__sync_fetch_and_add(lost, 1);
}

/*
 * Writes a record (starting with struct krsi_event_header) to a ring and
 * accounts for it: a sequence number per ring and CPU, consumed whether or
 * not the write succeeds, a lost record per ring and CPU when it fails, and
 * emitted/dropped per hook.  A full ring loses the record, never the
 * decision: callers decide first and emit afterwards.
 */
static __always_inline void emit(void *ring, struct krsi_hook_stats *stats,
				 void *record, __u64 size)
{
	struct krsi_event_header *hdr = record;
	__u32 idx = ring == (void *)&decisions ? KRSI_RING_DECISIONS : KRSI_RING_EVENTS;

	number_record(hdr, idx);
	if (bpf_ringbuf_output(ring, record, size, 0) == 0) {
		if (stats)
			stats->emitted++;
		return;
	}
	count_lost(idx);
	if (stats)
		stats->dropped++;
}

#endif /* KRSI_MAPS_H */

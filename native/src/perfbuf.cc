// SPDX-License-Identifier: GPL-2.0
/*
 * PerfBuffer: consumes a BPF perf event array (one perf ring per CPU) on the
 * JS thread's event loop, the way RingBuffer (ringbuf.cc) consumes BPF ring
 * buffers; the polling, batching and closing are BatchReader's (reader.h).
 * It exists so that the two transports can be compared at equal load
 * (krsi bench pipeline); the agent itself uses ring buffers.
 *
 * libbpf's perf_buffer opens one perf event per online CPU, mmaps pageCount
 * data pages plus a header page for each and puts their fds in an epoll set
 * of its own, which the reader watches.  We drain the per-CPU buffers
 * round-robin into one batch (the layout of batch.h, each record tagged
 * with its CPU).
 *
 * Two differences from the ring buffer shape the budget:
 *  - perf_buffer's sample callback returns void: a buffer cannot be left
 *    mid-way, so the budget is checked between CPUs, and a batch may exceed
 *    it by one CPU's buffer (pageCount pages at most);
 *  - a perf event's poll reports a wakeup once (perf_poll() clears it), not
 *    "data is there": what the budget left behind does not keep the epoll
 *    fd readable, so the reader rearms (kRearm) and comes back for it on the
 *    next loop turn.
 *
 * Records the kernel could not write (the CPU's buffer was full) come to
 * libbpf as PERF_RECORD_LOST with a count; we add them up in stats.lost,
 * per CPU in stats.lostByCpu.  That count is the point of this reader: a
 * perf buffer says how much it dropped without help from the BPF program.
 */
#include "common.h"

#include "reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

namespace krsi {

namespace {

constexpr uint64_t kDefaultPageCount = 64;
/* libbpf wants a power of two; 2^16 pages is 256 MiB per CPU. */
constexpr uint64_t kMaxPageCount = 1 << 16;

struct PerfState : ReaderState {
	int map_fd = -1;		/* our dup: perf_buffer__free() clears slots through it */
	struct perf_buffer *pb = nullptr;
	size_t buffers = 0;		/* perf_buffer__buffer_cnt(): online CPUs */
	size_t next_buf = 0;		/* round-robin start */
	uint64_t capacity = 0;		/* data bytes of all buffers: bounds consume() */
	uint64_t lost = 0;
	std::vector<uint64_t> lost_by_cpu;

	/*
	 * At close(), not when the handles have closed: perf_buffer__free()
	 * clears the map's slots, and done later it would clear those of a
	 * PerfBuffer opened on the same map in the meantime.
	 */
	void Release() override
	{
		/* Before the fd: perf_buffer__free() clears the slots through it. */
		if (pb)
			perf_buffer__free(pb);
		pb = nullptr;
		if (map_fd >= 0)
			close(map_fd);
		map_fd = -1;
	}
};

void OnSample(void *ctx, int cpu, void *data, __u32 size)
{
	static_cast<PerfState *>(ctx)->batch.Append(data, size, static_cast<uint32_t>(cpu));
}

void OnLost(void *ctx, int cpu, __u64 cnt)
{
	PerfState *st = static_cast<PerfState *>(ctx);

	st->lost += cnt;
	if (cpu >= 0 && static_cast<size_t>(cpu) < st->lost_by_cpu.size())
		st->lost_by_cpu[cpu] += cnt;
}

class PerfBufferWrap : public BatchReader<PerfBufferWrap> {
public:
	static constexpr const char *kNoun = "PerfBuffer";
	static constexpr bool kRearm = true;
	static const napi_type_tag *Tag() { return &kPerfBufferTag; }

	/* new PerfBuffer(map, { pageCount, maxRecordsPerTick, batchBytes }, onBatch) */
	explicit PerfBufferWrap(const Napi::CallbackInfo &info) : BatchReader(info) { Begin(info); }

	bool Start(const Napi::CallbackInfo &info);
	bool Fill(bool from_loop, bool *more);
	/* libbpf's perf buffer reader moves the tail as it reads. */
	void Commit() {}
	/* Each batch drains at least one CPU's buffer whole. */
	uint64_t MaxBatches() const
	{
		return perf()->capacity / 16 / perf()->batch.max_records + perf()->buffers + 2;
	}
	void AddStats(Napi::Object out) const;

private:
	PerfState *perf() const { return static_cast<PerfState *>(state_); }

	/* Copied from the state after each drain, so that they survive close(). */
	uint64_t lost_ = 0;
	std::vector<uint64_t> lost_by_cpu_;
	uint64_t buffers_ = 0;
	uint64_t page_count_ = 0;
	uint64_t bytes_ = 0;
};

bool PerfBufferWrap::Start(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	RecordBatch batch;
	uint64_t page_count;
	LibbpfCall call;

	if (!ParseBatchOptions(env, info[1], &batch))
		return false;
	Napi::Value page_opt = info[1].IsObject() ? info[1].As<Napi::Object>().Get("pageCount") : env.Undefined();
	if (!GetOptionalUint(page_opt, "pageCount", kDefaultPageCount, &page_count))
		return false;
	if (page_count < 1 || page_count > kMaxPageCount || (page_count & (page_count - 1))) {
		ThrowTypeError(env, "pageCount must be a power of two, 1..65536");
		return false;
	}
	if (!TakeOnBatch(info))
		return false;
	int fd = MapFdForReader(info[0], "map", BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	if (fd < 0)
		return false;

	PerfState *st = new PerfState();
	Adopt(st);
	st->batch = std::move(batch);
	int ncpus = libbpf_num_possible_cpus();
	st->lost_by_cpu.assign(ncpus > 0 ? ncpus : 0, 0);
	st->map_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (st->map_fd < 0) {
		ThrowErrno(env, "fcntl(F_DUPFD_CLOEXEC)", errno, "");
		return false;
	}
	st->pb = perf_buffer__new(st->map_fd, page_count, OnSample, OnLost, st, nullptr);
	if (!st->pb) {
		ThrowErrno(env, "perf_buffer__new", errno, "map");
		return false;
	}
	uint64_t page_size = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
	st->buffers = perf_buffer__buffer_cnt(st->pb);
	st->capacity = st->buffers * page_count * page_size;
	buffers_ = st->buffers;
	page_count_ = page_count;
	/* What perf_buffer mmaps: a header page and pageCount data pages per CPU. */
	bytes_ = st->buffers * (page_count + 1) * page_size;
	lost_by_cpu_ = st->lost_by_cpu;
	return Watch(env, perf_buffer__epoll_fd(st->pb));
}

bool PerfBufferWrap::Fill(bool from_loop, bool *more)
{
	PerfState *st = perf();
	size_t n = st->buffers;
	size_t start = st->next_buf;
	LibbpfCall call;

	st->next_buf = (start + 1) % n;
	for (size_t k = 0; k < n; k++) {
		size_t i = (start + k) % n;
		int ret = perf_buffer__consume_buffer(st->pb, i);
		if (ret < 0 && ret != -ENOENT) {
			ReportError(from_loop, MakeErrno(Env(), "perf_buffer__consume_buffer", ret,
							 "buffer " + std::to_string(i)));
			return false;
		}
		if (st->batch.Full()) {
			/* Next batch starts with the next CPU: none starves another. */
			st->next_buf = (i + 1) % n;
			/* Even after the last CPU: it may have been refilled meanwhile. */
			*more = true;
			break;
		}
	}
	lost_ = st->lost;
	lost_by_cpu_ = st->lost_by_cpu;
	return true;
}

void PerfBufferWrap::AddStats(Napi::Object out) const
{
	Napi::Env env = out.Env();
	Napi::Array by_cpu = Napi::Array::New(env, lost_by_cpu_.size());

	for (size_t i = 0; i < lost_by_cpu_.size(); i++)
		by_cpu.Set(i, Napi::Number::New(env, static_cast<double>(lost_by_cpu_[i])));
	out.Set("lost", Napi::Number::New(env, static_cast<double>(lost_)));
	out.Set("lostByCpu", by_cpu);
	out.Set("buffers", Napi::Number::New(env, static_cast<double>(buffers_)));
	out.Set("pageCount", Napi::Number::New(env, static_cast<double>(page_count_)));
	out.Set("bytes", Napi::Number::New(env, static_cast<double>(bytes_)));
}

} /* namespace */

Napi::Function DefinePerfBuffer(Napi::Env env)
{
	return PerfBufferWrap::Define(env);
}

} /* namespace krsi */

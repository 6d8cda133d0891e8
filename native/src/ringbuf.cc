// SPDX-License-Identifier: GPL-2.0
/*
 * RingBuffer: consumes BPF ring buffers on the JS thread's event loop
 * (the polling, batching and closing are BatchReader's: reader.h).
 *
 * Each map gets its own libbpf ring_buffer (so one ring can be drained
 * without draining the others first), and its map fd goes into an epoll
 * set of ours, which the reader watches.  A ring's fd stays readable while
 * it holds data, so what the budget leaves brings the poll back on the next
 * loop turn.
 *
 * Stopping mid-ring relies on libbpf 1.1's ringbuf_process_ring(): the
 * consumer position is advanced past a sample before the callback runs,
 * and stored as it is when the callback returns < 0.  So the callback takes
 * the sample that exhausts the budget and then returns kBudgetExhausted:
 * nothing is dropped, nothing is seen twice.
 *
 * Batches are laid out as batch.h says, each record tagged with the index
 * of its ring in the constructor's array.
 */
#include "common.h"

#include "reader.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

namespace krsi {

namespace {

/* Not an errno: a private "stop here" for ring_buffer__consume(). */
constexpr int kBudgetExhausted = -0x4b525342;

struct RingState;

struct RingSlot {
	RingState *state;
	uint32_t index;		/* position of the map in the constructor's array */
};

struct RingState : ReaderState {
	int epoll_fd = -1;
	std::vector<int> map_fds;	/* our dups: the rings survive their object */
	std::vector<struct ring_buffer *> rings;
	std::vector<RingSlot> slots;
	uint64_t capacity = 0;		/* bytes of all rings: bounds consume() */
	size_t next_ring = 0;		/* round-robin start */

	void Release() override
	{
		for (struct ring_buffer *rb : rings)
			ring_buffer__free(rb);
		rings.clear();
		for (int fd : map_fds)
			close(fd);
		map_fds.clear();
		if (epoll_fd >= 0)
			close(epoll_fd);
		epoll_fd = -1;
	}
};

/*
 * libbpf's sample callback.  Never refuses a sample: once called, the
 * sample is consumed whatever we return, so batchBytes is exceeded by at
 * most one record.
 */
int OnSample(void *ctx, void *data, size_t size)
{
	RingSlot *slot = static_cast<RingSlot *>(ctx);
	RecordBatch &batch = slot->state->batch;

	batch.Append(data, size, slot->index);
	return batch.Full() ? kBudgetExhausted : 0;
}

class RingBufferWrap : public BatchReader<RingBufferWrap> {
public:
	static constexpr const char *kNoun = "RingBuffer";
	static constexpr bool kRearm = false;
	static const napi_type_tag *Tag() { return &kRingBufferTag; }

	/* new RingBuffer(maps, { maxRecordsPerTick, batchBytes }, onBatch) */
	explicit RingBufferWrap(const Napi::CallbackInfo &info) : BatchReader(info) { Begin(info); }

	bool Start(const Napi::CallbackInfo &info);
	bool Fill(bool from_loop, bool *more);
	/* The smallest record (8-byte header, 8 bytes of data) is 16 bytes. */
	uint64_t MaxBatches() const { return ring()->capacity / 16 / ring()->batch.max_records + 2; }
	void AddStats(Napi::Object) const {}

private:
	RingState *ring() const { return static_cast<RingState *>(state_); }
};

bool RingBufferWrap::Start(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	RecordBatch batch;
	LibbpfCall call;

	if (!info[0].IsArray() || info[0].As<Napi::Array>().Length() == 0) {
		ThrowTypeError(env, "maps must be a non-empty array of ringbuf BpfMaps");
		return false;
	}
	if (!ParseBatchOptions(env, info[1], &batch) || !TakeOnBatch(info))
		return false;

	Napi::Array maps = info[0].As<Napi::Array>();
	uint32_t n = maps.Length();
	RingState *st = new RingState();
	Adopt(st);
	st->batch = std::move(batch);
	st->slots.reserve(n);	/* slots are libbpf ctx pointers: no reallocation */

	st->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (st->epoll_fd < 0) {
		ThrowErrno(env, "epoll_create1", errno, "");
		return false;
	}
	for (uint32_t i = 0; i < n; i++) {
		std::string what = "maps[" + std::to_string(i) + "]";
		int fd = MapFdForReader(maps.Get(i), what, BPF_MAP_TYPE_RINGBUF);
		if (fd < 0)
			return false;
		int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		if (dup < 0) {
			ThrowErrno(env, "fcntl(F_DUPFD_CLOEXEC)", errno, "");
			return false;
		}
		st->map_fds.push_back(dup);
		st->slots.push_back({st, i});
		struct ring_buffer *rb = ring_buffer__new(dup, OnSample, &st->slots.back(), nullptr);
		if (!rb) {
			ThrowErrno(env, "ring_buffer__new", errno, what);
			return false;
		}
		st->rings.push_back(rb);
		struct bpf_map_info map_info = {};
		__u32 info_len = sizeof(map_info);
		if (bpf_obj_get_info_by_fd(dup, &map_info, &info_len) == 0)
			st->capacity += map_info.max_entries;
		struct epoll_event ev = {};
		ev.events = EPOLLIN;
		ev.data.u32 = i;
		if (epoll_ctl(st->epoll_fd, EPOLL_CTL_ADD, dup, &ev) < 0) {
			ThrowErrno(env, "epoll_ctl", errno, what);
			return false;
		}
	}
	return Watch(env, st->epoll_fd);
}

bool RingBufferWrap::Fill(bool from_loop, bool *more)
{
	RingState *st = ring();
	size_t n = st->rings.size();
	size_t start = st->next_ring;
	LibbpfCall call;

	for (size_t k = 0; k < n; k++) {
		size_t i = (start + k) % n;
		int ret = ring_buffer__consume(st->rings[i]);
		if (ret == kBudgetExhausted) {
			/* Next batch starts with the next ring: no ring starves another. */
			st->next_ring = (i + 1) % n;
			*more = true;
			return true;
		}
		if (ret < 0) {
			ReportError(from_loop, MakeErrno(Env(), "ring_buffer__consume", ret,
							 "maps[" + std::to_string(i) + "]"));
			return false;
		}
	}
	st->next_ring = (start + 1) % n;
	return true;
}

} /* namespace */

Napi::Function DefineRingBuffer(Napi::Env env)
{
	return RingBufferWrap::Define(env);
}

} /* namespace krsi */

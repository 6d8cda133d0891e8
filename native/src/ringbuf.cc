// SPDX-License-Identifier: GPL-2.0
/*
 * RingBuffer: consumes BPF ring buffers on the JS thread's event loop
 * (the polling, batching and closing are BatchReader's: reader.h).
 *
 * Each ring is mapped here as libbpf maps it (the consumer position page
 * read-write, the producer position and the data, twice over, read-only),
 * and its map fd goes into an epoll set of ours, which the reader watches.
 * A ring's fd stays readable while it holds data, so what the budget leaves
 * brings the poll back on the next loop turn.
 *
 * Why not libbpf's ring_buffer: it stores the consumer position past each
 * sample before handing the sample on, so a consumer killed between taking
 * a batch and recording what it delivered (kill -9 of the agent) has taken
 * records from the kernel that no one delivers.  Here the position is
 * stored only once JS has had the batch (Commit(), after onBatch returns),
 * so such records are still in the ring for the next reader: delivery is at
 * least once, and the agent's accounting (ring_read) tells a successor
 * which of them its predecessor delivered.
 *
 * Batches are laid out as batch.h says, each record tagged with the index
 * of its ring in the constructor's array.
 */
#include "common.h"

#include "reader.h"

#include <fcntl.h>
#include <linux/bpf.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

namespace krsi {

namespace {

struct Ring {
	int fd = -1;			/* our dup: the ring survives its object */
	uint32_t index = 0;		/* position of the map in the constructor's array */
	uint64_t mask = 0;
	size_t data_map_len = 0;
	unsigned long *consumer = nullptr;	/* page 0, read-write */
	unsigned long *producer = nullptr;	/* page 1, read-only; the data follows, mapped twice */
	const uint8_t *data = nullptr;
	/*
	 * Past the last sample put in a batch: stored into *consumer by
	 * Commit().  Reading goes on from here, not from *consumer: onBatch (or
	 * the microtasks that run when it returns to the loop) may drain the
	 * same reader again, which must not be handed the batch in progress.
	 */
	unsigned long taken = 0;
};

/* What the kernel sees as consumed; only ever moved forward. */
void StoreConsumer(Ring &r)
{
	if (r.taken > __atomic_load_n(r.consumer, __ATOMIC_RELAXED))
		__atomic_store_n(r.consumer, r.taken, __ATOMIC_RELEASE);
}

struct RingState : ReaderState {
	int epoll_fd = -1;
	std::vector<Ring> rings;
	size_t page_size = 0;
	uint64_t capacity = 0;		/* bytes of all rings: bounds consume() */
	size_t next_ring = 0;		/* round-robin start */

	/* Gives back what the last batch took: JS has had it. */
	void Commit()
	{
		for (Ring &r : rings)
			StoreConsumer(r);
	}

	void Release() override
	{
		/* Closed from onBatch: the batch was handed over. */
		Commit();
		for (Ring &r : rings) {
			if (r.consumer)
				munmap(r.consumer, page_size);
			if (r.producer)
				munmap(r.producer, r.data_map_len);
			if (r.fd >= 0)
				close(r.fd);
		}
		rings.clear();
		if (epoll_fd >= 0)
			close(epoll_fd);
		epoll_fd = -1;
	}
};

/* A sample's length with its header, rounded as the kernel lays samples out. */
uint64_t SampleSpan(uint32_t len)
{
	len &= ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
	return (static_cast<uint64_t>(len) + BPF_RINGBUF_HDR_SZ + 7) / 8 * 8;
}

/*
 * Appends the submitted samples of r, from past the last batch (or where
 * another reader of the ring stored the consumer position, if further on),
 * until the ring is empty, a sample is still being written, or the batch is
 * full (then true).
 */
bool TakeSamples(Ring &r, RecordBatch &batch)
{
	/* Another reader of the ring (an agent handing over) may be ahead. */
	unsigned long pos = std::max(r.taken, __atomic_load_n(r.consumer, __ATOMIC_ACQUIRE));
	bool full = false;

	for (;;) {
		unsigned long prod = __atomic_load_n(r.producer, __ATOMIC_ACQUIRE);
		bool got = false;

		while (pos < prod) {
			const uint8_t *hdr = r.data + (pos & r.mask);
			uint32_t len = __atomic_load_n(reinterpret_cast<const uint32_t *>(hdr), __ATOMIC_ACQUIRE);

			/* Reserved and not yet submitted: the rest waits for it. */
			if (len & BPF_RINGBUF_BUSY_BIT)
				goto out;
			got = true;
			pos += SampleSpan(len);
			if (!(len & BPF_RINGBUF_DISCARD_BIT))
				batch.Append(hdr + BPF_RINGBUF_HDR_SZ, len, r.index);
			if (batch.Full()) {
				full = true;
				goto out;
			}
		}
		if (!got)
			break;
	}
out:
	r.taken = pos;
	return full;
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
	void Commit() { ring()->Commit(); }
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

	st->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (st->epoll_fd < 0) {
		ThrowErrno(env, "epoll_create1", errno, "");
		return false;
	}
	st->page_size = static_cast<size_t>(sysconf(_SC_PAGESIZE));
	st->rings.reserve(n);
	for (uint32_t i = 0; i < n; i++) {
		std::string what = "maps[" + std::to_string(i) + "]";
		int fd = MapFdForReader(maps.Get(i), what, BPF_MAP_TYPE_RINGBUF);
		if (fd < 0)
			return false;
		st->rings.emplace_back();
		Ring &r = st->rings.back();
		r.index = i;
		r.fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		if (r.fd < 0) {
			ThrowErrno(env, "fcntl(F_DUPFD_CLOEXEC)", errno, "");
			return false;
		}
		struct bpf_map_info map_info = {};
		__u32 info_len = sizeof(map_info);
		if (bpf_obj_get_info_by_fd(r.fd, &map_info, &info_len) < 0) {
			ThrowErrno(env, "bpf_obj_get_info_by_fd", errno, what);
			return false;
		}
		r.mask = map_info.max_entries - 1;
		void *consumer = mmap(nullptr, st->page_size, PROT_READ | PROT_WRITE, MAP_SHARED, r.fd, 0);
		if (consumer == MAP_FAILED) {
			ThrowErrno(env, "mmap (ring buffer consumer page)", errno, what);
			return false;
		}
		r.consumer = static_cast<unsigned long *>(consumer);
		r.data_map_len = st->page_size + 2 * static_cast<size_t>(map_info.max_entries);
		void *producer = mmap(nullptr, r.data_map_len, PROT_READ, MAP_SHARED, r.fd, static_cast<off_t>(st->page_size));
		if (producer == MAP_FAILED) {
			ThrowErrno(env, "mmap (ring buffer data)", errno, what);
			return false;
		}
		r.producer = static_cast<unsigned long *>(producer);
		r.data = static_cast<const uint8_t *>(producer) + st->page_size;
		st->capacity += map_info.max_entries;
		struct epoll_event ev = {};
		ev.events = EPOLLIN;
		ev.data.u32 = i;
		if (epoll_ctl(st->epoll_fd, EPOLL_CTL_ADD, r.fd, &ev) < 0) {
			ThrowErrno(env, "epoll_ctl", errno, what);
			return false;
		}
	}
	return Watch(env, st->epoll_fd);
}

bool RingBufferWrap::Fill(bool, bool *more)
{
	RingState *st = ring();
	size_t n = st->rings.size();
	size_t start = st->next_ring;

	for (size_t k = 0; k < n; k++) {
		size_t i = (start + k) % n;
		if (TakeSamples(st->rings[i], st->batch)) {
			/* Next batch starts with the next ring: no ring starves another. */
			st->next_ring = (i + 1) % n;
			*more = true;
			return true;
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

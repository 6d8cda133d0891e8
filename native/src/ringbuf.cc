// SPDX-License-Identifier: GPL-2.0
/*
 * RingBuffer: consumes BPF ring buffers on the JS thread's event loop.
 *
 * Each map gets its own libbpf ring_buffer (so one ring can be drained
 * without draining the others first), and its map fd goes into an epoll
 * set of ours, which a uv_poll_t watches on the environment's own loop
 * (a worker's loop in a worker).  When it is readable we consume up to the
 * per-tick budget, copying records into one batch that JS gets in a single
 * call.  What is left keeps the level-triggered epoll fd readable, so libuv
 * comes back on its next turn, after timers, I/O and setImmediate callbacks
 * have run: the event loop is never starved however fast BPF writes.
 *
 * Stopping mid-ring relies on libbpf 1.1's ringbuf_process_ring(): the
 * consumer position is advanced past a sample before the callback runs,
 * and stored as it is when the callback returns < 0.  So the callback takes
 * the sample that exhausts the budget and then returns kBudgetExhausted:
 * nothing is dropped, nothing is seen twice.
 *
 * Batch layout, repeated count times:
 *   u32 length | u32 ring | payload[length] | zeros to an 8-byte boundary
 * where length is hdr.size for records that start with a plausible
 * struct krsi_event_header (the bytes that hold data) and the sample size
 * otherwise.
 */
#include "common.h"

#include "events.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

namespace krsi {

namespace {

/* Not an errno: a private "stop here" for ring_buffer__consume(). */
constexpr int kBudgetExhausted = -0x4b525342;

constexpr uint64_t kDefaultMaxRecords = 4096;
constexpr uint64_t kDefaultBatchBytes = 1 << 20;
constexpr size_t kRecordHeader = 8;

class RingBufferWrap;
struct RingState;

struct RingSlot {
	RingState *state;
	uint32_t index;		/* position of the map in the constructor's array */
};

/*
 * Native state of a ring buffer.  It outlives the JS wrapper's close():
 * the uv handle must be closed asynchronously, and the state is freed in
 * the close callback.
 */
struct RingState {
	uv_poll_t poll;
	bool poll_initialized = false;
	int epoll_fd = -1;
	std::vector<int> map_fds;	/* our dups: the rings survive their object */
	std::vector<struct ring_buffer *> rings;
	std::vector<RingSlot> slots;

	/* Budget of one batch. */
	uint32_t max_records = kDefaultMaxRecords;
	size_t batch_bytes = kDefaultBatchBytes;

	/* The batch being filled by OnSample. */
	std::vector<uint8_t> batch;
	size_t used = 0;
	uint32_t count = 0;

	uint64_t capacity = 0;		/* bytes of all rings: bounds consume() */
	size_t next_ring = 0;		/* round-robin start */
	RingBufferWrap *wrap = nullptr;	/* null once closed */
	napi_async_cleanup_hook_handle cleanup = nullptr;
};

void FreeState(RingState *st)
{
	for (struct ring_buffer *rb : st->rings)
		ring_buffer__free(rb);
	for (int fd : st->map_fds)
		close(fd);
	if (st->epoll_fd >= 0)
		close(st->epoll_fd);
	delete st;
}

void OnPollClosed(uv_handle_t *handle)
{
	RingState *st = static_cast<RingState *>(handle->data);
	napi_async_cleanup_hook_handle cleanup = st->cleanup;

	FreeState(st);
	/* Environment teardown waits for this. */
	if (cleanup)
		napi_remove_async_cleanup_hook(cleanup);
}

/* Bytes of a sample that hold data: see the layout comment above. */
size_t PayloadLength(const void *data, size_t size)
{
	struct krsi_event_header hdr;

	if (size < sizeof(hdr))
		return size;
	memcpy(&hdr, data, sizeof(hdr));
	if (hdr.size >= sizeof(hdr) && hdr.size <= size)
		return hdr.size;
	return size;
}

/*
 * libbpf's sample callback.  Never refuses a sample: once called, the
 * sample is consumed whatever we return.  A record larger than what is
 * left grows the batch, so batchBytes is exceeded by at most one record.
 */
int OnSample(void *ctx, void *data, size_t size)
{
	RingSlot *slot = static_cast<RingSlot *>(ctx);
	RingState *st = slot->state;
	size_t len = PayloadLength(data, size);
	size_t padded = (len + 7) & ~static_cast<size_t>(7);
	size_t need = kRecordHeader + padded;

	if (st->used + need > st->batch.size())
		st->batch.resize(std::max(st->batch.size() * 2, st->used + need));

	uint8_t *rec = st->batch.data() + st->used;
	uint32_t head[2] = {static_cast<uint32_t>(len), slot->index};
	memcpy(rec, head, sizeof(head));
	memcpy(rec + kRecordHeader, data, len);
	memset(rec + kRecordHeader + len, 0, padded - len);
	st->used += need;
	st->count++;

	if (st->count >= st->max_records || st->used >= st->batch_bytes)
		return kBudgetExhausted;
	return 0;
}

class RingBufferWrap : public Napi::ObjectWrap<RingBufferWrap> {
public:
	static Napi::Function Define(Napi::Env env);
	explicit RingBufferWrap(const Napi::CallbackInfo &info);
	~RingBufferWrap() override;

private:
	bool Start(const Napi::CallbackInfo &info);
	bool CheckOpen(Napi::Env env) const;
	/*
	 * Fills one batch within the budget and hands it to onBatch.  Returns
	 * the records delivered, or -1 with an exception pending (sync) or
	 * reported as uncaught (from the loop).  *more says the budget, not
	 * an empty ring, ended the batch.
	 */
	int64_t DrainOnce(bool from_loop, bool *more);
	void OnReadable(int status);
	enum class CloseReason { kUser, kFinalizer, kTeardown };
	void Close(CloseReason why);

	static void OnPoll(uv_poll_t *handle, int status, int events);
	static void OnEnvTeardown(napi_async_cleanup_hook_handle handle, void *arg);

	Napi::Value Consume(const Napi::CallbackInfo &info);
	Napi::Value DoRef(const Napi::CallbackInfo &info);
	Napi::Value DoUnref(const Napi::CallbackInfo &info);
	Napi::Value DoPause(const Napi::CallbackInfo &info);
	Napi::Value DoResume(const Napi::CallbackInfo &info);
	Napi::Value DoClose(const Napi::CallbackInfo &info);
	Napi::Value GetStats(const Napi::CallbackInfo &info);

	RingState *state_ = nullptr;
	Napi::FunctionReference on_batch_;
	std::unique_ptr<Napi::AsyncContext> async_context_;
	bool self_ref_ = false;
	uint64_t batches_ = 0;
	uint64_t records_ = 0;
};

Napi::Function RingBufferWrap::Define(Napi::Env env)
{
	return DefineClass(env, "RingBuffer", {
		InstanceMethod<&RingBufferWrap::Consume>("consume"),
		InstanceMethod<&RingBufferWrap::DoRef>("ref"),
		InstanceMethod<&RingBufferWrap::DoUnref>("unref"),
		InstanceMethod<&RingBufferWrap::DoPause>("pause"),
		InstanceMethod<&RingBufferWrap::DoResume>("resume"),
		InstanceMethod<&RingBufferWrap::DoClose>("close"),
		InstanceAccessor<&RingBufferWrap::GetStats>("stats"),
	});
}

/* new RingBuffer(maps, { maxRecordsPerTick, batchBytes }, onBatch) */
RingBufferWrap::RingBufferWrap(const Napi::CallbackInfo &info) : Napi::ObjectWrap<RingBufferWrap>(info)
{
	Napi::Env env = info.Env();

	info.This().As<Napi::Object>().TypeTag(&kRingBufferTag);
	if (!Start(info)) {
		Close(CloseReason::kUser);
		return;
	}
	/* While polling, the wrapper must not be collected: JS may hold no reference. */
	Ref();
	self_ref_ = true;
	async_context_ = std::make_unique<Napi::AsyncContext>(env, "krsi:RingBuffer");
}

bool RingBufferWrap::Start(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	uint64_t max_records, batch_bytes;
	LibbpfCall call;

	if (!info[0].IsArray() || info[0].As<Napi::Array>().Length() == 0) {
		ThrowTypeError(env, "maps must be a non-empty array of ringbuf BpfMaps");
		return false;
	}
	Napi::Object opts = info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
	if (!info[1].IsObject() && !info[1].IsUndefined()) {
		ThrowTypeError(env, "options must be an object");
		return false;
	}
	if (!GetOptionalUint(opts.Get("maxRecordsPerTick"), "maxRecordsPerTick", kDefaultMaxRecords,
			     &max_records) ||
	    !GetOptionalUint(opts.Get("batchBytes"), "batchBytes", kDefaultBatchBytes, &batch_bytes))
		return false;
	if (max_records < 1 || max_records > UINT32_MAX || batch_bytes < 16 || batch_bytes > (1u << 30)) {
		ThrowTypeError(env, "maxRecordsPerTick must be 1..2^32-1 and batchBytes 16..2^30");
		return false;
	}
	if (!info[2].IsFunction()) {
		ThrowTypeError(env, "onBatch must be a function");
		return false;
	}
	on_batch_ = Napi::Persistent(info[2].As<Napi::Function>());

	Napi::Array maps = info[0].As<Napi::Array>();
	uint32_t n = maps.Length();
	RingState *st = new RingState();
	state_ = st;
	st->max_records = static_cast<uint32_t>(max_records);
	st->batch_bytes = batch_bytes;
	st->batch.resize(batch_bytes + 4096);
	st->slots.reserve(n);	/* slots are libbpf ctx pointers: no reallocation */
	st->wrap = this;

	st->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (st->epoll_fd < 0) {
		ThrowErrno(env, "epoll_create1", errno, "");
		return false;
	}
	for (uint32_t i = 0; i < n; i++) {
		int fd = MapFdForRingBuffer(maps.Get(i), i);
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
			ThrowErrno(env, "ring_buffer__new", errno, "maps[" + std::to_string(i) + "]");
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
			ThrowErrno(env, "epoll_ctl", errno, "maps[" + std::to_string(i) + "]");
			return false;
		}
	}

	uv_loop_t *loop = nullptr;
	if (napi_get_uv_event_loop(env, &loop) != napi_ok || !loop) {
		ThrowError(env, "RingBuffer: no event loop for this environment");
		return false;
	}
	int err = uv_poll_init(loop, &st->poll, st->epoll_fd);
	if (err) {
		ThrowErrno(env, "uv_poll_init", err, "");
		return false;
	}
	st->poll.data = st;
	st->poll_initialized = true;
	err = uv_poll_start(&st->poll, UV_READABLE, OnPoll);
	if (err) {
		ThrowErrno(env, "uv_poll_start", err, "");
		return false;
	}
	if (napi_add_async_cleanup_hook(env, OnEnvTeardown, this, &st->cleanup) != napi_ok) {
		st->cleanup = nullptr;
		ThrowError(env, "RingBuffer: napi_add_async_cleanup_hook failed");
		return false;
	}
	return true;
}

RingBufferWrap::~RingBufferWrap()
{
	Close(CloseReason::kFinalizer);
}

bool RingBufferWrap::CheckOpen(Napi::Env env) const
{
	if (state_)
		return true;
	ThrowClosed(env, "RingBuffer");
	return false;
}

/*
 * Stops polling now; the handle closes on the loop, then the state is
 * freed.  Safe from onBatch itself: callers re-check state_ after JS runs.
 */
void RingBufferWrap::Close(CloseReason why)
{
	RingState *st = state_;

	if (!st)
		return;
	state_ = nullptr;
	st->wrap = nullptr;
	/* At teardown the hook stays until OnPollClosed: node waits for it. */
	if (st->cleanup && why != CloseReason::kTeardown) {
		napi_remove_async_cleanup_hook(st->cleanup);
		st->cleanup = nullptr;
	}
	if (st->poll_initialized) {
		uv_poll_stop(&st->poll);
		uv_close(reinterpret_cast<uv_handle_t *>(&st->poll), OnPollClosed);
	} else {
		FreeState(st);
	}
	if (self_ref_ && why != CloseReason::kFinalizer) {
		self_ref_ = false;
		Unref();
	}
}

/* The environment is going away (worker exit) with the ring still open. */
void RingBufferWrap::OnEnvTeardown(napi_async_cleanup_hook_handle handle, void *arg)
{
	RingBufferWrap *self = static_cast<RingBufferWrap *>(arg);

	self->state_->cleanup = handle;
	self->Close(CloseReason::kTeardown);
}

int64_t RingBufferWrap::DrainOnce(bool from_loop, bool *more)
{
	Napi::Env env = Env();
	RingState *st = state_;
	size_t n = st->rings.size();
	size_t start = st->next_ring;

	*more = false;
	st->used = 0;
	st->count = 0;
	{
		LibbpfCall call;

		for (size_t k = 0; k < n; k++) {
			size_t i = (start + k) % n;
			int ret = ring_buffer__consume(st->rings[i]);
			if (ret == kBudgetExhausted) {
				/* Next batch starts with the next ring: no ring starves another. */
				st->next_ring = (i + 1) % n;
				*more = true;
				break;
			}
			if (ret < 0) {
				Napi::Value err = MakeErrno(env, "ring_buffer__consume", ret,
							    "maps[" + std::to_string(i) + "]");
				if (from_loop)
					napi_fatal_exception(env, err);
				else
					Napi::Error(env, err).ThrowAsJavaScriptException();
				return -1;
			}
		}
		if (!*more)
			st->next_ring = (start + 1) % n;
	}

	uint32_t count = st->count;
	if (count == 0)
		return 0;
	/* A fresh Buffer per batch: JS may keep it as long as it likes. */
	Napi::Buffer<uint8_t> batch = Napi::Buffer<uint8_t>::Copy(env, st->batch.data(), st->used);
	batches_++;
	records_ += count;
	Napi::Value args[] = {batch, Napi::Number::New(env, count)};

	if (from_loop) {
		on_batch_.MakeCallback(Value(), {args[0], args[1]}, *async_context_);
		if (env.IsExceptionPending()) {
			Napi::Error e = env.GetAndClearPendingException();
			napi_fatal_exception(env, e.Value());
			return -1;
		}
	} else {
		on_batch_.Call(Value(), {args[0], args[1]});
		if (env.IsExceptionPending())
			return -1;
	}
	return count;
}

void RingBufferWrap::OnPoll(uv_poll_t *handle, int status, int)
{
	RingState *st = static_cast<RingState *>(handle->data);

	if (st->wrap)
		st->wrap->OnReadable(status);
}

void RingBufferWrap::OnReadable(int status)
{
	Napi::Env env = Env();
	Napi::HandleScope scope(env);
	bool more;

	if (status < 0) {
		Napi::Value err = MakeErrno(env, "uv_poll", status, "RingBuffer");
		Close(CloseReason::kUser);
		napi_fatal_exception(env, err);
		return;
	}
	/* One batch per loop turn; the fd stays readable if more is left. */
	DrainOnce(true, &more);
}

/*
 * Drains synchronously, batch by batch through onBatch.  Bounded by what
 * the rings can hold, so a producer faster than us cannot keep it going.
 */
Napi::Value RingBufferWrap::Consume(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	int64_t total = 0;
	bool more = true;

	if (!CheckOpen(env))
		return env.Undefined();
	/* The smallest record (8-byte header, 8 bytes of data) is 16 bytes. */
	uint64_t max_batches = state_->capacity / 16 / state_->max_records + 2;

	for (uint64_t b = 0; more && state_ && b < max_batches; b++) {
		int64_t got = DrainOnce(false, &more);
		if (got < 0)
			return env.Undefined();
		total += got;
	}
	return Napi::Number::New(env, static_cast<double>(total));
}

Napi::Value RingBufferWrap::DoRef(const Napi::CallbackInfo &info)
{
	if (!CheckOpen(info.Env()))
		return info.Env().Undefined();
	uv_ref(reinterpret_cast<uv_handle_t *>(&state_->poll));
	return info.Env().Undefined();
}

Napi::Value RingBufferWrap::DoUnref(const Napi::CallbackInfo &info)
{
	if (!CheckOpen(info.Env()))
		return info.Env().Undefined();
	uv_unref(reinterpret_cast<uv_handle_t *>(&state_->poll));
	return info.Env().Undefined();
}

/*
 * Stops and restarts watching the rings: a consumer that paces itself (a
 * budget of records per second) leaves the rest in the kernel's ring, where
 * a full ring drops and counts, rather than spend more CPU.
 */
Napi::Value RingBufferWrap::DoPause(const Napi::CallbackInfo &info)
{
	if (!CheckOpen(info.Env()))
		return info.Env().Undefined();
	uv_poll_stop(&state_->poll);
	return info.Env().Undefined();
}

Napi::Value RingBufferWrap::DoResume(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();

	if (!CheckOpen(env))
		return env.Undefined();
	int err = uv_poll_start(&state_->poll, UV_READABLE, OnPoll);
	if (err)
		ThrowErrno(env, "uv_poll_start", err, "");
	return env.Undefined();
}

Napi::Value RingBufferWrap::DoClose(const Napi::CallbackInfo &info)
{
	Close(CloseReason::kUser);
	return info.Env().Undefined();
}

Napi::Value RingBufferWrap::GetStats(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	Napi::Object out = Napi::Object::New(env);

	out.Set("batches", Napi::Number::New(env, static_cast<double>(batches_)));
	out.Set("records", Napi::Number::New(env, static_cast<double>(records_)));
	return out;
}

} /* namespace */

Napi::Function DefineRingBuffer(Napi::Env env)
{
	return RingBufferWrap::Define(env);
}

} /* namespace krsi */

// SPDX-License-Identifier: GPL-2.0
/*
 * BatchReader: what RingBuffer (ringbuf.cc) and PerfBuffer (perfbuf.cc)
 * share.  Each watches one epoll fd (of ours, or libbpf's) with a uv_poll_t
 * on the environment's own loop (a worker's loop in a worker); when it is
 * readable the reader fills one batch (batch.h) within the per-tick budget
 * and JS gets it in a single onBatch call.  What the budget leaves waits
 * for the next loop turn, after timers, I/O and setImmediate callbacks: the
 * event loop is never starved however fast BPF writes.
 *
 * A reader whose fd stays readable while data is left (a ring buffer's)
 * comes back through the poll; one whose fd reports a wakeup only once (a
 * perf event's) sets kRearm, and a zero timer brings it back instead.
 *
 * The native state outlives the JS wrapper's close(): the uv handles close
 * asynchronously and the state is freed when the last has.  What it reads
 * from is released at close() itself (ReaderState::Release).
 *
 * Derived classes provide:
 *   static constexpr const char *kNoun;          "RingBuffer"
 *   static constexpr const napi_type_tag *Tag();
 *   static constexpr bool kRearm;
 *   bool Start(const Napi::CallbackInfo &info);  creates the state,
 *       Adopt()s it and calls Watch(); false with an exception pending
 *   bool Fill(bool from_loop, bool *more);       fills state_->batch;
 *       false after ReportError()
 *   void Commit();                               gives the source back what
 *       the batch took, once JS has had it (after onBatch returns)
 *   uint64_t MaxBatches() const;                 bounds consume()
 *   void AddStats(Napi::Object out) const;
 */
#ifndef KRSI_NATIVE_READER_H
#define KRSI_NATIVE_READER_H

#include "batch.h"

#include <memory>

namespace krsi {

struct ReaderState {
	uv_poll_t poll;
	uv_timer_t again;		/* kRearm: drains what the budget left */
	int open_handles = 0;
	RecordBatch batch;
	void *reader = nullptr;		/* the BatchReader; null once closed */
	napi_async_cleanup_hook_handle cleanup = nullptr;

	virtual ~ReaderState() = default;
	/* Frees what is read from (libbpf's objects, fds); called once. */
	virtual void Release() {}
};

template <typename Derived>
class BatchReader : public Napi::ObjectWrap<Derived> {
public:
	static Napi::Function Define(Napi::Env env)
	{
		using W = Napi::ObjectWrap<Derived>;

		return W::DefineClass(env, Derived::kNoun, {
			W::InstanceMethod("consume", &BatchReader::Consume),
			W::InstanceMethod("ref", &BatchReader::DoRef),
			W::InstanceMethod("unref", &BatchReader::DoUnref),
			W::InstanceMethod("pause", &BatchReader::DoPause),
			W::InstanceMethod("resume", &BatchReader::DoResume),
			W::InstanceMethod("close", &BatchReader::DoClose),
			W::InstanceAccessor("stats", &BatchReader::GetStats, nullptr),
		});
	}

	explicit BatchReader(const Napi::CallbackInfo &info) : Napi::ObjectWrap<Derived>(info)
	{
		info.This().template As<Napi::Object>().TypeTag(Derived::Tag());
	}

	~BatchReader() override { Close(CloseReason::kFinalizer); }

protected:
	/* The derived constructor's last step: Start() and what follows it. */
	void Begin(const Napi::CallbackInfo &info)
	{
		Napi::Env env = info.Env();

		if (!self().Start(info)) {
			Close(CloseReason::kUser);
			return;
		}
		/* While polling, the wrapper must not be collected: JS may hold no reference. */
		this->Ref();
		self_ref_ = true;
		async_context_ = std::make_unique<Napi::AsyncContext>(env, (std::string("krsi:") + Derived::kNoun).c_str());
	}

	/* onBatch from info[2]; false with a TypeError pending. */
	bool TakeOnBatch(const Napi::CallbackInfo &info)
	{
		if (!info[2].IsFunction()) {
			ThrowTypeError(info.Env(), "onBatch must be a function");
			return false;
		}
		on_batch_ = Napi::Persistent(info[2].As<Napi::Function>());
		return true;
	}

	/* Takes st over: Close() frees it from now on, whatever happens next. */
	void Adopt(ReaderState *st)
	{
		state_ = st;
		st->reader = this;
	}

	/* Starts watching fd for the adopted state. */
	bool Watch(Napi::Env env, int fd)
	{
		ReaderState *st = state_;
		uv_loop_t *loop = nullptr;

		if (napi_get_uv_event_loop(env, &loop) != napi_ok || !loop) {
			ThrowError(env, std::string(Derived::kNoun) + ": no event loop for this environment");
			return false;
		}
		int err = uv_poll_init(loop, &st->poll, fd);
		if (err) {
			ThrowErrno(env, "uv_poll_init", err, "");
			return false;
		}
		st->poll.data = st;
		uv_timer_init(loop, &st->again);
		st->again.data = st;
		st->open_handles = 2;
		err = uv_poll_start(&st->poll, UV_READABLE, OnPoll);
		if (err) {
			ThrowErrno(env, "uv_poll_start", err, "");
			return false;
		}
		/*
		 * libuv adds fd to its own set on its next turn; a wakeup-once fd
		 * may have spent its wakeup on records already there by then.
		 */
		if (Derived::kRearm)
			uv_timer_start(&st->again, OnAgain, 0, 0);
		if (napi_add_async_cleanup_hook(env, OnEnvTeardown, this, &st->cleanup) != napi_ok) {
			st->cleanup = nullptr;
			ThrowError(env, std::string(Derived::kNoun) + ": napi_add_async_cleanup_hook failed");
			return false;
		}
		return true;
	}

	/* An error of Fill(): thrown (consume()) or uncaught (from the loop). */
	void ReportError(bool from_loop, Napi::Value err)
	{
		if (from_loop)
			napi_fatal_exception(this->Env(), err);
		else
			Napi::Error(this->Env(), err).ThrowAsJavaScriptException();
	}

	ReaderState *state_ = nullptr;

private:
	enum class CloseReason { kUser, kFinalizer, kTeardown };

	Derived &self() { return *static_cast<Derived *>(this); }

	static void OnHandleClosed(uv_handle_t *handle)
	{
		ReaderState *st = static_cast<ReaderState *>(handle->data);

		if (--st->open_handles > 0)
			return;
		napi_async_cleanup_hook_handle cleanup = st->cleanup;
		delete st;
		/* Environment teardown waits for this. */
		if (cleanup)
			napi_remove_async_cleanup_hook(cleanup);
	}

	/* Stops now; safe from onBatch itself: callers re-check state_ after JS runs. */
	void Close(CloseReason why)
	{
		ReaderState *st = state_;

		if (!st)
			return;
		state_ = nullptr;
		st->reader = nullptr;
		/* At teardown the hook stays until the handles have closed: node waits for it. */
		if (st->cleanup && why != CloseReason::kTeardown) {
			napi_remove_async_cleanup_hook(st->cleanup);
			st->cleanup = nullptr;
		}
		if (st->open_handles > 0) {
			/* uv_close() takes the fd out of libuv's set before it returns. */
			uv_close(reinterpret_cast<uv_handle_t *>(&st->poll), OnHandleClosed);
			uv_close(reinterpret_cast<uv_handle_t *>(&st->again), OnHandleClosed);
		}
		st->Release();
		if (st->open_handles == 0)
			delete st;
		if (self_ref_ && why != CloseReason::kFinalizer) {
			self_ref_ = false;
			this->Unref();
		}
	}

	/* The environment is going away (worker exit) with the reader still open. */
	static void OnEnvTeardown(napi_async_cleanup_hook_handle handle, void *arg)
	{
		BatchReader *self = static_cast<BatchReader *>(arg);

		self->state_->cleanup = handle;
		self->Close(CloseReason::kTeardown);
	}

	/* Records delivered, or -1 with an exception pending or reported. */
	int64_t DrainOnce(bool from_loop, bool *more)
	{
		*more = false;
		state_->batch.Reset();
		if (!self().Fill(from_loop, more))
			return -1;
		uint32_t count = state_->batch.count;
		if (count == 0)
			return 0;
		batches_++;
		records_ += count;
		bool delivered = DeliverBatch(this->Env(), this->Value(), on_batch_, *async_context_, state_->batch, from_loop);
		/* JS has had the batch, even if it threw; closed from onBatch, Release() did this. */
		if (state_)
			self().Commit();
		if (!delivered)
			return -1;
		return count;
	}

	static void OnPoll(uv_poll_t *handle, int status, int)
	{
		ReaderState *st = static_cast<ReaderState *>(handle->data);

		if (st->reader)
			static_cast<BatchReader *>(st->reader)->Drain(status);
	}

	static void OnAgain(uv_timer_t *handle)
	{
		ReaderState *st = static_cast<ReaderState *>(handle->data);

		if (st->reader)
			static_cast<BatchReader *>(st->reader)->Drain(0);
	}

	/* One batch per loop turn. */
	void Drain(int status)
	{
		Napi::Env env = this->Env();
		Napi::HandleScope scope(env);
		bool more;

		if (status < 0) {
			Napi::Value err = MakeErrno(env, "uv_poll", status, Derived::kNoun);
			Close(CloseReason::kUser);
			napi_fatal_exception(env, err);
			return;
		}
		if (DrainOnce(true, &more) < 0 || !state_)
			return;
		if (Derived::kRearm && more && !paused_)
			uv_timer_start(&state_->again, OnAgain, 0, 0);
	}

	bool CheckOpen(Napi::Env env) const
	{
		if (state_)
			return true;
		ThrowClosed(env, Derived::kNoun);
		return false;
	}

	/*
	 * Drains synchronously, batch by batch through onBatch.  Bounded by
	 * what the buffers can hold, so a producer faster than us cannot keep
	 * it going.
	 */
	Napi::Value Consume(const Napi::CallbackInfo &info)
	{
		Napi::Env env = info.Env();
		int64_t total = 0;
		bool more = true;

		if (!CheckOpen(env))
			return env.Undefined();
		uint64_t max_batches = self().MaxBatches();
		for (uint64_t b = 0; more && state_ && b < max_batches; b++) {
			int64_t got = DrainOnce(false, &more);
			if (got < 0)
				return env.Undefined();
			total += got;
		}
		return Napi::Number::New(env, static_cast<double>(total));
	}

	Napi::Value DoRef(const Napi::CallbackInfo &info)
	{
		if (CheckOpen(info.Env())) {
			uv_ref(reinterpret_cast<uv_handle_t *>(&state_->poll));
			uv_ref(reinterpret_cast<uv_handle_t *>(&state_->again));
		}
		return info.Env().Undefined();
	}

	Napi::Value DoUnref(const Napi::CallbackInfo &info)
	{
		if (CheckOpen(info.Env())) {
			uv_unref(reinterpret_cast<uv_handle_t *>(&state_->poll));
			uv_unref(reinterpret_cast<uv_handle_t *>(&state_->again));
		}
		return info.Env().Undefined();
	}

	/*
	 * Stops and restarts watching: a consumer that paces itself (a budget
	 * of records per second) leaves the rest in the kernel's buffers, where
	 * a full one drops and counts, rather than spend more CPU.
	 */
	Napi::Value DoPause(const Napi::CallbackInfo &info)
	{
		if (CheckOpen(info.Env())) {
			uv_poll_stop(&state_->poll);
			uv_timer_stop(&state_->again);
			paused_ = true;
		}
		return info.Env().Undefined();
	}

	/* A wakeup-once reader looks at once: wakeups while paused are not replayed. */
	Napi::Value DoResume(const Napi::CallbackInfo &info)
	{
		Napi::Env env = info.Env();

		if (!CheckOpen(env))
			return env.Undefined();
		int err = uv_poll_start(&state_->poll, UV_READABLE, OnPoll);
		if (err) {
			ThrowErrno(env, "uv_poll_start", err, "");
			return env.Undefined();
		}
		paused_ = false;
		if (Derived::kRearm)
			uv_timer_start(&state_->again, OnAgain, 0, 0);
		return env.Undefined();
	}

	Napi::Value DoClose(const Napi::CallbackInfo &info)
	{
		Close(CloseReason::kUser);
		return info.Env().Undefined();
	}

	/* Counters survive close(). */
	Napi::Value GetStats(const Napi::CallbackInfo &info)
	{
		Napi::Env env = info.Env();
		Napi::Object out = Napi::Object::New(env);

		out.Set("batches", Napi::Number::New(env, static_cast<double>(batches_)));
		out.Set("records", Napi::Number::New(env, static_cast<double>(records_)));
		self().AddStats(out);
		return out;
	}

	Napi::FunctionReference on_batch_;
	std::unique_ptr<Napi::AsyncContext> async_context_;
	bool self_ref_ = false;
	bool paused_ = false;
	uint64_t batches_ = 0;
	uint64_t records_ = 0;
};

} /* namespace krsi */

#endif /* KRSI_NATIVE_READER_H */

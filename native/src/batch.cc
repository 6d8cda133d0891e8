// SPDX-License-Identifier: GPL-2.0
/* Record batches shared by the ring and perf buffer readers: see batch.h. */
#include "batch.h"

#include "events.h"

#include <algorithm>
#include <cstring>

namespace krsi {

namespace {

constexpr size_t kRecordHeader = 8;

/* Bytes of a sample that hold data: see the layout comment in batch.h. */
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

} /* namespace */

void RecordBatch::Append(const void *data, size_t size, uint32_t tag)
{
	size_t len = PayloadLength(data, size);
	size_t padded = (len + 7) & ~static_cast<size_t>(7);
	size_t need = kRecordHeader + padded;

	if (used + need > buf.size())
		buf.resize(std::max(buf.size() * 2, used + need));

	uint8_t *rec = buf.data() + used;
	uint32_t head[2] = {static_cast<uint32_t>(len), tag};
	memcpy(rec, head, sizeof(head));
	memcpy(rec + kRecordHeader, data, len);
	memset(rec + kRecordHeader + len, 0, padded - len);
	used += need;
	count++;
}

bool ParseBatchOptions(Napi::Env env, const Napi::Value &v, RecordBatch *batch)
{
	uint64_t max_records, batch_bytes;

	if (!v.IsObject() && !v.IsUndefined()) {
		ThrowTypeError(env, "options must be an object");
		return false;
	}
	Napi::Object opts = v.IsObject() ? v.As<Napi::Object>() : Napi::Object::New(env);
	if (!GetOptionalUint(opts.Get("maxRecordsPerTick"), "maxRecordsPerTick", kDefaultMaxRecords,
			     &max_records) ||
	    !GetOptionalUint(opts.Get("batchBytes"), "batchBytes", kDefaultBatchBytes, &batch_bytes))
		return false;
	if (max_records < 1 || max_records > UINT32_MAX || batch_bytes < 16 || batch_bytes > (1u << 30)) {
		ThrowTypeError(env, "maxRecordsPerTick must be 1..2^32-1 and batchBytes 16..2^30");
		return false;
	}
	batch->max_records = static_cast<uint32_t>(max_records);
	batch->batch_bytes = batch_bytes;
	batch->buf.resize(batch_bytes + 4096);
	return true;
}

bool DeliverBatch(Napi::Env env, Napi::Value self, const Napi::FunctionReference &on_batch,
		  const Napi::AsyncContext &context, const RecordBatch &batch, bool from_loop)
{
	/* A fresh Buffer per batch: JS may keep it as long as it likes. */
	Napi::Buffer<uint8_t> buf = Napi::Buffer<uint8_t>::Copy(env, batch.buf.data(), batch.used);
	Napi::Value count = Napi::Number::New(env, batch.count);

	if (from_loop) {
		on_batch.MakeCallback(self, {buf, count}, context);
		if (env.IsExceptionPending()) {
			Napi::Error e = env.GetAndClearPendingException();
			napi_fatal_exception(env, e.Value());
			return false;
		}
		return true;
	}
	on_batch.Call(self, {buf, count});
	return !env.IsExceptionPending();
}

} /* namespace krsi */

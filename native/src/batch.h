// SPDX-License-Identifier: GPL-2.0
/*
 * Batches of records handed to JS by the ring buffer and perf buffer
 * readers (ringbuf.cc, perfbuf.cc): one JS call per batch, not per record,
 * and a budget per batch so that one event-loop turn stays bounded.
 *
 * Batch layout, repeated count times:
 *   u32 length | u32 tag | payload[length] | zeros to an 8-byte boundary
 * where tag is the ring's index (ring buffer) or the CPU (perf buffer), and
 * length is hdr.size for records that start with a plausible
 * struct krsi_event_header (the bytes that hold data) and the sample size
 * otherwise: perf pads raw samples to 8 bytes minus 4, ring buffers to 8.
 */
#ifndef KRSI_NATIVE_BATCH_H
#define KRSI_NATIVE_BATCH_H

#include "common.h"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace krsi {

constexpr uint64_t kDefaultMaxRecords = 4096;
constexpr uint64_t kDefaultBatchBytes = 1 << 20;

struct RecordBatch {
	std::vector<uint8_t> buf;
	size_t used = 0;
	uint32_t count = 0;
	/* The budget of one batch. */
	uint32_t max_records = kDefaultMaxRecords;
	size_t batch_bytes = kDefaultBatchBytes;

	void Reset()
	{
		used = 0;
		count = 0;
	}
	/*
	 * Copies one sample in.  Never refuses one: a record larger than what
	 * is left grows the buffer, so batchBytes is exceeded by at most the
	 * records appended after Full() became true.
	 */
	void Append(const void *data, size_t size, uint32_t tag);
	bool Full() const { return count >= max_records || used >= batch_bytes; }
};

/*
 * Reads { maxRecordsPerTick, batchBytes } from opts (an object or
 * undefined) into batch and sizes its buffer; throws a TypeError otherwise.
 */
bool ParseBatchOptions(Napi::Env env, const Napi::Value &opts, RecordBatch *batch);

/*
 * Calls onBatch(Buffer, count) with a copy of the batch (JS may keep it).
 * From the loop (from_loop) it goes through MakeCallback and an exception is
 * reported as uncaught; otherwise it stays pending for the caller.  Returns
 * false if onBatch threw.
 */
bool DeliverBatch(Napi::Env env, Napi::Value self, const Napi::FunctionReference &on_batch,
		  const Napi::AsyncContext &context, const RecordBatch &batch, bool from_loop);

} /* namespace krsi */

#endif /* KRSI_NATIVE_BATCH_H */

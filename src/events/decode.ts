// Ring buffer batches into events. The native consumer hands over one Buffer
// per batch holding `count` records, each laid out as
//   u32 length | u32 ring index | payload | zero padding to 8 bytes.
// Each payload starts with struct krsi_event_header; its type selects the
// decoder, which its hook family declares (src/families/).
import { KRSI_ABI_VERSION, KrsiEventHeaderLayout, decodeKrsiEventHeader } from '../abi/generated.js';
import { RECORD_DECODERS } from '../families/index.js';
import type { EventClock } from './clock.js';
import type { PolicyNames } from './policy-outcome.js';
import type { KrsiEvent } from './schema.js';

/** What decoders need besides the record: the clock, and the policies' names. */
export interface DecodeContext {
  clock: EventClock;
  names: PolicyNames;
}

export interface RawRecord {
  ring: number;
  view: DataView;
}

/** Splits a native batch into its records, checking every length against the batch. */
export function* splitBatch(batch: Uint8Array, count: number): Generator<RawRecord> {
  const view = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
  let off = 0;
  for (let i = 0; i < count; i++) {
    if (off + 8 > view.byteLength) throw new RangeError(`batch ends inside record ${i} of ${count}`);
    const length = view.getUint32(off, true);
    const ring = view.getUint32(off + 4, true);
    if (off + 8 + length > view.byteLength) throw new RangeError(`record ${i} overruns its batch`);
    yield { ring, view: new DataView(batch.buffer, batch.byteOffset + off + 8, length) };
    off += 8 + ((length + 7) & ~7);
  }
}

export class UnknownRecordError extends Error {}

export function decodeRecord(view: DataView, ctx: DecodeContext): KrsiEvent {
  if (view.byteLength < KrsiEventHeaderLayout.size) throw new UnknownRecordError(`record of ${view.byteLength} bytes is shorter than its header`);
  const hdr = decodeKrsiEventHeader(view);
  if (hdr.abi !== KRSI_ABI_VERSION) {
    throw new UnknownRecordError(`record ABI ${hdr.abi} differs from the agent's ${KRSI_ABI_VERSION}: rebuild the BPF objects and the agent together`);
  }
  const decode = RECORD_DECODERS.get(hdr.type);
  if (!decode) throw new UnknownRecordError(`unknown record type ${hdr.type}`);
  return decode(view, ctx) as KrsiEvent;
}

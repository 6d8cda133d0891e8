// bpf records (struct krsi_bpf_event) into bpf events: a BPF program load.
import { z } from 'zod';
import { decodeKrsiBpfEvent } from '../abi/generated.js';
import { progTypeName } from '../policy/bpf-prog-types.js';
import type { DecodeContext } from './decode.js';
import { decodeHookHead, textField } from './hook-common.js';
import { base64, hookEventSchema, u32 } from './event-parts.js';

export function decodeBpfRecord(view: DataView, ctx: DecodeContext): BpfEvent {
  const raw = decodeKrsiBpfEvent(view);
  return {
    ...decodeHookHead('bpf', raw, ctx),
    bpf: {
      command: 'prog_load',
      prog_type: progTypeName(raw.progType),
      ...textField('prog_name', raw.progName),
      attach_type: raw.attachType,
      insn_count: raw.insnCnt,
      prog_flags: raw.progFlags,
      attach_btf_id: raw.attachBtfId,
    },
  };
}

// --- The events (docs/events.md) ---------------------------------------------

export const BpfEventSchema = hookEventSchema('bpf', {
  bpf: z
    .object({
      command: z.literal('prog_load'),
      prog_type: z.string().describe('the program type: kprobe, tracing, lsm, xdp, ... (type_N when unknown to krsi)'),
      prog_name: z.string().describe('the name the loader gave it (at most 15 bytes)'),
      prog_name_base64: base64.optional(),
      attach_type: u32.describe('expected_attach_type (enum bpf_attach_type)'),
      insn_count: u32,
      prog_flags: u32,
      attach_btf_id: u32,
    })
    .strict(),
});

export type BpfEvent = z.infer<typeof BpfEventSchema>;

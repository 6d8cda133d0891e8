// bpf records (struct krsi_bpf_event) into bpf events: a BPF program load.
import { decodeKrsiBpfEvent } from '../abi/generated.js';
import { progTypeName } from '../policy/bpf-prog-types.js';
import type { DecodeContext } from './decode.js';
import { decodeHookHead, textField } from './hook-common.js';
import type { BpfEvent } from './schema.js';

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

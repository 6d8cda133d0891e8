// Tamper records (struct krsi_tamper_event): an attempt on the agent that
// self-protection denied.
import {
  KRSI_TAMPER_BPF_LINK,
  KRSI_TAMPER_BPF_LOAD,
  KRSI_TAMPER_BPF_MAP,
  KRSI_TAMPER_BPF_PIN,
  KRSI_TAMPER_BPF_PROG,
  KRSI_TAMPER_PIN_REMOVE,
  KRSI_TAMPER_PTRACE,
  KRSI_TAMPER_SIGNAL,
  KRSI_TAMPER_UMOUNT,
  decodeKrsiTamperEvent,
} from '../abi/generated.js';
import { isoNs } from './clock.js';
import type { DecodeContext } from './decode.js';
import { decodeProcess } from './exec.js';
import { SCHEMA_VERSION, type TamperEvent } from './schema.js';

export const TAMPER_ATTEMPTS = {
  [KRSI_TAMPER_SIGNAL]: 'signal',
  [KRSI_TAMPER_PTRACE]: 'ptrace',
  [KRSI_TAMPER_BPF_MAP]: 'bpf_map_fd',
  [KRSI_TAMPER_BPF_PROG]: 'bpf_prog_fd',
  [KRSI_TAMPER_BPF_LINK]: 'bpf_link_fd',
  [KRSI_TAMPER_BPF_PIN]: 'bpf_pin_open',
  [KRSI_TAMPER_BPF_LOAD]: 'bpf_prog_load',
  [KRSI_TAMPER_PIN_REMOVE]: 'pin_remove',
  [KRSI_TAMPER_UMOUNT]: 'bpffs_umount',
} as const satisfies Record<number, string>;

export type TamperAttempt = (typeof TAMPER_ATTEMPTS)[keyof typeof TAMPER_ATTEMPTS];

export function decodeTamperRecord(view: DataView, ctx: DecodeContext): TamperEvent {
  const raw = decodeKrsiTamperEvent(view);
  const attempt = (TAMPER_ATTEMPTS as Record<number, TamperAttempt>)[raw.what];
  if (!attempt) throw new RangeError(`unknown tamper attempt ${raw.what}`);
  return {
    schema: SCHEMA_VERSION,
    kind: 'tamper',
    time: isoNs(ctx.clock.wallNs(raw.hdr.timeNs)),
    decision: 'denied',
    attempt,
    detail: raw.detail,
    target: raw.target.toString(),
    process: decodeProcess(raw.task),
  };
}

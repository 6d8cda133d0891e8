// Tamper records (struct krsi_tamper_event): an attempt on the agent that
// self-protection denied.
import { z } from 'zod';
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
import { ProcessSchema, SCHEMA_VERSION, u32, u64String } from './event-parts.js';

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

// --- The events (docs/events.md) ---------------------------------------------

export const TamperEventSchema = z
  .object({
    schema: z.literal(SCHEMA_VERSION),
    kind: z.literal('tamper'),
    time: z.string(),
    decision: z.literal('denied'),
    attempt: z
      .enum(['signal', 'ptrace', 'bpf_map_fd', 'bpf_prog_fd', 'bpf_link_fd', 'bpf_pin_open', 'bpf_prog_load', 'pin_remove', 'bpffs_umount'])
      .describe('what was tried against the agent'),
    detail: u32.describe('the signal, the bpf command or program type, the ptrace mode'),
    target: u64String.describe("the agent's pid, the object id, or the pin's inode"),
    process: ProcessSchema.describe('who tried'),
  })
  .strict();

export type TamperEvent = z.infer<typeof TamperEventSchema>;

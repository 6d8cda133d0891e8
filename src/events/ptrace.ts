// ptrace records (struct krsi_ptrace_event) into ptrace events: who tried to
// take control of whom.
import { z } from 'zod';
import { KRSI_PTRACE_TARGET_PATH_UNRESOLVED, KRSI_PTRACE_TRACEME, decodeKrsiPtraceEvent } from '../abi/generated.js';
import type { DecodeContext } from './decode.js';
import { formatDevice, fromKernelDev } from './devices.js';
import { decodeProcess } from './exec.js';
import { decodeHookHead, regions, textField } from './hook-common.js';
import { ProcessSchema, base64, device, hookEventSchema, u64String } from './event-parts.js';

// PTRACE_MODE_* bits of ptrace_access_check.
const MODE_BITS: ReadonlyArray<[number, string]> = [
  [0x01, 'read'],
  [0x02, 'attach'],
  [0x04, 'noaudit'],
  [0x08, 'fscreds'],
  [0x10, 'realcreds'],
];

export function ptraceModeNames(mode: number): string[] {
  return MODE_BITS.filter(([bit]) => mode & bit).map(([, name]) => name);
}

export function decodePtraceRecord(view: DataView, ctx: DecodeContext): PtraceEvent {
  const raw = decodeKrsiPtraceEvent(view);
  const [path] = regions(raw.data, [raw.pathLen]) as [Uint8Array];
  const unresolved = (raw.flags & KRSI_PTRACE_TARGET_PATH_UNRESOLVED) !== 0 || raw.pathLen === 0;
  return {
    ...decodeHookHead('ptrace', raw, ctx),
    ptrace: {
      request: raw.request === KRSI_PTRACE_TRACEME ? 'traceme' : 'attach',
      mode: ptraceModeNames(raw.mode),
      target: {
        ...decodeProcess(raw.target),
        ...textField('exe', unresolved ? new Uint8Array() : path),
        exe_dev: formatDevice(fromKernelDev(raw.targetDev)),
        exe_ino: raw.targetIno.toString(),
      },
    },
  };
}

// --- The events (docs/events.md) ---------------------------------------------

export const PtraceEventSchema = hookEventSchema('ptrace', {
  ptrace: z
    .object({
      request: z.enum(['attach', 'traceme']).describe('attach: the process takes control of target (ptrace attach, /proc/PID/mem, process_vm_*); traceme: it asks its parent, target, to trace it'),
      mode: z.array(z.string()).describe('PTRACE_MODE_* of the access check: attach, fscreds, realcreds, ...; empty for traceme'),
      target: ProcessSchema.extend({
        exe: z.string().describe("full path of the target's executable; empty if unknown"),
        exe_base64: base64.optional(),
        exe_dev: device,
        exe_ino: u64String,
      })
        .strict()
        .describe('the other process'),
    })
    .strict(),
});

export type PtraceEvent = z.infer<typeof PtraceEventSchema>;

// mmap_exec records (struct krsi_mmap_event) into mmap_exec events: which
// program (the acting process's executable) mapped which file executable.
import { z } from 'zod';
import {
  KRSI_MMAP_EXE_UNRESOLVED,
  KRSI_MMAP_FROM_MPROTECT,
  KRSI_MMAP_HASH_MISSING,
  KRSI_MMAP_PATH_UNRESOLVED,
  KRSI_MMAP_SHA256_KNOWN,
  decodeKrsiMmapEvent,
} from '../abi/generated.js';
import type { DecodeContext } from './decode.js';
import { formatDevice, fromKernelDev } from './devices.js';
import { decodeHookHead, regions, textField } from './hook-common.js';
import { base64, device, hookEventSchema, u32, u64String } from './event-parts.js';

const PROT_BITS: ReadonlyArray<[number, 'read' | 'write' | 'exec']> = [
  [0x1, 'read'],
  [0x2, 'write'],
  [0x4, 'exec'],
];

export function protNames(prot: number): Array<'read' | 'write' | 'exec'> {
  return PROT_BITS.filter(([bit]) => prot & bit).map(([, name]) => name);
}

export function decodeMmapRecord(view: DataView, ctx: DecodeContext): MmapExecEvent {
  const raw = decodeKrsiMmapEvent(view);
  const [path, exe] = regions(raw.data, [raw.pathLen, raw.exePathLen]) as [Uint8Array, Uint8Array];
  const unresolved = (raw.flags & KRSI_MMAP_PATH_UNRESOLVED) !== 0 || raw.pathLen === 0;
  const exeUnresolved = (raw.flags & KRSI_MMAP_EXE_UNRESOLVED) !== 0 || raw.exePathLen === 0;
  return {
    ...decodeHookHead('mmap_exec', raw, ctx),
    library: {
      ...textField('path', unresolved ? new Uint8Array() : path),
      path_unresolved: unresolved,
      dev: formatDevice(fromKernelDev(raw.dev)),
      ino: raw.ino.toString(),
      sha256: (raw.flags & KRSI_MMAP_SHA256_KNOWN) !== 0 ? Buffer.from(raw.sha256).toString('hex') : null,
      ...((raw.flags & KRSI_MMAP_HASH_MISSING) !== 0 ? { hash_missing: true } : {}),
    },
    program: {
      ...textField('path', exeUnresolved ? new Uint8Array() : exe),
      path_unresolved: exeUnresolved,
      dev: formatDevice(fromKernelDev(raw.exeDev)),
      ino: raw.exeIno.toString(),
    },
    mmap: {
      source: raw.source === KRSI_MMAP_FROM_MPROTECT ? 'mprotect' : 'mmap',
      prot: protNames(raw.prot),
      flags: raw.mmapFlags,
    },
  };
}

// --- The events (docs/events.md) ---------------------------------------------

const FileIdentitySchema = {
  path: z.string().describe('full path, relative to the process root; empty if unresolved'),
  path_base64: base64.optional(),
  path_unresolved: z.boolean(),
  dev: device.describe('device of the file system holding the file'),
  ino: u64String.describe('inode number of the file'),
};

export const MmapExecEventSchema = hookEventSchema('mmap_exec', {
  library: z
    .object({
      ...FileIdentitySchema,
      sha256: z.string().regex(/^[0-9a-f]{64}$/).nullable().describe('its sha256, when known (IMA, or the agent without it)'),
      hash_missing: z.boolean().optional().describe('a sha256 selector needed the digest and none was known yet'),
    })
    .strict()
    .describe('the file mapped executable'),
  program: z.object(FileIdentitySchema).strict().describe("the program that maps it: the acting process's executable"),
  mmap: z
    .object({
      source: z.enum(['mmap', 'mprotect']).describe('mmap(2) with PROT_EXEC, or mprotect(2) adding PROT_EXEC'),
      prot: z.array(z.enum(['read', 'write', 'exec'])),
      flags: u32.describe('mmap flags (MAP_*); 0 for mprotect'),
    })
    .strict(),
});

export type MmapExecEvent = z.infer<typeof MmapExecEventSchema>;

// mmap_exec records (struct krsi_mmap_event) into mmap_exec events: which
// program (the acting process's executable) mapped which file executable.
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
import type { MmapExecEvent } from './schema.js';

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

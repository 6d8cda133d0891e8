// Mount records (struct krsi_mount_event) into mount events.
import {
  KRSI_MOUNT_API_FSCONFIG,
  KRSI_MOUNT_API_MOUNT,
  KRSI_MOUNT_MOUNTPOINT_KNOWN,
  KRSI_MOUNT_REMOVABLE,
  KRSI_MOUNT_SOURCE_KNOWN,
  KRSI_MOUNT_SOURCE_TRUNCATED,
  decodeKrsiMountEvent,
} from '../abi/generated.js';
import type { DecodeContext } from './decode.js';
import { formatDevice, fromKernelDev } from './devices.js';
import { decodeHookHead, regions, textField } from './hook-common.js';
import type { MountEvent } from './schema.js';
import { decodeText } from './text.js';

/** SB_RDONLY: the superblock is read-only. */
const SB_RDONLY = 1;

export function decodeMountRecord(view: DataView, ctx: DecodeContext): MountEvent {
  const raw = decodeKrsiMountEvent(view);
  const [fstype, source, mountpoint, buses] = regions(raw.data, [raw.fstypeLen, raw.sourceLen, raw.mountpointLen, raw.busLen]) as [
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
  ];
  const has = (f: number): boolean => (raw.flags & f) !== 0;
  const api = has(KRSI_MOUNT_API_MOUNT) ? 'mount' : has(KRSI_MOUNT_API_FSCONFIG) ? 'fsconfig' : 'unknown';
  const sourceKnown = has(KRSI_MOUNT_SOURCE_KNOWN) && raw.sourceLen > 0;
  const mountpointKnown = has(KRSI_MOUNT_MOUNTPOINT_KNOWN) && raw.mountpointLen > 0;
  return {
    ...decodeHookHead('mount', raw, ctx),
    mount: {
      ...textField('fstype', fstype),
      ...(sourceKnown ? textField('source', source) : { source: null }),
      source_truncated: has(KRSI_MOUNT_SOURCE_TRUNCATED),
      ...(mountpointKnown ? textField('mountpoint', mountpoint) : { mountpoint: null }),
      device: formatDevice(fromKernelDev(raw.dev)),
      block_device: raw.bdev === 0 ? null : formatDevice(fromKernelDev(raw.bdev)),
      api,
      flags: api === 'mount' ? raw.mountFlags : null,
      sb_flags: raw.sbFlags,
      read_only: (raw.sbFlags & SB_RDONLY) !== 0,
      bus: raw.bdev === 0 ? null : busNames(buses),
      removable: raw.bdev === 0 ? null : has(KRSI_MOUNT_REMOVABLE),
    },
  };
}

/** NUL-terminated bus names laid end to end. */
function busNames(bytes: Uint8Array): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] !== 0) continue;
    if (i > start) out.push(decodeText(bytes.subarray(start, i)).text);
    start = i + 1;
  }
  return out;
}

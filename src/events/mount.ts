// Mount records (struct krsi_mount_event) into mount events.
import { z } from 'zod';
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
import { decodeText } from './text.js';
import { base64, device, hookEventSchema, u32 } from './event-parts.js';

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

// --- The events (docs/events.md) ---------------------------------------------

export const MountSchema = z
  .object({
    fstype: z.string().describe('file system type (sb->s_type->name): tmpfs, ext4, vfat, fuse, ...'),
    fstype_base64: base64.optional(),
    source: z.string().nullable().describe('the source string (mount(2) dev_name, fsconfig "source"); null when unknown'),
    source_base64: base64.optional(),
    source_truncated: z.boolean().describe('the source was longer than 4095 bytes and is cut'),
    mountpoint: z.string().nullable().describe('where mount(2) mounts it; null for the new mount API (known only at move_mount)'),
    mountpoint_base64: base64.optional(),
    device: device.describe("the superblock's device (sb->s_dev): anonymous 0:N for tmpfs and the like"),
    block_device: device.nullable().describe('the block device, null without one'),
    api: z.enum(['mount', 'fsconfig', 'unknown']).describe('mount(2), or fsconfig(FSCONFIG_CMD_CREATE) of the new mount API'),
    flags: u32.nullable().describe('mount(2) flags (MS_*); null for the new mount API'),
    sb_flags: u32.describe('superblock flags (SB_*)'),
    read_only: z.boolean().describe('the file system is created read-only (SB_RDONLY)'),
    bus: z
      .array(z.string())
      .nullable()
      .describe('buses of the devices above the block device, nearest first (a USB stick: scsi, usb, pci); [] for a loop device; null without a block device'),
    removable: z.boolean().nullable().describe("the block device's disk is removable (GENHD_FL_REMOVABLE); null without a block device"),
  })
  .strict();

export const MountEventSchema = hookEventSchema('mount', {
  mount: MountSchema,
});

export type MountEvent = z.infer<typeof MountEventSchema>;

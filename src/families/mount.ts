// Mounts (bpf/hooks/mount.bpf.c): the mount policy hook, on new file system
// instances, with what mount(2) said about them.
import { z } from 'zod';
import {
  KRSI_DIM_BUS,
  KRSI_DIM_DEVICE,
  KRSI_DIM_FSTYPE,
  KRSI_DIM_REMOVABLE,
  KRSI_DIM_SOURCE,
  KRSI_EVENT_MOUNT,
  KRSI_HOOK_SB_KERN_MOUNT,
  KRSI_HOOK_SB_MOUNT,
  KRSI_PHOOK_MOUNT,
} from '../abi/generated.js';
import { MountEventSchema, decodeMountRecord } from '../events/mount.js';
import { printable, quoteArg } from '../events/text.js';
import { majorMinor, nonEmpty } from '../policy/fact-values.js';
import { PathSelectorSchema, busSet, device, stringSet, valueSet } from '../policy/selector-values.js';
import { defineFamily, eventSpec, POLICY_NEEDS, policyHook } from './family.js';

export const mount = defineFamily({
  name: 'mount',
  programs: [
    // What sb_kern_mount cannot see of a mount(2): its source, flags and mountpoint.
    { program: 'mount_request', hook: 'sb_mount', counter: KRSI_HOOK_SB_MOUNT, role: 'bookkeeping', needs: ['currentTaskBtf', 'taskStorage'] },
    { program: 'mount_check', hook: 'sb_kern_mount', counter: KRSI_HOOK_SB_KERN_MOUNT, role: 'enforcing', needs: POLICY_NEEDS },
  ],
  policyHooks: [
    policyHook('mount', KRSI_PHOOK_MOUNT, { selectors: ['fstype', 'source', 'device', 'bus', 'removable'], programs: ['mount_check'] }),
  ],
  selectors: {
    fstype: { dim: KRSI_DIM_FSTYPE, lists: ['fstype'], schema: stringSet('file system type'), description: 'mount: the file system type, e.g. vfat' },
    source: { dim: KRSI_DIM_SOURCE, lists: ['path'], schema: PathSelectorSchema, description: 'mount: the mount source as given to mount(2)' },
    device: { dim: KRSI_DIM_DEVICE, lists: ['device'], schema: valueSet(device), description: 'mount: the block device of the new file system' },
    bus: {
      dim: KRSI_DIM_BUS,
      lists: [],
      schema: busSet,
      description: 'mount: a bus of the block device or of a device above it (a USB stick: usb, also scsi and pci); no block device: matches neither way',
    },
    removable: {
      dim: KRSI_DIM_REMOVABLE,
      lists: [],
      schema: z.boolean(),
      description: "mount: whether the block device's disk is removable media (/sys/block/<disk>/removable); no block device: matches neither way",
    },
  },
  facts: {
    fstype: nonEmpty,
    source: nonEmpty,
    /** major:minor */
    device: majorMinor,
    /** Buses of the block device and the devices above it; [] for a device on no bus (loop). */
    bus: z.array(nonEmpty),
    /** The block device's disk is removable. */
    removable: z.boolean(),
  },
  records: [{ type: KRSI_EVENT_MOUNT, decode: decodeMountRecord }],
  events: [
    eventSpec({
      schema: MountEventSchema,
      doc: `From the \`sb_kern_mount\` LSM hook: a new file system instance about to be
mounted, by \`mount(2)\` or by the new mount API (\`fsconfig(FSCONFIG_CMD_CREATE)\`).
Bind mounts, remounts, moves and propagation changes create no file system
and do not come here. More, and a USB stick refused after the lock point:
[signals/mounts.md](signals/mounts.md).`,
      what: (e) =>
        `${printable(e.mount.fstype)} ${e.mount.source === null ? '(source unknown)' : quoteArg(e.mount.source)} on ${e.mount.mountpoint === null ? '?' : printable(e.mount.mountpoint)} dev=${e.mount.device}${e.mount.bus === null ? '' : ` bus=${e.mount.bus.join(',') || '-'}${e.mount.removable ? ' removable' : ''}`}`,
    }),
  ],
});

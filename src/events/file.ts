// File records (struct krsi_file_event) into file_open and file_unlink events.
import { z } from 'zod';
import { KRSI_FILE_PATH_UNRESOLVED, KRSI_FILE_RENAME, KRSI_FILE_SELF, decodeKrsiFileEvent } from '../abi/generated.js';
import type { DecodeContext } from './decode.js';
import { formatDevice, fromKernelDev } from './devices.js';
import { decodeHookHead, regions, textField } from './hook-common.js';
import { base64, device, hookEventSchema, u32, u64String } from './event-parts.js';

// open(2) flags as x86-64 (and most architectures) number them; the access
// mode (O_RDONLY 0, O_WRONLY 1, O_RDWR 2) is the low two bits.
const OPEN_FLAGS: ReadonlyArray<[number, string]> = [
  [0o100, 'O_CREAT'],
  [0o200, 'O_EXCL'],
  [0o400, 'O_NOCTTY'],
  [0o1000, 'O_TRUNC'],
  [0o2000, 'O_APPEND'],
  [0o4000, 'O_NONBLOCK'],
  [0o10000, 'O_DSYNC'],
  [0o20000, 'FASYNC'],
  [0o40000, 'O_DIRECT'],
  [0o100000, 'O_LARGEFILE'],
  [0o200000, 'O_DIRECTORY'],
  [0o400000, 'O_NOFOLLOW'],
  [0o1000000, 'O_NOATIME'],
  [0o2000000, 'O_CLOEXEC'],
  [0o4000000, '__O_SYNC'],
  [0o10000000, 'O_PATH'],
  [0o20000000, '__O_TMPFILE'],
  [0o40, '__FMODE_EXEC'],
];

const ACCESS_MODES = ['O_RDONLY', 'O_WRONLY', 'O_RDWR', 'O_ACCMODE'] as const;

/** The names of the flags of an open, unknown bits as hex. */
export function openFlagNames(flags: number): string[] {
  const names: string[] = [ACCESS_MODES[flags & 3]!];
  let rest = (flags & ~3) >>> 0;
  for (const [bit, name] of OPEN_FLAGS) {
    if (rest & bit) {
      names.push(name);
      rest = (rest & ~bit) >>> 0;
    }
  }
  if (rest) names.push(`0x${rest.toString(16)}`);
  return names;
}

// f_mode bits: FMODE_READ, FMODE_WRITE, FMODE_EXEC.
const FMODE_READ = 0x1;
const FMODE_WRITE = 0x2;
const FMODE_EXEC = 0x20;

export function openAccess(fmode: number): z.infer<typeof OpenedFileSchema>['access'] {
  const out: z.infer<typeof OpenedFileSchema>['access'] = [];
  if (fmode & FMODE_READ) out.push('read');
  if (fmode & FMODE_WRITE) out.push('write');
  if (fmode & FMODE_EXEC) out.push('exec');
  return out;
}

function decodeFile(view: DataView) {
  const raw = decodeKrsiFileEvent(view);
  const [path] = regions(raw.data, [raw.pathLen]) as [Uint8Array];
  const unresolved = (raw.flags & KRSI_FILE_PATH_UNRESOLVED) !== 0 || raw.pathLen === 0;
  return {
    raw,
    file: {
      ...textField('path', unresolved ? new Uint8Array() : path),
      path_unresolved: unresolved,
      dev: formatDevice(fromKernelDev(raw.dev)),
      ino: raw.ino.toString(),
    },
  };
}

export function decodeFileOpenRecord(view: DataView, ctx: DecodeContext): FileOpenEvent {
  const { raw, file } = decodeFile(view);
  return {
    ...decodeHookHead('file_open', raw, ctx),
    file: { ...file, flags: raw.openFlags, flag_names: openFlagNames(raw.openFlags), access: openAccess(raw.fmode) },
  };
}

export function decodeFileUnlinkRecord(view: DataView, ctx: DecodeContext): FileUnlinkEvent {
  const { raw, file } = decodeFile(view);
  return {
    ...decodeHookHead('file_unlink', raw, ctx),
    file: { ...file, operation: (raw.flags & KRSI_FILE_RENAME) !== 0 ? 'rename' : 'unlink', self_delete: (raw.flags & KRSI_FILE_SELF) !== 0 },
  };
}

// --- The events (docs/events.md) ---------------------------------------------

export const OpenedFileSchema = z
  .object({
    path: z.string().describe('full path of the file, as bpf_d_path resolves it; empty if unresolved'),
    path_base64: base64.optional(),
    path_unresolved: z.boolean(),
    dev: device.describe('device of the file system holding the file'),
    ino: u64String.describe('inode number of the file'),
    flags: u32.describe('open flags (f_flags: O_* as open(2) took them)'),
    flag_names: z.array(z.string()).describe('names of the flags set (O_WRONLY, O_CREAT, ...); unknown bits as 0x... hex'),
    access: z.array(z.enum(['read', 'write', 'exec'])).describe('what the open grants (f_mode): exec for an executable being loaded'),
  })
  .strict();

export const FileOpenEventSchema = hookEventSchema('file_open', {
  file: OpenedFileSchema,
});

export const UnlinkedFileSchema = z
  .object({
    path: z.string().describe('full path of the name being removed, relative to the process root; empty if unresolved'),
    path_base64: base64.optional(),
    path_unresolved: z.boolean(),
    dev: device.describe('device of the file system holding the file'),
    ino: u64String.describe('inode number of the file'),
    operation: z.enum(['unlink', 'rename']).optional().describe('unlink(2), or a rename(2) that replaces the file (its name goes to another file)'),
    self_delete: z.boolean().optional().describe("the file is the acting process's own executable: it deletes or replaces itself"),
  })
  .strict();

export const FileUnlinkEventSchema = hookEventSchema('file_unlink', {
  file: UnlinkedFileSchema,
});

export type FileOpenEvent = z.infer<typeof FileOpenEventSchema>;
export type FileUnlinkEvent = z.infer<typeof FileUnlinkEventSchema>;

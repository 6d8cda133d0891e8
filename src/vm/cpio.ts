// A small writer of "newc" cpio archives, the format the kernel unpacks as an
// initramfs. Deterministic: the same entries always give the same bytes (mtime
// 0, uid/gid 0, inode numbers by position), so an archive's hash names its
// content and the initramfs cache can key on it.

export type CpioEntry =
  | { readonly kind: 'directory'; readonly path: string; readonly mode?: number }
  | { readonly kind: 'file'; readonly path: string; readonly data: Uint8Array; readonly mode?: number }
  | { readonly kind: 'symlink'; readonly path: string; readonly target: string }
  | {
      readonly kind: 'characterDevice';
      readonly path: string;
      readonly major: number;
      readonly minor: number;
      readonly mode?: number;
    };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const NEWC_MAGIC = '070701';
const HEADER_LENGTH = 110;
const TRAILER_NAME = 'TRAILER!!!';

function hex8(value: number): string {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new RangeError(`cpio header field out of range: ${value}`);
  }
  return value.toString(16).padStart(8, '0');
}

function padTo4(length: number): number {
  return (4 - (length % 4)) % 4;
}

interface RawEntry {
  readonly name: string;
  readonly mode: number;
  readonly nlink: number;
  readonly data: Uint8Array;
  readonly rdevMajor: number;
  readonly rdevMinor: number;
}

function encodeEntry(ino: number, entry: RawEntry): Buffer[] {
  const name = Buffer.from(`${entry.name}\0`, 'utf8');
  const fields = [
    ino,
    entry.mode,
    0, // uid
    0, // gid
    entry.nlink,
    0, // mtime
    entry.data.length,
    0, // devmajor
    0, // devminor
    entry.rdevMajor,
    entry.rdevMinor,
    name.length,
    0, // check (unused by newc)
  ];
  const header = Buffer.from(NEWC_MAGIC + fields.map(hex8).join(''), 'ascii');
  return [
    header,
    name,
    Buffer.alloc(padTo4(HEADER_LENGTH + name.length)),
    Buffer.from(entry.data.buffer, entry.data.byteOffset, entry.data.length),
    Buffer.alloc(padTo4(entry.data.length)),
  ];
}

function normalizePath(path: string): string {
  const trimmed = path.replace(/^\/+/, '').replace(/\/+$/, '');
  if (trimmed === '' || trimmed.split('/').some((part) => part === '' || part === '.' || part === '..')) {
    throw new Error(`invalid cpio path: "${path}"`);
  }
  return trimmed;
}

function toRaw(entry: CpioEntry): RawEntry {
  const name = normalizePath(entry.path);
  const none = new Uint8Array(0);
  switch (entry.kind) {
    case 'directory':
      return { name, mode: S_IFDIR | (entry.mode ?? 0o755), nlink: 2, data: none, rdevMajor: 0, rdevMinor: 0 };
    case 'file':
      return { name, mode: S_IFREG | (entry.mode ?? 0o644), nlink: 1, data: entry.data, rdevMajor: 0, rdevMinor: 0 };
    case 'symlink':
      return { name, mode: S_IFLNK | 0o777, nlink: 1, data: Buffer.from(entry.target, 'utf8'), rdevMajor: 0, rdevMinor: 0 };
    case 'characterDevice':
      return { name, mode: S_IFCHR | (entry.mode ?? 0o600), nlink: 1, data: none, rdevMajor: entry.major, rdevMinor: entry.minor };
  }
}

/**
 * Encodes `entries` in order. The kernel creates each entry as it reads it and
 * does not create missing parents, so every parent directory must come first;
 * that is checked here rather than discovered as a silent boot failure.
 */
export function writeCpio(entries: readonly CpioEntry[]): Buffer {
  const directories = new Set<string>();
  const seen = new Set<string>();
  const parts: Buffer[] = [];
  let ino = 1;
  for (const entry of entries) {
    const raw = toRaw(entry);
    if (seen.has(raw.name)) throw new Error(`duplicate cpio path: ${raw.name}`);
    seen.add(raw.name);
    const slash = raw.name.lastIndexOf('/');
    if (slash !== -1 && !directories.has(raw.name.slice(0, slash))) {
      throw new Error(`cpio entry ${raw.name} comes before its parent directory`);
    }
    if (entry.kind === 'directory') directories.add(raw.name);
    parts.push(...encodeEntry(ino++, raw));
  }
  parts.push(
    ...encodeEntry(0, { name: TRAILER_NAME, mode: 0, nlink: 1, data: new Uint8Array(0), rdevMajor: 0, rdevMinor: 0 }),
  );
  return Buffer.concat(parts);
}

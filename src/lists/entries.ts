// Dynamic list entries: the canonical text of an entry of each list type, and
// the kernel key it becomes. Users may name a file instead of its identity
// (inode, sha256 and cgroup lists resolve paths when the entry is added).
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { encodeKrsiStrKey, encodeKrsiValueKey } from '../abi/generated.js';
import { InputError } from '../errors.js';
import { formatDevice, fromStatDev, toKernelDev } from '../events/devices.js';
import { addressWords, listKind, parseDevice, sha256Words } from '../policy/compile.js';
import { fnv1a64 } from '../policy/hash.js';
import { parseCidr, type ListType } from '../policy/schema.js';
import { KRSI_LIST_STRINGS, KRSI_STR_MAX } from '../abi/generated.js';

const bad = (type: ListType, entry: string, why: string): InputError => new InputError(`${type} list entry ${JSON.stringify(entry)}: ${why}`);

function stat(entry: string, type: ListType) {
  try {
    return statSync(entry, { bigint: true });
  } catch (err) {
    throw bad(type, entry, `cannot stat (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

function boundedString(type: ListType, entry: string): string {
  const b = Buffer.from(entry, 'utf8');
  if (b.length === 0 || b.length >= KRSI_STR_MAX || b.includes(0)) throw bad(type, entry, 'must be 1-255 bytes without NUL');
  return entry;
}

/** The one text form an entry is stored, compared and shown in. */
export function canonicalEntry(type: ListType, entry: string): string {
  switch (type) {
    case 'path':
      if (!entry.startsWith('/')) throw bad(type, entry, 'must be an absolute path');
      return boundedString(type, entry);
    case 'inode': {
      const m = /^(\d+):(\d+):(\d+)$/.exec(entry);
      if (m) return entry;
      if (!entry.startsWith('/')) throw bad(type, entry, 'give MAJOR:MINOR:INODE or the path of a file');
      const st = stat(entry, type);
      return `${formatDevice(fromStatDev(st.dev))}:${st.ino}`;
    }
    case 'sha256': {
      if (/^[0-9a-f]{64}$/.test(entry)) return entry;
      if (!entry.startsWith('/')) throw bad(type, entry, 'give 64 lower-case hex digits or the path of a file');
      try {
        return createHash('sha256').update(readFileSync(entry)).digest('hex');
      } catch (err) {
        throw bad(type, entry, `cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    }
    case 'uid':
    case 'gid':
    case 'port': {
      if (!/^\d+$/.test(entry)) throw bad(type, entry, 'must be a decimal number');
      const n = Number(entry);
      if (type === 'port' ? n < 1 || n > 65535 : n > 0xffffffff) throw bad(type, entry, 'out of range');
      return String(n);
    }
    case 'cgroup': {
      if (/^\d+$/.test(entry)) return entry;
      if (!entry.startsWith('/')) throw bad(type, entry, 'give a cgroup id or a cgroup v2 directory');
      const st = stat(entry, type);
      if (!st.isDirectory()) throw bad(type, entry, 'not a directory');
      return st.ino.toString();
    }
    case 'env':
      if (entry.includes('=')) throw bad(type, entry, 'a variable name has no "="');
      return boundedString(type, entry);
    case 'fstype':
    case 'module':
      return boundedString(type, entry);
    case 'device': {
      if (/^\d+:\d+$/.test(entry)) {
        parseDevice(entry);
        return entry;
      }
      if (!entry.startsWith('/')) throw bad(type, entry, 'give MAJOR:MINOR or a device node');
      const st = stat(entry, type);
      if (!st.isBlockDevice()) throw bad(type, entry, 'not a block device');
      return formatDevice(fromStatDev(st.rdev));
    }
    case 'address': {
      const c = parseCidr(entry);
      if (!c || c.prefixLen !== 128) throw bad(type, entry, 'must be one IPv4 or IPv6 address (networks go in policies)');
      return entry.toLowerCase();
    }
  }
}

/** Which list map and key an entry of list `id` takes in the kernel. */
/** The kernel map a list of this type is kept in (shared with every list of its kind). */
export function listMap(type: ListType): 'list_strings' | 'list_values' {
  return listKind(type) === KRSI_LIST_STRINGS ? 'list_strings' : 'list_values';
}

export function entryKey(type: ListType, id: number, entry: string): { map: 'list_strings' | 'list_values'; key: Buffer } {
  const bytes = (v: DataView): Buffer => Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (listMap(type) === 'list_strings') {
    const s = new Uint8Array(KRSI_STR_MAX);
    s.set(Buffer.from(entry, 'utf8'));
    return { map: 'list_strings', key: bytes(encodeKrsiStrKey({ table: id, s })) };
  }
  let v: [bigint, bigint, bigint, bigint];
  switch (type) {
    case 'inode': {
      const [maj, min, ino] = entry.split(':') as [string, string, string];
      v = [BigInt(ino), BigInt(toKernelDev({ major: Number(maj), minor: Number(min) })), 0n, 0n];
      break;
    }
    case 'sha256':
      v = sha256Words(entry);
      break;
    case 'env':
      v = [fnv1a64(Buffer.from(entry, 'utf8')), 0n, 0n, 0n];
      break;
    case 'device':
      v = [BigInt(parseDevice(entry)), 0n, 0n, 0n];
      break;
    case 'address':
      v = addressWords(parseCidr(entry)!.bytes);
      break;
    default:
      v = [BigInt(entry), 0n, 0n, 0n];
  }
  return { map: 'list_values', key: bytes(encodeKrsiValueKey({ table: id, v })) };
}

// The deny_exec map: files whose exec the kernel refuses, by identity.
import { statSync } from 'node:fs';
import { encodeKrsiInodeKey, KrsiInodeKeyLayout } from '../abi/generated.js';
import { InputError } from '../errors.js';
import { fromStatDev, toKernelDev } from '../events/devices.js';

export interface FileIdentity {
  /** The path as the user gave it. */
  path: string;
  /** Kernel dev_t of the file system holding the file. */
  dev: number;
  ino: bigint;
}

/**
 * The identity of the file a path leads to, following symlinks as exec does.
 * Throws a clear error for a missing file or one that is not a regular file.
 */
export function fileIdentity(path: string): FileIdentity {
  let st;
  try {
    st = statSync(path, { bigint: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new InputError(`${path}: cannot stat (${code})`);
  }
  if (!st.isFile()) throw new InputError(`${path}: not a regular file, so it cannot be executed`);
  return { path, dev: toKernelDev(fromStatDev(st.dev)), ino: st.ino };
}

export function inodeKey(id: FileIdentity): Buffer {
  const key = encodeKrsiInodeKey({ ino: id.ino, dev: id.dev });
  return Buffer.from(key.buffer, key.byteOffset, KrsiInodeKeyLayout.size);
}

export function ruleValue(ruleId: number): Buffer {
  const value = Buffer.alloc(4);
  value.writeUInt32LE(ruleId);
  return value;
}

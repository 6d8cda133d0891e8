// The environment variables whose values exec events carry (env_record), and
// the names env selectors use (env_watch), for the kernel's scan of each new
// image's environment (bpf/hooks/exec_env.bpf.c).
import { KRSI_ENV_NAME_MAX, KRSI_ENV_RECORD_MAX, encodeKrsiEnvName } from '../abi/generated.js';
import type { BpfMap } from '../bpf/native.js';
import { InputError } from '../errors.js';
import { log } from '../log.js';
import { fnv1a64 } from '../policy/hash.js';

/** The dynamic loader's variables that inject code or redirect libraries. */
export const DEFAULT_ENV_RECORD: readonly string[] = ['LD_PRELOAD', 'LD_AUDIT', 'LD_LIBRARY_PATH'];

const u64 = (n: bigint): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return b;
};

/** The names, checked: at most 8, each 1-63 bytes without '=' or NUL, no duplicates. */
export function checkEnvRecordNames(names: readonly string[]): string[] {
  const out = [...new Set(names)];
  if (out.length > KRSI_ENV_RECORD_MAX) throw new InputError(`at most ${KRSI_ENV_RECORD_MAX} environment variables can be recorded, not ${out.length}`);
  for (const name of out) {
    const len = Buffer.byteLength(name);
    if (len === 0 || len >= KRSI_ENV_NAME_MAX || name.includes('=') || name.includes('\0')) {
      throw new InputError(`environment variable name ${JSON.stringify(name)}: 1 to ${KRSI_ENV_NAME_MAX - 1} bytes, without "=" or NUL`);
    }
  }
  return out;
}

export function writeEnvRecord(map: BpfMap, names: readonly string[]): void {
  names.forEach((name, index) => {
    const bytes = Buffer.from(name, 'utf8');
    const name64 = new Uint8Array(KRSI_ENV_NAME_MAX);
    name64.set(bytes);
    const v = encodeKrsiEnvName({ len: bytes.length, index, name: name64 });
    map.update(u64(fnv1a64(bytes)), Buffer.from(v.buffer, v.byteOffset, v.byteLength));
  });
}

/**
 * Adds names (their FNV-1a hashes) to env_watch. The set only grows: a name
 * watched that no rule uses any more costs one lookup, and is harmless.
 */
export function watchEnvNames(map: BpfMap, hashes: Iterable<bigint>): void {
  const one = Buffer.from([1, 0, 0, 0]);
  for (const h of hashes) {
    try {
      map.update(u64(h), one);
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'env_watch is full: the environment backstop does not see every name env rules use');
      return;
    }
  }
}

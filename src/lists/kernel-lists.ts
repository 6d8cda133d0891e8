// Dynamic lists in the kernel's list maps. An entry's expiry travels with it
// (CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns and process.hrtime), so
// the kernel stops honouring an expired entry on time even if the agent is
// not there to delete it.
import { encodeKrsiListEntry } from '../abi/generated.js';
import type { BpfObject } from '../bpf/native.js';
import { watchEnvNames } from '../agent/env-record.js';
import { fnv1a64 } from '../policy/hash.js';
import { entryKey } from './entries.js';
import type { ListStore, StoredList } from './store.js';

/** A wall-clock expiry as the kernel's monotonic nanoseconds (0: never). */
export function monotonicExpiry(expiresAt: number | undefined, now = Date.now()): bigint {
  if (expiresAt === undefined) return 0n;
  const left = BigInt(Math.max(1, Math.round((expiresAt - now) * 1e6)));
  return process.hrtime.bigint() + left;
}

export class KernelLists {
  constructor(private readonly object: BpfObject) {}

  write(list: StoredList, entry: string, expiresAt: number | undefined): void {
    const { map, key } = entryKey(list.type, list.id, entry);
    const value = encodeKrsiListEntry({ expiresNs: monotonicExpiry(expiresAt) });
    this.object.map(map).update(key, Buffer.from(value.buffer, value.byteOffset, value.byteLength));
    // The kernel's scan of a new image's environment looks for watched names only.
    if (list.type === 'env') watchEnvNames(this.object.map('env_watch'), [fnv1a64(Buffer.from(entry, 'utf8'))]);
  }

  delete(list: StoredList, entry: string): void {
    const { map, key } = entryKey(list.type, list.id, entry);
    this.object.map(map).delete(key);
  }

  /** Writes every live entry of the store (at start). */
  syncAll(store: ListStore, now = Date.now()): number {
    let n = 0;
    for (const list of store.all()) {
      for (const [entry, expiresAt] of list.entries) {
        if (expiresAt !== undefined && expiresAt <= now) continue;
        this.write(list, entry, expiresAt);
        n++;
      }
    }
    return n;
  }
}

// Dynamic lists in the kernel's list maps. An entry's expiry travels with it
// (CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns and process.hrtime), so
// the kernel stops honouring an expired entry on time even if the agent is
// not there to delete it.
import { encodeKrsiListEntry } from '../abi/generated.js';
import type { BpfObject } from '../bpf/native.js';
import { entryKey, listMap } from './entries.js';
import { InputError } from '../errors.js';
import type { EntryChange, ListStore, StoredList } from './store.js';
import { watchEnvNames } from '../agent/env-record.js';
import { fnv1a64 } from '../policy/hash.js';

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

  /**
   * Puts a change to `list` in force: all of it or, on error, none of it
   * (entries it added are deleted again, refreshed ones keep their expiry).
   * The list maps are shared by every list of their kind, and full is an
   * input error that names the limit.
   */
  apply(store: ListStore, change: EntryChange): void {
    const { list } = change;
    const map = listMap(list.type);
    if (change.added.length > 0) {
      const capacity = this.object.map(map).maxEntries;
      const used = store
        .all()
        .filter((l) => listMap(l.type) === map)
        .reduce((n, l) => n + l.entries.size, 0);
      if (used + change.added.length > capacity) {
        throw new InputError(
          `list ${list.name} is full: the kernel holds at most ${capacity} entries across all lists kept in ${map}; ` +
            `${used} are in use and ${change.added.length} more do not fit (nothing was added)`,
        );
      }
    }
    const written: string[] = [];
    try {
      for (const e of change.added) {
        this.write(list, e, change.expiresAt);
        written.push(e);
      }
    } catch (err) {
      for (const e of written) this.delete(list, e);
      throw new Error(`list ${list.name}: the kernel refused an entry (${(err as Error).message}); nothing was added`);
    }
    // Entries already there only change their expiry: they stay enforced either way.
    for (const e of change.unchanged) this.write(list, e, change.expiresAt);
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

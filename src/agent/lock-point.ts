// The lock point: a one-way switch after which the rules marked
// `afterLockPoint: true` are in force (typically: boot is complete, from now
// on no USB mounts and no module loads). The kernel reads it from the
// lock_point map at every decision (krsi_policy_begin); the agent writes it
// once and then freezes the map, so that nothing in user space, root, this
// agent and its successors included, can set it back. The map is pinned
// with the others, so an agent restarted before reboot finds it reached.
import { decodeKrsiLockPoint, encodeKrsiLockPoint } from '../abi/generated.js';
import type { BpfObject } from '../bpf/native.js';
import { isoNs } from '../events/clock.js';
import { log } from '../log.js';

export const LOCK_POINT_MAP = 'lock_point';

export interface LockPointState {
  reached: boolean;
  /** RFC 3339, when it was reached; null before. */
  since: string | null;
}

const zero = Buffer.alloc(4);

function reachedNs(object: BpfObject): bigint {
  const value = object.map(LOCK_POINT_MAP).lookup(zero);
  if (!value) return 0n;
  return decodeKrsiLockPoint(new DataView(value.buffer, value.byteOffset, value.byteLength)).reachedNs;
}

/** wallNs maps CLOCK_MONOTONIC ns to wall-clock ns (the agent's EventClock). */
export function lockPointState(object: BpfObject, wallNs: (monotonicNs: bigint) => bigint): LockPointState {
  const ns = reachedNs(object);
  return ns === 0n ? { reached: false, since: null } : { reached: true, since: isoNs(wallNs(ns)) };
}

/**
 * Reaches the lock point (once; later calls change nothing) and freezes the
 * map. Returns the state and whether it was reached before this call.
 */
export function reachLockPoint(object: BpfObject, wallNs: (monotonicNs: bigint) => bigint): LockPointState & { already: boolean } {
  const map = object.map(LOCK_POINT_MAP);
  let already = reachedNs(object) !== 0n;
  if (!already) {
    // process.hrtime is CLOCK_MONOTONIC, as bpf_ktime_get_ns() is.
    const value = encodeKrsiLockPoint({ reachedNs: process.hrtime.bigint() });
    try {
      map.update(zero, Buffer.from(value.buffer, value.byteOffset, value.byteLength));
    } catch (err) {
      // Frozen by another agent that reached it meanwhile: nothing to do.
      if (reachedNs(object) === 0n) throw err;
      already = true;
    }
  }
  try {
    map.freeze();
  } catch (err) {
    log.debug({ err: (err as Error).message }, 'lock_point was already frozen');
  }
  return { ...lockPointState(object, wallNs), already };
}

// Self-protection, the user-space half (bpf/hooks/self.bpf.c is the kernel's):
// tell the kernel who the agent is, which objects and pins are its own, and
// make the maps that only BPF writes read-only to every process.
import { statSync } from 'node:fs';
import { encodeKrsiSelfId, encodeKrsiSelfState, KRSI_PIN_ROOT_MAX, KRSI_SELF_LINK, KRSI_SELF_MAP, KRSI_SELF_PROG } from '../abi/generated.js';
import type { BpfLink, BpfObject } from '../bpf/native.js';
import { fromStatDev, toKernelDev } from '../events/devices.js';
import { PROGRAMS } from '../families/index.js';
import { log } from '../log.js';
import type { PinLayout } from './pins.js';

/** Attached last, once everything they protect is in place; self_exit first of them (src/families/self.ts). */
export const selfPrograms: readonly string[] = PROGRAMS.filter((p) => p.role === 'self').map((p) => p.program);

/** Maps written only by BPF programs: frozen, so no process can write them. */
const BPF_ONLY_MAPS = ['counters', 'rate_state', 'self_counters', 'ring_seq', 'ring_lost'];
const isBpfOnly = (name: string): boolean => BPF_ONLY_MAPS.includes(name) || name.endsWith('_scratch');

const bytes = (v: DataView): Buffer => Buffer.from(v.buffer, v.byteOffset, v.byteLength);
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};

/** Who the agent is and where its pins are; protect: 0 turns the checks off. */
export function writeSelfState(object: BpfObject, layout: PinLayout, protect: boolean): void {
  const dirs = [layout.root, layout.maps, layout.links].map((d) => statSync(d, { bigint: true }));
  const root = Buffer.from(`${layout.root.replace(/\/+$/, '')}/`, 'utf8');
  if (root.length > KRSI_PIN_ROOT_MAX) throw new Error(`the pin root ${layout.root} is longer than ${KRSI_PIN_ROOT_MAX - 1} bytes`);
  const pinRoot = new Uint8Array(KRSI_PIN_ROOT_MAX);
  pinRoot.set(root);
  const value = encodeKrsiSelfState({
    agentTgid: process.pid,
    protect: protect ? 1 : 0,
    pinDev: toKernelDev(fromStatDev(dirs[0]!.dev)),
    pinRootLen: root.length,
    pinDirIno: dirs.map((d) => d.ino),
    pinRoot,
  });
  object.map('self_state').update(u32(0), bytes(value));
}

/** Records the ids of the agent's maps, programs and links as its own. */
export function registerSelfIds(object: BpfObject, links: ReadonlyArray<BpfLink>): number {
  const ids = object.map('self_ids');
  const put = (kind: number, id: number): void => ids.update(bytes(encodeKrsiSelfId({ kind, id })), u32(1));
  let n = 0;
  for (const m of object.maps()) {
    if (m.fd < 0) continue;
    put(KRSI_SELF_MAP, m.id());
    n++;
  }
  for (const p of object.programs()) {
    if (p.fd < 0) continue;
    put(KRSI_SELF_PROG, p.id());
    n++;
  }
  for (const l of links) {
    put(KRSI_SELF_LINK, l.id());
    n++;
  }
  return n;
}

/** Freezes the maps only BPF writes; a map kind that cannot be frozen is left as it is. */
export function freezeBpfOnlyMaps(object: BpfObject): string[] {
  const frozen: string[] = [];
  for (const m of object.maps()) {
    if (!isBpfOnly(m.name)) continue;
    try {
      m.freeze();
      frozen.push(m.name);
    } catch (err) {
      // Already frozen by an earlier agent (the pinned map was reused), or not freezable.
      log.debug({ map: m.name, err: (err as Error).message }, 'not frozen');
    }
  }
  return frozen;
}

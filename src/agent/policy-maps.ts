// Installs a compiled policy generation into the kernel, atomically.
//
// Each generation gets fresh inner maps, filled, then frozen (no process,
// this one included, can change them afterwards), then placed in a free slot
// of the outer maps. Writing that slot's number into policy_active (one u32)
// is the switch: a program reads the slot once per decision, so every
// decision uses one generation's tables throughout. A slot is reused only
// after SLOT_REUSE_MS have passed since it was retired, far longer than any
// (non-sleepable) program runs; in-flight programs keep the inner maps they
// looked up alive through RCU regardless.
import { setTimeout as sleep } from 'node:timers/promises';
import {
  KRSI_GEN_SLOTS,
  KRSI_PHOOK_COUNT,
  KrsiDfaStateLayout,
  KrsiHookPolicyLayout,
  KrsiNetKeyLayout,
  KrsiPrefixKeyLayout,
  KrsiStrKeyLayout,
  KrsiValueKeyLayout,
  encodeKrsiHookPolicy,
  encodeKrsiNetKey,
  encodeKrsiPolicyActive,
  decodeKrsiPolicyNeeds,
  encodeKrsiPolicyNeeds,
  encodeKrsiPrefixKey,
  encodeKrsiStrKey,
  encodeKrsiValueKey,
} from '../abi/generated.js';
import { BPF_F_INNER_MAP, BPF_F_NO_PREALLOC, native, type BpfMap, type BpfObject } from '../bpf/native.js';
import type { CompiledGeneration } from '../policy/compile.js';

export const SLOT_REUSE_MS = 1000;

const bytesOf = (v: DataView): Buffer => Buffer.from(v.buffer, v.byteOffset, v.byteLength);
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};
const u64 = (n: bigint): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return b;
};
const padded = (bytes: Buffer, size: number): Uint8Array => {
  const out = new Uint8Array(size);
  out.set(bytes.subarray(0, size));
  return out;
};

interface InnerSpec {
  outer: string;
  type: string;
  keySize: number;
  valueSize: number;
  flags: number;
}

const INNER: Record<'hooks' | 'strings' | 'prefixes' | 'values' | 'nets' | 'dfa', InnerSpec> = {
  hooks: { outer: 'policy_hooks', type: 'array', keySize: 4, valueSize: KrsiHookPolicyLayout.size, flags: 0 },
  strings: { outer: 'policy_strings', type: 'hash', keySize: KrsiStrKeyLayout.size, valueSize: 8, flags: 0 },
  prefixes: { outer: 'policy_prefixes', type: 'lpm_trie', keySize: KrsiPrefixKeyLayout.size, valueSize: 8, flags: BPF_F_NO_PREALLOC },
  values: { outer: 'policy_values', type: 'hash', keySize: KrsiValueKeyLayout.size, valueSize: 8, flags: 0 },
  nets: { outer: 'policy_nets', type: 'lpm_trie', keySize: KrsiNetKeyLayout.size, valueSize: 8, flags: BPF_F_NO_PREALLOC },
  dfa: { outer: 'policy_dfa', type: 'array', keySize: 4, valueSize: KrsiDfaStateLayout.size, flags: BPF_F_INNER_MAP },
};

type Keyed = Array<{ key: Uint8Array; value: Uint8Array }>;

/** The key/value pairs of each inner map of a generation. */
export function generationEntries(gen: CompiledGeneration): Record<keyof typeof INNER, Keyed> {
  return {
    hooks: gen.hooks.map((h, i) => ({ key: u32(i), value: bytesOf(encodeKrsiHookPolicy(h)) })),
    strings: gen.strings.map((e) => ({
      key: bytesOf(encodeKrsiStrKey({ table: e.table, s: padded(e.bytes, 256) })),
      value: u64(e.mask),
    })),
    prefixes: gen.prefixes.map((e) => ({
      key: bytesOf(encodeKrsiPrefixKey({ prefixlen: 8 + 8 * e.bytes.length, table: e.table, s: padded(e.bytes, 255) })),
      value: u64(e.mask),
    })),
    values: gen.values.map((e) => ({ key: bytesOf(encodeKrsiValueKey({ table: e.table, v: e.v })), value: u64(e.mask) })),
    nets: gen.nets.map((e) => ({
      key: bytesOf(encodeKrsiNetKey({ prefixlen: 8 + e.bits, table: e.table, addr: e.addr })),
      value: u64(e.mask),
    })),
    dfa: Array.from({ length: gen.dfaStates }, (_, i) => ({
      key: u32(i),
      value: gen.dfa.subarray(i * KrsiDfaStateLayout.size, (i + 1) * KrsiDfaStateLayout.size),
    })),
  };
}

function fill(map: BpfMap, entries: Keyed, batch: boolean): void {
  if (entries.length === 0) return;
  if (batch) {
    map.updateBatch(
      Buffer.concat(entries.map((e) => e.key)),
      Buffer.concat(entries.map((e) => e.value)),
      entries.length,
    );
    return;
  }
  for (const e of entries) map.update(e.key, e.value);
}

export interface InstallTiming {
  slot: number;
  /** Creating and filling the new inner maps. */
  fillMs: number;
  /** From the first outer-map write to the switch. */
  switchMs: number;
  entries: number;
}

export class PolicyMaps {
  private readonly retiredAt = new Map<number, number>();

  constructor(private readonly object: BpfObject) {}

  /** The slot the kernel currently evaluates; KRSI_GEN_SLOTS-style "none" is a slot without maps. */
  activeSlot(): number {
    const v = this.object.map('policy_active').lookup(u32(0));
    return v ? v.readUInt32LE(0) : 0;
  }

  async install(gen: CompiledGeneration): Promise<InstallTiming> {
    const current = this.activeSlot();
    const slot = (current + 1) % KRSI_GEN_SLOTS;
    const retired = this.retiredAt.get(slot);
    if (retired !== undefined) {
      const wait = retired + SLOT_REUSE_MS - Date.now();
      if (wait > 0) await sleep(wait);
    }

    const started = performance.now();
    const all = generationEntries(gen);
    const created: Array<{ spec: InnerSpec; map: BpfMap }> = [];
    let entries = 0;
    try {
      for (const [name, spec] of Object.entries(INNER) as Array<[keyof typeof INNER, InnerSpec]>) {
        const list = all[name];
        entries += name === 'hooks' || name === 'dfa' ? 0 : list.length;
        const map = native.BpfMap.create({
          type: spec.type,
          name: `krsi_${name}`,
          keySize: spec.keySize,
          valueSize: spec.valueSize,
          maxEntries: name === 'hooks' ? KRSI_PHOOK_COUNT : Math.max(1, list.length),
          flags: spec.flags,
        });
        created.push({ spec, map });
        // LPM tries have no batch operations on the kernels krsi supports.
        fill(map, list, spec.type !== 'lpm_trie');
        map.freeze();
      }
      const filled = performance.now();
      for (const { spec, map } of created) this.object.map(spec.outer).setInnerMap(u32(slot), map);
      // What the new generation needs is in place before the switch; what
      // only the old one needed goes after it.
      const needs = this.object.map('policy_needs');
      const want = { sha256: gen.needsSha256 ? 1 : 0, librarySha256: gen.needsLibrarySha256 ? 1 : 0, envBackstop: gen.envBackstop ? 1 : 0 };
      const old = needs.lookup(u32(0));
      const had = old ? decodeKrsiPolicyNeeds(new DataView(old.buffer, old.byteOffset, old.byteLength)) : { sha256: 0, librarySha256: 0, envBackstop: 0 };
      const union = { sha256: want.sha256 | had.sha256, librarySha256: want.librarySha256 | had.librarySha256, envBackstop: want.envBackstop | had.envBackstop };
      needs.update(u32(0), bytesOf(encodeKrsiPolicyNeeds(union)));
      // The switch.
      this.object.map('policy_active').update(u32(0), bytesOf(encodeKrsiPolicyActive({ slot })));
      const switched = performance.now();
      needs.update(u32(0), bytesOf(encodeKrsiPolicyNeeds(want)));
      this.retiredAt.set(current, Date.now());
      return { slot, fillMs: filled - started, switchMs: switched - filled, entries };
    } finally {
      // The outer maps hold the kernel's references; our fds are not needed.
      for (const { map } of created) map.close();
    }
  }
}

// Struct layouts as the compiler laid them out, from a BPF object's BTF, and
// the ABI fingerprint: a hash of the layouts of every struct events.h shares
// between the kernel and user space. The generator writes it into
// src/abi/generated.ts and bpf/include/abi_version.h; the agent recomputes it
// from the object it loads and refuses an object whose layouts differ.
import { createHash } from 'node:crypto';
import type { BtfType } from '../bpf/btf.js';

export type ScalarKind = 'u8' | 'u16' | 'u32' | 'u64' | 's8' | 's16' | 's32' | 's64';

export type FieldType =
  | { kind: 'scalar'; scalar: ScalarKind }
  /** char or u8 arrays: bytes */
  | { kind: 'chars'; length: number }
  | { kind: 'struct'; struct: string }
  /** arrays of wider scalars, of structs, or of arrays */
  | { kind: 'array'; element: FieldType; length: number; stride: number };

export interface FieldLayout {
  /** The C member name. */
  name: string;
  offset: number;
  size: number;
  type: FieldType;
}

export interface StructLayout {
  name: string;
  size: number;
  fields: FieldLayout[];
}

/** Layouts of every struct whose name passes `keep`, as the compiler laid them out. */
export function structLayouts(types: readonly BtfType[], keep: (name: string) => boolean): StructLayout[] {
  const byId = new Map(types.map((t) => [t.id, t]));
  const resolve = (id: number): BtfType => {
    let t = byId.get(id);
    while (t && (t.kind === 'TYPEDEF' || t.kind === 'CONST' || t.kind === 'VOLATILE')) {
      t = t.type_id === undefined ? undefined : byId.get(t.type_id);
    }
    if (!t) throw new Error(`BTF type ${id} does not resolve`);
    return t;
  };
  const sizeOf = (t: BtfType): number => {
    if (t.kind === 'ARRAY') return (t.nr_elems ?? 0) * sizeOf(resolve(t.type_id ?? 0));
    if (t.size === undefined) throw new Error(`BTF type ${t.id} (${t.kind}) has no size`);
    return t.size;
  };
  const fieldType = (t: BtfType, where: string): FieldType => {
    if (t.kind === 'INT') {
      const signed = t.encoding === 'SIGNED';
      const bits = (t.size ?? 0) * 8;
      return { kind: 'scalar', scalar: `${signed ? 's' : 'u'}${bits}` as ScalarKind };
    }
    if (t.kind === 'ARRAY') {
      const elem = resolve(t.type_id ?? 0);
      if (elem.kind === 'INT' && elem.size === 1) return { kind: 'chars', length: t.nr_elems ?? 0 };
      return { kind: 'array', element: fieldType(elem, `${where}[]`), length: t.nr_elems ?? 0, stride: sizeOf(elem) };
    }
    if (t.kind === 'STRUCT' && t.name) return { kind: 'struct', struct: t.name };
    throw new Error(`${where}: BTF kind ${t.kind} is not allowed in the ABI (fixed-width integers, char arrays, structs)`);
  };

  const seen = new Set<string>();
  const layouts: StructLayout[] = [];
  for (const t of types) {
    if (t.kind !== 'STRUCT' || !t.name || !keep(t.name) || seen.has(t.name)) continue;
    seen.add(t.name);
    const fields = (t.members ?? []).map((m): FieldLayout => {
      const where = `struct ${t.name}.${m.name}`;
      if (m.bitfield_size) throw new Error(`${where}: bitfields are not allowed in the ABI`);
      if (m.bits_offset % 8 !== 0) throw new Error(`${where}: not byte aligned`);
      const mt = resolve(m.type_id);
      return { name: m.name, offset: m.bits_offset / 8, size: sizeOf(mt), type: fieldType(mt, where) };
    });
    layouts.push({ name: t.name, size: t.size ?? 0, fields });
  }
  return layouts.sort((a, b) => a.name.localeCompare(b.name));
}

/** One line per struct, every field's name, offset, size and type: what the fingerprint hashes. */
function canonical(layouts: readonly StructLayout[]): string {
  const type = (t: FieldType): string => {
    switch (t.kind) {
      case 'scalar':
        return t.scalar;
      case 'chars':
        return `char[${t.length}]`;
      case 'struct':
        return `struct ${t.struct}`;
      case 'array':
        return `${type(t.element)}[${t.length}]`;
    }
  };
  return [...layouts]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((l) => `${l.name} ${l.size}: ${l.fields.map((f) => `${f.name}@${f.offset}+${f.size} ${type(f.type)}`).join(', ')}`)
    .join('\n');
}

/**
 * The fingerprint of the named structs' layouts: 16 hex digits of their
 * sha256. A struct missing from `layouts` is an error: the object does not
 * share it.
 */
export function abiFingerprint(layouts: readonly StructLayout[], structs: readonly string[]): string {
  const byName = new Map(layouts.map((l) => [l.name, l]));
  const missing = structs.filter((s) => !byName.has(s));
  if (missing.length) throw new Error(`struct ${missing.join(', ')} missing from the object's BTF`);
  return createHash('sha256').update(canonical(structs.map((s) => byName.get(s)!))).digest('hex').slice(0, 16);
}

/** KRSI_ABI_VERSION, which every record header carries (16 bits): the fingerprint's first four digits. */
export function abiVersionOf(fingerprint: string): number {
  return parseInt(fingerprint.slice(0, 4), 16);
}

// Reads struct layouts from a BPF object's BTF (through bpftool's JSON) and
// integer constants from a C header (through clang's macro dump). Build-time
// tooling for the ABI generator and the test that keeps it honest.
import { execFileSync } from 'node:child_process';

interface BtfMember {
  name: string;
  type_id: number;
  bits_offset: number;
  bitfield_size?: number;
}
interface BtfType {
  id: number;
  kind: string;
  name?: string;
  size?: number;
  type_id?: number;
  nr_elems?: number;
  members?: BtfMember[];
  encoding?: string;
}

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

export function readBtfTypes(objectPath: string): BtfType[] {
  const json = execFileSync('bpftool', ['-j', 'btf', 'dump', 'file', objectPath], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  const parsed = JSON.parse(json) as { types: BtfType[] };
  return parsed.types;
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

/**
 * Integer #defines whose names start with `prefix`, evaluated by clang
 * itself (a macro like `(1 << 3)` or `(A + 2 * B)` comes back as a number).
 */
export function readHeaderConstants(headerPath: string, prefix: string, includeDirs: readonly string[] = []): Map<string, number> {
  const names = execFileSync('clang', ['-dM', '-E', '-x', 'c', ...includeDirs.map((d) => `-I${d}`), headerPath], {
    encoding: 'utf8',
  })
    .split('\n')
    .map((line) => /^#define (\w+) (.+)$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null && m[1]!.startsWith(prefix) && !m[1]!.endsWith('_H'))
    .map((m) => m[1]!)
    .sort();
  if (names.length === 0) return new Map();
  // Let the compiler evaluate each one: an enum initialiser must be an
  // integer constant expression, so anything else fails loudly here.
  const probe = [
    `#include "${headerPath}"`,
    ...names.map((n) => `long long __value_${n} = ${n};`),
  ].join('\n');
  const asm = execFileSync('clang', ['-x', 'c', '-S', '-O0', '-o', '-', ...includeDirs.map((d) => `-I${d}`), '-'], {
    input: probe,
    encoding: 'utf8',
  });
  const values = new Map<string, number>();
  for (const name of names) {
    const re = new RegExp(`^__value_${name}:\\s*\\n\\s*\\.quad\\s+(-?\\d+)`, 'm');
    const m = re.exec(asm);
    if (!m) throw new Error(`constant ${name} is not an integer constant expression`);
    values.set(name, Number(m[1]));
  }
  return values;
}

// The one BTF reader (Documentation/bpf/btf.rst), without libbpf or bpftool:
// the types of a BPF object (its .BTF section), which the ABI generator
// (scripts/gen-abi.ts) and the agent's check at load (src/agent/abi-check.ts)
// lay out the same way, and the parameter count of a kernel function, which
// picks a program's variant (src/agent/kernel-features.ts).
import { readFileSync } from 'node:fs';

export interface BtfMember {
  name: string;
  type_id: number;
  bits_offset: number;
  bitfield_size?: number;
}

/** A BTF type, with the fields bpftool's JSON gives them. */
export interface BtfType {
  id: number;
  kind: string;
  name?: string;
  size?: number;
  type_id?: number;
  nr_elems?: number;
  members?: BtfMember[];
  encoding?: string;
}

// BTF_KIND_*, by number (include/uapi/linux/btf.h).
const KINDS = [
  'UNKN', 'INT', 'PTR', 'ARRAY', 'STRUCT', 'UNION', 'ENUM', 'FWD', 'TYPEDEF', 'VOLATILE', 'CONST', 'RESTRICT',
  'FUNC', 'FUNC_PROTO', 'VAR', 'DATASEC', 'FLOAT', 'DECL_TAG', 'TYPE_TAG', 'ENUM64',
] as const;
const BTF_MAGIC = 0xeb9f;
// BTF_INT_ENCODING(): which of SIGNED (1), CHAR (2), BOOL (4).
const INT_ENCODINGS: Readonly<Record<number, string>> = { 1: 'SIGNED', 2: 'CHAR', 4: 'BOOL' };

/** The bytes of an ELF64 little-endian file's section, or null when it has none of that name. */
function elfSection(elf: Buffer, wanted: string): Buffer | null {
  if (elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1) throw new Error('not a 64-bit little-endian ELF file');
  const shoff = Number(elf.readBigUInt64LE(0x28));
  const shentsize = elf.readUInt16LE(0x3a);
  const shnum = elf.readUInt16LE(0x3c);
  const strtab = shoff + elf.readUInt16LE(0x3e) * shentsize;
  const namesAt = Number(elf.readBigUInt64LE(strtab + 24));
  for (let i = 0; i < shnum; i++) {
    const sh = shoff + i * shentsize;
    const nameStart = namesAt + elf.readUInt32LE(sh);
    const name = elf.toString('latin1', nameStart, elf.indexOf(0, nameStart));
    if (name !== wanted) continue;
    const offset = Number(elf.readBigUInt64LE(sh + 24));
    return elf.subarray(offset, offset + Number(elf.readBigUInt64LE(sh + 32)));
  }
  return null;
}

/** Where a raw BTF blob's sections lie (its header), little-endian as on x86-64. */
interface BtfSections {
  typesAt: number;
  typesEnd: number;
  stringsAt: number;
  stringsEnd: number;
}

function btfSections(btf: Buffer): BtfSections {
  if (btf.length < 24 || btf.readUInt16LE(0) !== BTF_MAGIC) throw new Error('not BTF (bad magic)');
  const hdrLen = btf.readUInt32LE(4);
  const typesAt = hdrLen + btf.readUInt32LE(8);
  const stringsAt = hdrLen + btf.readUInt32LE(16);
  const s = { typesAt, typesEnd: typesAt + btf.readUInt32LE(12), stringsAt, stringsEnd: stringsAt + btf.readUInt32LE(20) };
  if (s.typesEnd > btf.length || s.stringsEnd > btf.length) throw new Error('BTF truncated');
  return s;
}

/** One type's common header (struct btf_type) and where its kind's data starts. */
interface RawType {
  id: number;
  kind: (typeof KINDS)[number];
  vlen: number;
  kflag: boolean;
  nameOff: number;
  sizeOrType: number;
  /** Offset of the data that follows the 12-byte header. */
  data: number;
}

/** Bytes of a kind's data after the header (Documentation/bpf/btf.rst). */
function dataBytes(kind: RawType['kind'], vlen: number): number {
  switch (kind) {
    case 'INT':
    case 'VAR':
    case 'DECL_TAG':
      return 4;
    case 'ARRAY':
      return 12;
    case 'STRUCT':
    case 'UNION':
    case 'DATASEC':
    case 'ENUM64':
      return 12 * vlen;
    case 'ENUM':
    case 'FUNC_PROTO':
      return 8 * vlen;
    case 'UNKN':
      throw new Error('BTF has a type of a kind unknown here');
    default:
      return 0;
  }
}

/** Calls visit for each type in id order (from 1) until it returns true. */
function walkTypes(btf: Buffer, s: BtfSections, visit: (t: RawType) => boolean | void): void {
  for (let at = s.typesAt, id = 1; at + 12 <= s.typesEnd; id++) {
    const info = btf.readUInt32LE(at + 4);
    const t: RawType = {
      id,
      kind: KINDS[(info >>> 24) & 0x1f] ?? 'UNKN',
      vlen: info & 0xffff,
      kflag: info >>> 31 === 1,
      nameOff: btf.readUInt32LE(at),
      sizeOrType: btf.readUInt32LE(at + 8),
      data: at + 12,
    };
    if (visit(t) === true) return;
    at = t.data + dataBytes(t.kind, t.vlen);
  }
}

/** Every type of a raw BTF blob, numbered from 1 as the kernel and bpftool number them. */
export function parseBtf(btf: Buffer): BtfType[] {
  const s = btfSections(btf);
  const str = (off: number): string => btf.toString('utf8', s.stringsAt + off, btf.indexOf(0, s.stringsAt + off));
  const types: BtfType[] = [];
  walkTypes(btf, s, ({ id, kind, vlen, kflag, nameOff, sizeOrType, data: at }) => {
    const t: BtfType = { id, kind };
    if (nameOff) t.name = str(nameOff);
    switch (kind) {
      case 'INT':
        t.size = sizeOrType;
        t.encoding = INT_ENCODINGS[(btf.readUInt32LE(at) >>> 24) & 0x0f] ?? '(none)';
        break;
      case 'ARRAY':
        t.type_id = btf.readUInt32LE(at);
        t.nr_elems = btf.readUInt32LE(at + 8);
        break;
      case 'STRUCT':
      case 'UNION':
        t.size = sizeOrType;
        t.members = [];
        for (let i = 0; i < vlen; i++, at += 12) {
          const offset = btf.readUInt32LE(at + 8);
          const m: BtfMember = { name: str(btf.readUInt32LE(at)), type_id: btf.readUInt32LE(at + 4), bits_offset: kflag ? offset & 0xffffff : offset };
          if (kflag && offset >>> 24) m.bitfield_size = offset >>> 24;
          t.members.push(m);
        }
        break;
      case 'ENUM':
      case 'FUNC_PROTO':
      case 'ENUM64':
      case 'DATASEC':
      case 'FLOAT':
        t.size = sizeOrType;
        break;
      default:
        t.type_id = sizeOrType;
    }
    types.push(t);
  });
  return types;
}

/**
 * The number of parameters of the function `name` (a BTF FUNC), or
 * undefined if the BTF has no such function or cannot be read. Made for the
 * kernel's BTF (some 100k types): no type is built, the name is looked up
 * once in the string section, and the walk stops at the prototype.
 */
export function funcParamCount(btf: Buffer, name: string): number | undefined {
  let s: BtfSections;
  try {
    s = btfSections(btf);
  } catch {
    return undefined;
  }
  // Offsets of the name in the string section (deduplicated, so once as a rule).
  const wanted = new Set<number>();
  const needle = Buffer.from(`\0${name}\0`);
  for (let at = btf.indexOf(needle, s.stringsAt); at >= 0 && at + needle.length <= s.stringsEnd; at = btf.indexOf(needle, at + 1)) {
    wanted.add(at + 1 - s.stringsAt);
  }
  if (wanted.size === 0) return undefined;
  // A function's prototype may come before or after it.
  const vlens: number[] = [];
  let protoId: number | undefined;
  try {
    walkTypes(btf, s, (t) => {
      vlens[t.id] = t.kind === 'FUNC_PROTO' ? t.vlen : -1;
      if (protoId === undefined && t.kind === 'FUNC' && wanted.has(t.nameOff)) protoId = t.sizeOrType;
      return protoId !== undefined && protoId <= t.id;
    });
  } catch {
    return undefined;
  }
  const n = protoId === undefined ? undefined : vlens[protoId];
  return n === undefined || n < 0 ? undefined : n;
}

/** funcParamCount() of the running kernel's BTF; undefined without it. */
export function kernelFuncParamCount(name: string, btfPath = '/sys/kernel/btf/vmlinux'): number | undefined {
  let btf: Buffer;
  try {
    btf = readFileSync(btfPath);
  } catch {
    return undefined;
  }
  return funcParamCount(btf, name);
}

/** The BTF types of a BPF object file (its .BTF section). */
export function readObjectBtf(objectPath: string): BtfType[] {
  const section = elfSection(readFileSync(objectPath), '.BTF');
  if (!section) throw new Error(`${objectPath} has no .BTF section: build it with clang -g`);
  return parseBtf(section);
}

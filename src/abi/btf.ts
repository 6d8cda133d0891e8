// Reads the BTF of a BPF object (its .BTF ELF section) and lays out its
// structs: the generator (scripts/gen-abi.ts) and the agent's check at load
// (./fingerprint.ts) read the ABI the same way, without bpftool.
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

/** Every type of a raw BTF blob, numbered from 1 as the kernel and bpftool number them. */
export function parseBtf(btf: Buffer): BtfType[] {
  if (btf.readUInt16LE(0) !== BTF_MAGIC) throw new Error('not BTF (bad magic)');
  const hdrLen = btf.readUInt32LE(4);
  const typesAt = hdrLen + btf.readUInt32LE(8);
  const typesEnd = typesAt + btf.readUInt32LE(12);
  const stringsAt = hdrLen + btf.readUInt32LE(16);
  const str = (off: number): string => btf.toString('utf8', stringsAt + off, btf.indexOf(0, stringsAt + off));
  const types: BtfType[] = [];
  for (let at = typesAt, id = 1; at < typesEnd; id++) {
    const nameOff = btf.readUInt32LE(at);
    const info = btf.readUInt32LE(at + 4);
    const sizeOrType = btf.readUInt32LE(at + 8);
    const vlen = info & 0xffff;
    const kind = KINDS[(info >>> 24) & 0x1f] ?? 'UNKN';
    const kflag = info >>> 31 === 1;
    const t: BtfType = { id, kind };
    if (nameOff) t.name = str(nameOff);
    at += 12;
    switch (kind) {
      case 'INT':
        t.size = sizeOrType;
        t.encoding = INT_ENCODINGS[(btf.readUInt32LE(at) >>> 24) & 0x0f] ?? '(none)';
        at += 4;
        break;
      case 'ARRAY':
        t.type_id = btf.readUInt32LE(at);
        t.nr_elems = btf.readUInt32LE(at + 8);
        at += 12;
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
        t.size = sizeOrType;
        at += 8 * vlen;
        break;
      case 'ENUM64':
      case 'DATASEC':
        t.size = sizeOrType;
        at += 12 * vlen;
        break;
      case 'VAR':
      case 'DECL_TAG':
        t.type_id = sizeOrType;
        at += 4;
        break;
      case 'FLOAT':
        t.size = sizeOrType;
        break;
      default:
        t.type_id = sizeOrType;
    }
    types.push(t);
  }
  return types;
}

/** The BTF types of a BPF object file (its .BTF section). */
export function readObjectBtf(objectPath: string): BtfType[] {
  const section = elfSection(readFileSync(objectPath), '.BTF');
  if (!section) throw new Error(`${objectPath} has no .BTF section: build it with clang -g`);
  return parseBtf(section);
}

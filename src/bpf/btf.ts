// Just enough of the BTF format (Documentation/bpf/btf.rst) to answer one
// question of the kernel's BTF, /sys/kernel/btf/vmlinux: how many arguments
// a kernel function takes. A linear walk over the type section, no libbpf.
import { readFileSync } from 'node:fs';

const BTF_MAGIC = 0xeb9f;
const KIND_FUNC = 12;
const KIND_FUNC_PROTO = 13;

/** Bytes that follow the 12-byte common header of a type of this kind, or undefined for a kind unknown here. */
function extraBytes(kind: number, vlen: number): number | undefined {
  switch (kind) {
    case 1: // INT
    case 14: // VAR
    case 17: // DECL_TAG
      return 4;
    case 2: // PTR
    case 7: // FWD
    case 8: // TYPEDEF
    case 9: // VOLATILE
    case 10: // CONST
    case 11: // RESTRICT
    case 12: // FUNC
    case 16: // FLOAT
    case 18: // TYPE_TAG
      return 0;
    case 3: // ARRAY
      return 12;
    case 4: // STRUCT
    case 5: // UNION
    case 15: // DATASEC
    case 19: // ENUM64
      return 12 * vlen;
    case 6: // ENUM
    case 13: // FUNC_PROTO
      return 8 * vlen;
    default:
      return undefined;
  }
}

/**
 * The number of parameters of the function `name` (a BTF FUNC), or
 * undefined if the BTF has no such function or cannot be read here.
 */
export function funcParamCount(btf: Buffer, name: string): number | undefined {
  if (btf.length < 24) return undefined;
  const le = btf.readUInt16LE(0) === BTF_MAGIC;
  if (!le && btf.readUInt16BE(0) !== BTF_MAGIC) return undefined;
  const u32 = (off: number): number => (le ? btf.readUInt32LE(off) : btf.readUInt32BE(off));
  const hdrLen = u32(4);
  const typeStart = hdrLen + u32(8);
  const typeEnd = typeStart + u32(12);
  const strStart = hdrLen + u32(16);
  const strEnd = strStart + u32(20);
  if (typeEnd > btf.length || strEnd > btf.length) return undefined;

  // Offsets of the name in the string section (deduplicated, so once as a rule).
  const wanted = new Set<number>();
  const needle = Buffer.from(`\0${name}\0`);
  for (let at = btf.indexOf(needle, strStart); at >= 0 && at + needle.length <= strEnd; at = btf.indexOf(needle, at + 1)) {
    wanted.add(at + 1 - strStart);
  }
  if (wanted.size === 0) return undefined;

  // Type ids start at 1; a function's prototype may come before or after it.
  const offsets: number[] = [0];
  let protoId: number | undefined;
  for (let off = typeStart; off + 12 <= typeEnd; ) {
    const info = u32(off + 4);
    const kind = (info >>> 24) & 0x1f;
    const vlen = info & 0xffff;
    const extra = extraBytes(kind, vlen);
    if (extra === undefined) return undefined;
    offsets.push(off);
    if (protoId === undefined && kind === KIND_FUNC && wanted.has(u32(off))) protoId = u32(off + 8);
    // The walk stops as soon as the prototype is known (it usually comes first).
    if (protoId !== undefined && protoId < offsets.length) break;
    off += 12 + extra;
  }
  if (protoId === undefined || protoId === 0) return undefined;
  const proto = offsets[protoId];
  if (proto === undefined) return undefined;
  const info = u32(proto + 4);
  return ((info >>> 24) & 0x1f) === KIND_FUNC_PROTO ? info & 0xffff : undefined;
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

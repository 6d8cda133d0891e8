// FNV-1a, 64 bits: how environment variable names are keyed in the kernel
// (bpf/lib/policy.bpf.c hashes the names it reads the same way). A collision
// can only make a name match that was not listed, never hide one that was.
const OFFSET = 0xcbf29ce484222325n;
const PRIME = 0x100000001b3n;
const U64 = (1n << 64n) - 1n;

export function fnv1a64(bytes: Uint8Array): bigint {
  let h = OFFSET;
  for (const b of bytes) h = ((h ^ BigInt(b)) * PRIME) & U64;
  return h;
}

// The facts of an event as JSON (EventFacts on the wire: `krsi policy test`
// fixtures, `krsi explain`): the value schemas each hook family's module
// (src/families/) uses for its facts. 64-bit numbers are decimal strings (safe
// integers accepted too); an executable is {path, dev, ino, sha256} or its path.
import { z } from 'zod';
import type { BinaryFacts } from './evaluate.js';

export const u32 = z.number().int().min(0).max(0xffff_ffff);
export const U64_MAX = (1n << 64n) - 1n;
/** A 64-bit unsigned number: a decimal string on the wire; a safe integer is accepted too. */
export const u64 = z
  .union([z.number().int().min(0).max(Number.MAX_SAFE_INTEGER), z.string().regex(/^\d{1,20}$/, 'a decimal 64-bit number')])
  .transform((v, ctx) => {
    const n = BigInt(v);
    if (n > U64_MAX) {
      ctx.addIssue({ code: 'custom', message: `${String(v)} is larger than 2^64-1` });
      return z.NEVER;
    }
    return n;
  });
export const majorMinor = z.string().regex(/^\d+:\d+$/, 'major:minor, e.g. 8:1');
export const nonEmpty = z.string().min(1);

export const BinaryFactsObject = z
  .object({
    path: nonEmpty.describe('the path of the executable'),
    dev: majorMinor.optional(),
    ino: u64.optional(),
    sha256: z
      .string()
      .regex(/^[0-9a-f]{64}$/, '64 lower-case hex digits')
      .optional(),
  })
  .strict();

function binaryFacts(v: z.output<typeof BinaryFactsObject>): BinaryFacts {
  const out: BinaryFacts = { path: v.path };
  if (v.dev !== undefined) out.dev = v.dev;
  if (v.ino !== undefined) out.ino = v.ino;
  if (v.sha256 !== undefined) out.sha256 = v.sha256;
  return out;
}

/** An executable: {path, dev?, ino?, sha256?}, or just its path. */
export const BinaryFactsSchema = z
  .union([nonEmpty, BinaryFactsObject])
  .transform((v): BinaryFacts => (typeof v === 'string' ? { path: v } : binaryFacts(v)));

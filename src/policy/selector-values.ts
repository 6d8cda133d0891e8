// The values selectors take in policies (paths, ids, sets of values, lists),
// as zod schemas: the pieces of MatchSchema that each hook family's module
// (src/families/) puts together for its own selectors.
import { z } from 'zod';

/** A policy, rule or list name. */
export const nameSchema = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'lower-case letters, digits and dashes, at most 63, starting and ending with a letter or digit')
  .describe('name (lower-case letters, digits and dashes; at most 63)');

// Kernel strings in policy tables are at most 255 bytes (a 256-byte key with
// its NUL); longer ones could never match, so they are refused up front.
export const MAX_STRING_BYTES = 255;
export const boundedString = (what: string) =>
  z
    .string()
    .min(1, `${what} is empty`)
    .refine((s) => Buffer.byteLength(s) <= MAX_STRING_BYTES, `${what} is longer than ${MAX_STRING_BYTES} bytes`)
    .refine((s) => !s.includes('\0'), `${what} contains a NUL byte`);

export const absolutePath = boundedString('path')
  .refine((s) => s.startsWith('/'), 'must be an absolute path')
  .describe('absolute path (at most 255 bytes)');
export const listRefs = z.array(nameSchema).min(1).describe('names of dynamic lists (`spec.lists`) whose entries match');

export const oneOrMore = <T extends z.ZodType>(item: T) => z.array(item).min(1);

export const InodeSchema = z
  .object({
    dev: z.string().regex(/^\d+:\d+$/, 'major:minor').describe("device of the file's file system, major:minor (`stat -c %Hd:%Ld`)"),
    ino: z
      .union([z.number().int().min(0), z.string().regex(/^\d+$/, 'a decimal inode number')])
      .transform((v) => BigInt(v))
      .describe('inode number (`stat -c %i`); a decimal string above 2^53'),
  })
  .strict()
  .describe('file by device and inode: {dev: "8:1", ino: 1234}');

export const sha256 = z
  .string()
  .regex(/^[0-9a-f]{64}$/, 'a sha256 digest: 64 lower-case hex digits')
  .describe('sha256 digest (64 lower-case hex digits)');

/** Path-valued dimensions: exact paths, prefixes, globs, lists. Any one matching suffices. */
export const PathSelectorSchema = z
  .object({
    path: oneOrMore(absolutePath).optional().describe('exact paths'),
    prefix: oneOrMore(absolutePath).optional().describe('path prefixes, compared byte by byte (`/tmp/` does not match `/tmpx`)'),
    glob: oneOrMore(boundedString('glob').describe('glob (at most 255 bytes)')).optional().describe('globs: `*` within a path component, `**` across, `?`, `[a-z]`, `[!a-z]`'),
    list: listRefs.optional(),
    not: z.boolean().optional().describe('match when none of the above does'),
  })
  .strict();

/** The executable: a path selector plus identities that no name can dodge. */
export const BinarySelectorSchema = PathSelectorSchema.extend({
  inode: oneOrMore(InodeSchema).optional().describe('files by device and inode: every name and link of them'),
  sha256: oneOrMore(sha256).optional().describe('files by content (IMA computes the hash in the kernel)'),
}).strict();

export const id = z.number().int().min(0).max(0xffff_ffff).describe('numeric id (0 to 4294967295)');
export const idSet = z.union([
  oneOrMore(id).describe('any of these ids'),
  z
    .object({
      in: oneOrMore(id).optional().describe('any of these ids'),
      list: listRefs.optional(),
      not: z.boolean().optional().describe('match when none of the above does'),
    })
    .strict(),
]);

export const CgroupSelectorSchema = z
  .object({
    path: oneOrMore(absolutePath).optional().describe('cgroup v2 directories (under /sys/fs/cgroup): the cgroup and all below it'),
    id: oneOrMore(
      z
        .union([z.number().int().min(1), z.string().regex(/^\d+$/, 'a decimal cgroup id')])
        .transform((v) => BigInt(v))
        .describe('cgroup v2 id (the inode number of its directory; a decimal string above 2^53)'),
    )
      .optional()
      .describe('cgroups by id: exactly these cgroups'),
    list: listRefs.optional(),
  })
  .strict();

/** The two forms of a set-valued selector: a list of values, or {in, list, not}. */
export const valueSet = <T extends z.ZodType>(item: T) =>
  z.union([
    oneOrMore(item).describe('any of these values'),
    z
      .object({
        in: oneOrMore(item).optional().describe('any of these values'),
        list: listRefs.optional(),
        not: z.boolean().optional().describe('match when none of the above does'),
      })
      .strict(),
  ]);

export const stringSet = (what: string) => valueSet(boundedString(what).describe(`${what} (at most 255 bytes)`));

export const device = z.string().regex(/^\d+:\d+$/, 'major:minor').describe('block device, major:minor (8:1)');

// Bus names as the driver model has them (struct bus_type's name): usb, scsi,
// pci, virtio, mmc, nvme's pci, ...; the kernel reads at most 15 bytes of one.
export const busName = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{1,15}$/, 'a bus name as /sys/bus lists them (usb, scsi, pci, virtio, mmc), at most 15 characters')
  .describe('bus name, as in /sys/bus (usb, scsi, pci, virtio, mmc)');
export const busSet = z.union([
  oneOrMore(busName).describe('any of these buses'),
  z
    .object({
      in: oneOrMore(busName).describe('any of these buses'),
      not: z.boolean().optional().describe('match when the device is on none of them'),
    })
    .strict(),
]);

export const cidr = z
  .string()
  .refine((s) => parseCidr(s) !== null, 'an IPv4 or IPv6 address, optionally with a /prefix length')
  .describe('IPv4 or IPv6 address, or network with a /prefix length (10.0.0.0/8, 2001:db8::/32)');
export const port = z
  .union([z.number().int().min(1).max(65535), z.string().regex(/^\d{1,5}-\d{1,5}$/, 'a port or a range like 8000-8100')])
  .describe('port (1 to 65535), or inclusive range as a string ("8000-8100")');

/** An address with an optional prefix length, as 16 bytes (IPv4 mapped into ::ffff:0:0/96). */
export interface Cidr {
  bytes: Uint8Array;
  prefixLen: number;
}

export function parseCidr(text: string): Cidr | null {
  const [addr, len, ...rest] = text.split('/');
  if (addr === undefined || rest.length > 0) return null;
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(addr);
  const bytes = new Uint8Array(16);
  let max: number;
  let offset: number;
  if (v4) {
    const parts = v4.slice(1).map(Number);
    if (parts.some((p) => p > 255)) return null;
    bytes[10] = 0xff;
    bytes[11] = 0xff;
    bytes.set(parts, 12);
    max = 32;
    offset = 96;
  } else {
    const words = expandIpv6(addr);
    if (!words) return null;
    words.forEach((w, i) => {
      bytes[2 * i] = w >> 8;
      bytes[2 * i + 1] = w & 0xff;
    });
    max = 128;
    offset = 0;
  }
  let prefix = max;
  if (len !== undefined) {
    if (!/^\d{1,3}$/.test(len) || Number(len) > max) return null;
    prefix = Number(len);
  }
  return { bytes, prefixLen: offset + prefix };
}

function expandIpv6(text: string): number[] | null {
  if (!/^[0-9a-fA-F:]+$/.test(text) || text.split('::').length > 2) return null;
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const parse = (s: string | undefined): number[] | null => {
    if (s === undefined || s === '') return [];
    const parts = s.split(':');
    if (parts.some((p) => !/^[0-9a-fA-F]{1,4}$/.test(p))) return null;
    return parts.map((p) => parseInt(p, 16));
  };
  const h = parse(head);
  const t = parse(tail);
  if (!h || !t) return null;
  if (tail === undefined) return h.length === 8 ? h : null;
  const missing = 8 - h.length - t.length;
  if (missing < 1) return null;
  return [...h, ...new Array<number>(missing).fill(0), ...t];
}

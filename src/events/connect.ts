// Connect records (struct krsi_connect_event) into connect events.
import { z } from 'zod';
import { KRSI_CONNECT_ADDRESS_KNOWN, decodeKrsiConnectEvent } from '../abi/generated.js';
import type { DecodeContext } from './decode.js';
import { decodeHookHead } from './hook-common.js';
import { hookEventSchema } from './event-parts.js';

const AF_INET = 2;
const AF_INET6 = 10;

const FAMILIES: Readonly<Record<number, string>> = {
  0: 'unspec',
  1: 'unix',
  [AF_INET]: 'inet',
  [AF_INET6]: 'inet6',
  16: 'netlink',
  17: 'packet',
  40: 'vsock',
};

const SOCKET_TYPES: Readonly<Record<number, string>> = {
  1: 'stream',
  2: 'dgram',
  3: 'raw',
  4: 'rdm',
  5: 'seqpacket',
  6: 'dccp',
  10: 'packet',
};

export function familyName(family: number): string {
  return FAMILIES[family] ?? `af_${family}`;
}

/**
 * 16 address bytes as text: IPv4 (mapped into ::ffff:0:0/96) dotted when
 * the family is AF_INET, otherwise IPv6 as RFC 5952 writes it (lower case,
 * the longest run of two or more zero groups as ::, a mapped IPv4 tail dotted).
 */
export function formatAddress(bytes: Uint8Array, family: number): string {
  const b = Array.from({ length: 16 }, (_, i) => bytes[i] ?? 0);
  const mapped = b.slice(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
  const dotted = b.slice(12).join('.');
  if (family === AF_INET) return dotted;
  if (mapped) return `::ffff:${dotted}`;
  const groups = Array.from({ length: 8 }, (_, i) => (b[2 * i]! << 8) | b[2 * i + 1]!);
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

export function decodeConnectRecord(view: DataView, ctx: DecodeContext): ConnectEvent {
  const raw = decodeKrsiConnectEvent(view);
  const known = (raw.flags & KRSI_CONNECT_ADDRESS_KNOWN) !== 0;
  return {
    ...decodeHookHead('connect', raw, ctx),
    connect: {
      family: familyName(raw.family),
      address: known ? formatAddress(raw.addr, raw.family) : null,
      port: known ? raw.port : null,
      socket_type: SOCKET_TYPES[raw.type] ?? `type_${raw.type}`,
      protocol: raw.protocol,
    },
  };
}

// --- The events (docs/events.md) ---------------------------------------------

export const ConnectSchema = z
  .object({
    family: z.string().describe('address family given to connect(2): inet, inet6, unix, unspec, netlink, ... or af_N'),
    address: z.string().nullable().describe('destination address (IPv4 dotted, IPv6 RFC 5952 text); null without an IP address'),
    port: z.number().int().min(0).max(65535).nullable().describe('destination port; null without an IP address'),
    socket_type: z.string().describe('stream, dgram, raw, seqpacket, ... or type_N'),
    protocol: z.number().int().min(0).max(65535).describe('socket protocol (IPPROTO_*: 6 tcp, 17 udp, ...)'),
  })
  .strict();

export const ConnectEventSchema = hookEventSchema('connect', {
  connect: ConnectSchema,
});

export type ConnectEvent = z.infer<typeof ConnectEventSchema>;

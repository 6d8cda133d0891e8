// Connections (bpf/hooks/connect.bpf.c): the connect policy hook.
import { z } from 'zod';
import { KRSI_DIM_ADDRESS, KRSI_DIM_PORT, KRSI_EVENT_CONNECT, KRSI_HOOK_SOCKET_CONNECT, KRSI_PHOOK_CONNECT } from '../abi/generated.js';
import { ConnectEventSchema, decodeConnectRecord } from '../events/connect.js';
import { cidr, parseCidr, port, valueSet } from '../policy/selector-values.js';
import { defineFamily, eventSpec, POLICY_NEEDS, policyHook } from './family.js';

export const connect = defineFamily({
  name: 'connect',
  programs: [{ program: 'connect_check', hook: 'socket_connect', counter: KRSI_HOOK_SOCKET_CONNECT, role: 'enforcing', needs: POLICY_NEEDS }],
  policyHooks: [
    policyHook('connect', KRSI_PHOOK_CONNECT, { selectors: ['address', 'port'], programs: ['connect_check'] }),
  ],
  selectors: {
    address: { dim: KRSI_DIM_ADDRESS, lists: ['address'], schema: valueSet(cidr), description: 'connect: destination address or network' },
    port: { dim: KRSI_DIM_PORT, lists: ['port'], schema: valueSet(port), description: 'connect: destination port' },
  },
  facts: {
    address: z.string().refine((s) => !s.includes('/') && parseCidr(s) !== null, 'an IPv4 or IPv6 address'),
    port: z.number().int().min(0).max(65535),
  },
  records: [{ type: KRSI_EVENT_CONNECT, decode: decodeConnectRecord }],
  events: [
    eventSpec({
      schema: ConnectEventSchema,
      doc: `From the \`socket_connect\` LSM hook: \`connect(2)\` on any socket. Datagrams sent
with \`sendto(2)\` on an unconnected socket, and TCP Fast Open (\`MSG_FASTOPEN\`),
do not connect and are not seen.`,
      what: (e) =>
        e.connect.address === null
          ? `${e.connect.family} ${e.connect.socket_type}`
          : `${e.connect.family === 'inet6' ? `[${e.connect.address}]` : e.connect.address}:${e.connect.port} ${e.connect.socket_type}`,
    }),
  ],
});

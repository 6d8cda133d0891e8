// enum bpf_prog_type, by the names the prog_type selector and bpf events use
// (BPF_PROG_TYPE_ without its prefix, lower case). The kernel's numbering is
// ABI: it only grows.
export const BPF_PROG_TYPES = [
  'unspec',
  'socket_filter',
  'kprobe',
  'sched_cls',
  'sched_act',
  'tracepoint',
  'xdp',
  'perf_event',
  'cgroup_skb',
  'cgroup_sock',
  'lwt_in',
  'lwt_out',
  'lwt_xmit',
  'sock_ops',
  'sk_skb',
  'cgroup_device',
  'sk_msg',
  'raw_tracepoint',
  'cgroup_sock_addr',
  'lwt_seg6local',
  'lirc_mode2',
  'sk_reuseport',
  'flow_dissector',
  'cgroup_sysctl',
  'raw_tracepoint_writable',
  'cgroup_sockopt',
  'tracing',
  'struct_ops',
  'ext',
  'lsm',
  'sk_lookup',
  'syscall',
  'netfilter',
] as const;
export type BpfProgTypeName = (typeof BPF_PROG_TYPES)[number];

export function progTypeNumber(name: BpfProgTypeName): number {
  return BPF_PROG_TYPES.indexOf(name);
}

/** A program type's name, or type_N for one newer than this list. */
export function progTypeName(n: number): string {
  return BPF_PROG_TYPES[n] ?? `type_${n}`;
}

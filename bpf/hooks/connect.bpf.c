// SPDX-License-Identifier: GPL-2.0
/*
 * Outbound connections: the policy's connect hook (lsm/socket_connect).
 *
 * The address selector sees the destination as an IPv6 address (IPv4 as
 * ::ffff:a.b.c.d, so IPv4 rules also cover an IPv6 socket's v4-mapped
 * destinations), the port selector its port.  Only AF_INET and AF_INET6
 * addresses have either: for any other family (AF_UNIX, AF_UNSPEC to
 * disconnect, AF_NETLINK, ...) and for an address too short for its family,
 * both are unknown, and rules with an address or port selector match
 * neither way (not even with not: true).
 *
 * What connect(2) does not cover: datagrams sent with sendto(2) without a
 * connect, and TCP Fast Open (sendto with MSG_FASTOPEN) never come here.
 */
#include "common.h"
#include <bpf/bpf_endian.h>
#include "hook.h"
#include "maps.h"
#include "outcome.h"
#include "policy.h"
#include "task.h"

#define AF_INET 2
#define AF_INET6 10

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct krsi_connect_event);
} connect_scratch SEC(".maps");

/*
 * The destination of address (a kernel copy of the caller's sockaddr) into
 * st->net.addr, its port into *port and its family into *family; returns 1
 * when it is an AF_INET or AF_INET6 address, 0 when it has no IP address.
 */
static __always_inline int read_destination(struct policy_eval *st, struct sockaddr *address,
					    int addrlen, __u16 *family, __u16 *port)
{
	__u16 net_port = 0;

	__builtin_memset(st->net.addr, 0, sizeof(st->net.addr));
	*family = 0;
	*port = 0;
	if (addrlen < (int)sizeof(*family) || bpf_probe_read_kernel(family, sizeof(*family), &address->sa_family))
		return 0;
	if (*family == AF_INET && addrlen >= (int)sizeof(struct sockaddr_in)) {
		struct sockaddr_in *sin = (struct sockaddr_in *)address;

		st->net.addr[10] = 0xff;
		st->net.addr[11] = 0xff;
		if (bpf_probe_read_kernel(&st->net.addr[12], 4, &sin->sin_addr) ||
		    bpf_probe_read_kernel(&net_port, sizeof(net_port), &sin->sin_port))
			return 0;
	} else if (*family == AF_INET6 && addrlen >= (int)sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)address;

		if (bpf_probe_read_kernel(st->net.addr, 16, &sin6->sin6_addr) ||
		    bpf_probe_read_kernel(&net_port, sizeof(net_port), &sin6->sin6_port))
			return 0;
	} else {
		return 0;
	}
	*port = bpf_ntohs(net_port);
	return 1;
}

SEC("lsm/socket_connect")
int BPF_PROG(connect_check, struct socket *sock, struct sockaddr *address, int addrlen, int ret)
{
	struct krsi_hook_stats *stats;
	struct krsi_connect_event *e;
	struct krsi_policy_ref ref;
	struct policy_eval *st;
	__u16 family = 0, port = 0;
	__u32 zero = 0;
	int known = 0, read = 0, verdict;

	if (ret)
		return krsi_pass(ret);
	stats = hook_enter(KRSI_HOOK_SOCKET_CONNECT);
	st = policy_state();
	if (!st)
		return 0;
	if (krsi_policy_begin(KRSI_PHOOK_CONNECT)) {
		krsi_policy_ids();
		krsi_policy_lineage(1);
		if (krsi_policy_wants(KRSI_DIM_ADDRESS) || krsi_policy_wants(KRSI_DIM_PORT)) {
			known = read_destination(st, address, addrlen, &family, &port);
			read = 1;
		}
		if (krsi_policy_wants(KRSI_DIM_ADDRESS)) {
			if (known) {
				krsi_policy_match_net(KRSI_DIM_ADDRESS);
				krsi_policy_narrow(KRSI_DIM_ADDRESS);
			} else {
				krsi_policy_unknown(KRSI_DIM_ADDRESS);
			}
		}
		if (krsi_policy_wants(KRSI_DIM_PORT)) {
			if (known) {
				st->value[0] = port;
				st->value[1] = st->value[2] = st->value[3] = 0;
				krsi_policy_match_value(KRSI_DIM_PORT);
				krsi_policy_narrow(KRSI_DIM_PORT);
			} else {
				krsi_policy_unknown(KRSI_DIM_PORT);
			}
		}
	}
	krsi_policy_decide();
	if (!policy_noteworthy(&st->ref))
		return 0;

	ref = st->ref;
	verdict = outcome_enforce(&ref, stats);
	e = bpf_map_lookup_elem(&connect_scratch, &zero);
	if (!e)
		return verdict;
	if (!read)
		known = read_destination(st, address, addrlen, &family, &port);
	record_begin_sized(&e->hdr, KRSI_EVENT_CONNECT, sizeof(*e));
	fill_task(&e->task);
	e->policy = ref;
	__builtin_memcpy(e->addr, st->net.addr, sizeof(e->addr));
	e->family = family;
	e->port = port;
	e->type = sock->type;
	e->protocol = BPF_CORE_READ(sock, sk, sk_protocol);
	e->flags = known ? KRSI_CONNECT_ADDRESS_KNOWN : 0;
	e->__pad = 0;
	outcome_report(stats, verdict != 0, e, sizeof(*e));
	return verdict;
}

// SPDX-License-Identifier: GPL-2.0
// A port firewall at the TC hooks: UDP to an allowed port goes on, UDP to
// any other port is dropped, and every decision is counted per port.
#include "firewall.h"

char LICENSE[] SEC("license") = "GPL";

// ANCHOR: parse
/* The UDP header of an IPv4 packet, or NULL for any other packet (ARP,
 * IPv6, ICMP, TCP...) or one too short to hold it. At both TC hooks of an
 * Ethernet device, skb->data points at the Ethernet header. */
static __always_inline struct udphdr *skb_udp(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp;

	if ((void *)(ip + 1) > data_end)
		return NULL;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->protocol != IPPROTO_UDP_NR || ip->ihl < 5)
		return NULL;
	// The IP header is ip->ihl 32-bit words long: 20 bytes without
	// options, up to 60 with them. The UDP header starts where it ends.
	udp = (void *)ip + ip->ihl * 4;
	if ((void *)(udp + 1) > data_end)
		return NULL;
	return udp;
}
// ANCHOR_END: parse

// ANCHOR: count
static __always_inline void count(__u16 port, bool passed)
{
	struct port_count zero = {};
	struct port_count *c = bpf_map_lookup_elem(&counts, &port);

	if (!c) {
		// Another CPU may create the entry first: BPF_NOEXIST then
		// fails, and the lookup below finds that CPU's entry.
		bpf_map_update_elem(&counts, &port, &zero, BPF_NOEXIST);
		c = bpf_map_lookup_elem(&counts, &port);
		if (!c)
			return;
	}
	if (passed)
		__sync_fetch_and_add(&c->passed, 1);
	else
		__sync_fetch_and_add(&c->dropped, 1);
}
// ANCHOR_END: count

// ANCHOR: classify
SEC("tc")
int tc_firewall(struct __sk_buff *skb)
{
	struct udphdr *udp = skb_udp(skb);
	__u16 port;
	bool allow;

	// Not IPv4 UDP (ARP, IPv6, ICMP...): not this firewall's business.
	if (!udp)
		return TC_ACT_OK;
	// The header holds the port in network byte order; the map's keys and
	// the range are in host byte order.
	port = bpf_ntohs(udp->dest);
	allow = (port >= range_lo && port <= range_hi) || bpf_map_lookup_elem(&allowed, &port);
	count(port, allow);
	return allow ? TC_ACT_OK : TC_ACT_SHOT;
}
// ANCHOR_END: classify

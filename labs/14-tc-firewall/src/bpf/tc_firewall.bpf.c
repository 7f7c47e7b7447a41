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

	if ((void *)(ip + 1) > data_end)
		return NULL;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->protocol != IPPROTO_UDP_NR || ip->ihl < 5)
		return NULL;
	// TODO: find the UDP header. It starts where the IP header ends, and
	// the IP header is ip->ihl 32-bit words long: 20 bytes without
	// options, up to 60 with them. Return NULL unless the whole UDP header
	// lies before data_end (the verifier insists on that comparison).
	return NULL;
}
// ANCHOR_END: parse

// ANCHOR: count
// TODO: add one to the `passed` or the `dropped` count of `port` in the
// `counts` map. A port seen for the first time has no entry yet: create
// one (zeroed, BPF_NOEXIST) and look it up again. The hooks of both
// directions, on any CPU, share the map: add with __sync_fetch_and_add.
static __always_inline void count(__u16 port, bool passed)
{
}
// ANCHOR_END: count

// ANCHOR: classify
SEC("tc")
int tc_firewall(struct __sk_buff *skb)
{
	struct udphdr *udp = skb_udp(skb);

	// Not IPv4 UDP (ARP, IPv6, ICMP...): not this firewall's business.
	if (!udp)
		return TC_ACT_OK;
	// TODO: take the destination port (network byte order in the header)
	// and decide: allowed when it is in range_lo..range_hi, both ends
	// included, or a key of the `allowed` map. Count the decision, then
	// return TC_ACT_OK to let the packet go on or TC_ACT_SHOT to drop it.
	return TC_ACT_OK;
}
// ANCHOR_END: classify

// SPDX-License-Identifier: GPL-2.0
/* Accepted by the verifier: an XDP program that drops ICMP (ping) packets
 * and counts every IPv4 packet by protocol. Each check below is one the
 * verifier insists on. */
#include "demo.h"
#include "counter.h"

char LICENSE[] SEC("license") = "GPL";

SEC("xdp")
int drop_icmp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);

	/* Bounds check: without it, reading the headers is rejected. */
	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != ETH_P_IP_BE)
		return XDP_PASS;

	__u32 key = ip->protocol;
	__u64 *count = bpf_map_lookup_elem(&counts, &key);
	/* NULL check: the lookup may find nothing. */
	if (count)
		__sync_fetch_and_add(count, 1);

	return ip->protocol == IPPROTO_ICMP ? XDP_DROP : XDP_PASS;
}

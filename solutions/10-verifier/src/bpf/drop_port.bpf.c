// SPDX-License-Identifier: GPL-2.0
// Program 2: drop the UDP datagrams sent to one port.
#include "frame.h"

char LICENSE[] SEC("license") = "GPL";

// Set by the loader before the program is loaded (--port).
const volatile __u16 blocked_port = 0;

SEC("xdp")
int drop_port(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct udphdr *udp;

	// ANCHOR: fix
	// Each header is read only after the check that it ends inside the
	// frame: a shorter frame is simply not ours to drop.
	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (ip->protocol != IPPROTO_UDP_NR || ip->ihl < 5)
		return XDP_PASS;
	udp = (void *)ip + ip->ihl * 4;
	if ((void *)(udp + 1) > data_end)
		return XDP_PASS;
	// ANCHOR_END: fix
	if (udp->dest == bpf_htons(blocked_port))
		return XDP_DROP;
	return XDP_PASS;
}

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
	// TODO: the verifier rejects this program: it reads the headers
	// without knowing that the frame is long enough to hold them. Compare
	// each header's end with data_end before reading it, and let a frame
	// too short to hold the headers pass. The UDP header starts after the
	// IP header, whose length (ihl) is counted in 32-bit words.
	ip = (void *)(eth + 1);
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->protocol != IPPROTO_UDP_NR)
		return XDP_PASS;
	udp = (void *)ip + ip->ihl * 4;
	// ANCHOR_END: fix
	if (udp->dest == bpf_htons(blocked_port))
		return XDP_DROP;
	return XDP_PASS;
}

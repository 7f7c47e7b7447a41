// SPDX-License-Identifier: GPL-2.0
// Program 3: drop the UDP datagrams whose payload starts with a banned byte
// among its first SCAN_LIMIT bytes.
#include "frame.h"

char LICENSE[] SEC("license") = "GPL";

// How far into the payload the program looks.
#define SCAN_LIMIT 64

// Set by the loader before the program is loaded (--byte).
const volatile __u8 banned = 0;

SEC("xdp")
int find_byte(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = frame_ipv4(ctx);
	struct udphdr *udp;
	__u8 *payload;
	__u32 len, i;

	if (!ip)
		return XDP_PASS;
	udp = frame_udp(ctx, ip);
	if (!udp)
		return XDP_PASS;
	payload = (__u8 *)(udp + 1);
	len = bpf_ntohs(udp->len);
	len = len > sizeof(*udp) ? len - sizeof(*udp) : 0;
	// ANCHOR: fix
	// TODO: the verifier rejects this loop: len comes from the packet, so
	// it cannot tell how many times the loop runs. Look at no more than
	// SCAN_LIMIT bytes of the payload.
	for (i = 0; i < len; i++) {
		if ((void *)(payload + i + 1) > data_end)
			break;
		if (payload[i] == banned)
			return XDP_DROP;
	}
	// ANCHOR_END: fix
	return XDP_PASS;
}

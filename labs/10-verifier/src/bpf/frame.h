/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Given: finding the headers of an Ethernet frame, each one only after
 * proving to the verifier that it lies inside the packet. Every pointer
 * into the packet must be compared with data_end before it is read; the
 * comparison is what turns it from "pkt" into "pkt with N readable bytes".
 */
#ifndef LAB10_FRAME_H
#define LAB10_FRAME_H

#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define ETH_P_IP 0x0800
#define IPPROTO_UDP_NR 17

// ANCHOR: parse
/* The IPv4 header of the frame, or NULL when the frame is not IPv4 or too
 * short to hold the fixed part of that header. */
static __always_inline struct iphdr *frame_ipv4(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) > data_end)
		return NULL;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return NULL;
	return ip;
}

/* The UDP header of an IPv4 frame, wherever the IP options put it, or NULL
 * when the frame is not UDP or ends before the UDP header does. */
static __always_inline struct udphdr *frame_udp(struct xdp_md *ctx, struct iphdr *ip)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct udphdr *udp;

	if (ip->protocol != IPPROTO_UDP_NR || ip->ihl < 5)
		return NULL;
	/* ihl is 4 bits: the offset is at most 60, a bound the verifier
	 * can carry into the comparison below. */
	udp = (void *)ip + ip->ihl * 4;
	if ((void *)(udp + 1) > data_end)
		return NULL;
	return udp;
}
// ANCHOR_END: parse

#endif

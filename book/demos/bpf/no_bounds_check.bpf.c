// SPDX-License-Identifier: GPL-2.0
/* Rejected: reads the packet without proving it is long enough. */
#include "demo.h"

char LICENSE[] SEC("license") = "GPL";

SEC("xdp")
int no_bounds_check(struct xdp_md *ctx)
{
	struct ethhdr *eth = (void *)(long)ctx->data;

	/* Missing: if ((void *)(eth + 1) > (void *)(long)ctx->data_end) ... */
	return eth->h_proto == ETH_P_IP_BE ? XDP_PASS : XDP_DROP;
}

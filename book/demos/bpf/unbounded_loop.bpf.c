// SPDX-License-Identifier: GPL-2.0
/* Rejected: a loop whose bound the verifier cannot see. */
#include "demo.h"

char LICENSE[] SEC("license") = "GPL";

SEC("xdp")
int unbounded_loop(struct xdp_md *ctx)
{
	__u32 len = ctx->data_end - ctx->data;
	__u32 sum = 0;

	/* The packet length is only known at run time, and the loop does not
	 * touch the packet, so nothing bounds it for the verifier. */
	for (__u32 i = 0; i != len; i += 2)
		sum = sum * 31 + i;
	return sum & 1 ? XDP_DROP : XDP_PASS;
}

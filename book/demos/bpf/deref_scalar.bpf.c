// SPDX-License-Identifier: GPL-2.0
/* Rejected: turns a number into a pointer and reads through it. */
#include "demo.h"

char LICENSE[] SEC("license") = "GPL";

SEC("xdp")
int deref_scalar(struct xdp_md *ctx)
{
	/* A number is not an address the verifier can check. */
	__u32 *ifindex = (__u32 *)(long)ctx->ingress_ifindex;

	return *ifindex == 1 ? XDP_DROP : XDP_PASS;
}

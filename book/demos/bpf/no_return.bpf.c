// SPDX-License-Identifier: GPL-2.0
/* Rejected: reaches the end of the program without a return value. */
#include "demo.h"

char LICENSE[] SEC("license") = "GPL";

#pragma clang diagnostic ignored "-Wreturn-type"

SEC("xdp")
int no_return(struct xdp_md *ctx)
{
	/* Missing: return XDP_PASS; R0, the return value, is never set. */
}

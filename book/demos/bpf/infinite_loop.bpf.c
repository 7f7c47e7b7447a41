// SPDX-License-Identifier: GPL-2.0
/* Rejected: a loop whose condition never changes. */
#include "demo.h"

char LICENSE[] SEC("license") = "GPL";

SEC("xdp")
int infinite_loop(struct xdp_md *ctx)
{
	__u32 len = ctx->data_end - ctx->data;
	__u32 i = 0;

	/* Meant i++ in the body: as it is, a short packet spins forever. */
	while (i < len)
		;
	return XDP_PASS;
}

// SPDX-License-Identifier: GPL-2.0
/* Rejected: writes a field of the context that is read-only. */
#include "demo.h"

char LICENSE[] SEC("license") = "GPL";

SEC("xdp")
int ctx_write(struct xdp_md *ctx)
{
	/* struct xdp_md describes the packet; an XDP program may read its
	 * fields, not move them. */
	ctx->data_end = ctx->data + 14;
	return XDP_PASS;
}

// SPDX-License-Identifier: GPL-2.0
/* Rejected: stores a 4-byte number at an address that is not a multiple
 * of 4. */
#include "demo.h"

char LICENSE[] SEC("license") = "GPL";

SEC("xdp")
int misaligned(struct xdp_md *ctx)
{
	char msg[8] = "i=????\n";

	/* msg + 2 is not 4-byte aligned: copy with __builtin_memcpy. */
	*(__u32 *)(msg + 2) = ctx->ingress_ifindex;
	bpf_trace_printk(msg, sizeof(msg));
	return XDP_PASS;
}

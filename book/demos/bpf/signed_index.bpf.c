// SPDX-License-Identifier: GPL-2.0
/* Rejected: indexes an array with a signed number checked on one side. */
#include "demo.h"
#include "slots.h"

char LICENSE[] SEC("license") = "GPL";

SEC("xdp")
int signed_index(struct xdp_md *ctx)
{
	__u32 key = 0;
	struct lengths *l = bpf_map_lookup_elem(&short_lengths, &key);
	/* The length after the Ethernet header: negative for a runt. */
	long payload = (long)(ctx->data_end - ctx->data) - 14;

	if (!l)
		return XDP_PASS;
	/* Missing: payload < 0. */
	if (payload >= 64)
		return XDP_PASS;
	l->seen[payload] = 1;
	return XDP_PASS;
}

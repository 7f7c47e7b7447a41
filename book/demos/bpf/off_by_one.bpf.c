// SPDX-License-Identifier: GPL-2.0
/* Rejected: a bounds check that lets one index too many through. */
#include "demo.h"
#include "slots.h"

char LICENSE[] SEC("license") = "GPL";

SEC("xdp")
int off_by_one(struct xdp_md *ctx)
{
	__u32 key = 0;
	struct lengths *l = bpf_map_lookup_elem(&short_lengths, &key);
	__u32 len = ctx->data_end - ctx->data;

	if (!l)
		return XDP_PASS;
	/* Should be >=: seen[64] is one past the end. */
	if (len > 64)
		return XDP_PASS;
	l->seen[len] = 1;
	return XDP_PASS;
}

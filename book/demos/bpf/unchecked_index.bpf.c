// SPDX-License-Identifier: GPL-2.0
/* Rejected: indexes an array with a number it never checks. */
#include "demo.h"
#include "slots.h"

char LICENSE[] SEC("license") = "GPL";

SEC("xdp")
int unchecked_index(struct xdp_md *ctx)
{
	__u32 key = 0;
	struct lengths *l = bpf_map_lookup_elem(&short_lengths, &key);
	__u32 len = ctx->data_end - ctx->data;

	if (!l)
		return XDP_PASS;
	/* Missing: if (len >= 64) return XDP_PASS; */
	l->seen[len] = 1;
	return XDP_PASS;
}

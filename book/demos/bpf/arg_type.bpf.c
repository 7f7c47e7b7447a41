// SPDX-License-Identifier: GPL-2.0
/* Rejected: passes a number where a helper wants a pointer to the key. */
#include "demo.h"
#include "counter.h"

char LICENSE[] SEC("license") = "GPL";

SEC("xdp")
int arg_type(struct xdp_md *ctx)
{
	__u32 key = ctx->rx_queue_index;
	/* Should be &key: the helper reads the key from memory. */
	__u64 *count = bpf_map_lookup_elem(&counts, (void *)(long)key);

	if (count)
		*count += 1;
	return XDP_PASS;
}

// SPDX-License-Identifier: GPL-2.0
/* Rejected: uses a map lookup's result without checking it for NULL. */
#include "demo.h"
#include "counter.h"

char LICENSE[] SEC("license") = "GPL";

SEC("xdp")
int no_null_check(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u64 *count = bpf_map_lookup_elem(&counts, &key);

	/* Missing: if (!count) return XDP_PASS; */
	*count += 1;
	return XDP_PASS;
}

// SPDX-License-Identifier: GPL-2.0
// Program 1: count IPv4 frames per protocol number.
#include "frame.h"

char LICENSE[] SEC("license") = "GPL";

// One counter per IPv4 protocol number (0 to 255).
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

SEC("xdp")
int count_protos(struct xdp_md *ctx)
{
	struct iphdr *ip = frame_ipv4(ctx);
	__u32 key;
	__u64 *count;

	if (!ip)
		return XDP_PASS;
	key = ip->protocol;
	// ANCHOR: fix
	count = bpf_map_lookup_elem(&counts, &key);
	// Every key of an array exists, but the verifier judges the helper's
	// type, "a map value or NULL", not this map: prove it is not NULL.
	if (!count)
		return XDP_PASS;
	__sync_fetch_and_add(count, 1);
	// ANCHOR_END: fix
	return XDP_PASS;
}

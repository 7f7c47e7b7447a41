// SPDX-License-Identifier: GPL-2.0
/* Rejected: reserves ring buffer space and never gives it back. */
#include "demo.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

SEC("xdp")
int ringbuf_leak(struct xdp_md *ctx)
{
	__u32 *len = bpf_ringbuf_reserve(&events, sizeof(*len), 0);

	if (!len)
		return XDP_PASS;
	*len = ctx->data_end - ctx->data;
	/* Missing: bpf_ringbuf_submit(len, 0) (or bpf_ringbuf_discard). */
	return XDP_PASS;
}

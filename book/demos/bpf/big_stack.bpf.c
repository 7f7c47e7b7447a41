// SPDX-License-Identifier: GPL-2.0
/* Rejected: two functions that each fit the stack, but not together. */
#include "demo.h"

char LICENSE[] SEC("license") = "GPL";

static __attribute__((noinline)) int print_line(__u32 len)
{
	char line[320] = "len=?\n";

	line[4] = '0' + len % 10;
	return bpf_trace_printk(line, sizeof(line));
}

static __attribute__((noinline)) int print_both(__u32 len)
{
	char header[256] = "a packet\n";

	bpf_trace_printk(header, sizeof(header));
	/* print_line's frame goes on top of this one. */
	return print_line(len);
}

SEC("xdp")
int big_stack(struct xdp_md *ctx)
{
	print_both(ctx->data_end - ctx->data);
	return XDP_PASS;
}

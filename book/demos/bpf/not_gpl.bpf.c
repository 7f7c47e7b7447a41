// SPDX-License-Identifier: MIT
/* Rejected: calls a GPL-only helper from a program that is not GPL. */
#include "demo.h"

char LICENSE[] SEC("license") = "MIT";

SEC("xdp")
int not_gpl(struct xdp_md *ctx)
{
	char msg[] = "packet\n";

	bpf_trace_printk(msg, sizeof(msg));
	return XDP_PASS;
}

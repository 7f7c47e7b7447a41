// SPDX-License-Identifier: GPL-2.0
/* Rejected: hands a helper stack memory that was never written. */
#include "demo.h"

char LICENSE[] SEC("license") = "GPL";

SEC("xdp")
int uninit_stack(struct xdp_md *ctx)
{
	char msg[8];

	/* Missing: fill msg (or start from char msg[8] = {}). The helper
	 * would print whatever an earlier program left on the stack. */
	bpf_trace_printk(msg, sizeof(msg));
	return XDP_PASS;
}

// SPDX-License-Identifier: GPL-2.0
/* Rejected: calls a helper that XDP programs may not use. */
#include "demo.h"

char LICENSE[] SEC("license") = "GPL";

SEC("xdp")
int wrong_helper(struct xdp_md *ctx)
{
	/* A packet arrives in no process's context: there is no "current"
	 * process to ask for its PID. */
	__u64 id = bpf_get_current_pid_tgid();

	return id & 1 ? XDP_DROP : XDP_PASS;
}

// SPDX-License-Identifier: GPL-2.0
/* Rejected: a cgroup program must answer 0 (drop) or 1 (allow). */
#include "demo.h"

char LICENSE[] SEC("license") = "GPL";

SEC("cgroup_skb/ingress")
int bad_return(void *skb)
{
	/* XDP_PASS is 2: the wrong program type's answer. */
	return XDP_PASS;
}

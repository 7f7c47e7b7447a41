// SPDX-License-Identifier: GPL-2.0
// An XDP program for the receiving end of a veth pair: it counts every
// IPv4 packet by protocol, drops ICMP echo requests and the UDP datagrams
// sent to one port, and passes everything else.
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define ETH_P_IP 0x0800
#define ICMP_ECHO 8

char LICENSE[] SEC("license") = "GPL";

// ANCHOR: globals
// Set by the given loader before the program is loaded (host byte order).
const volatile __u16 blocked_port = 0;

// One counter per IPv4 protocol number, and one copy of the whole array
// per CPU: a CPU only ever adds to its own copy, so no two CPUs touch the
// same counter, and user space adds the copies up.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");
// ANCHOR_END: globals

// ANCHOR: count
static __always_inline void count(__u8 protocol)
{
	__u32 key = protocol;
	__u64 *packets = bpf_map_lookup_elem(&counts, &key);

	if (packets)
		*packets += 1;
}
// ANCHOR_END: count

SEC("xdp")
int xdp_drop_count(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;

	// ANCHOR: parse
	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || ip->ihl < 5)
		return XDP_PASS;
	count(ip->protocol);
	// ANCHOR_END: parse

	// ANCHOR: verdict
	if (ip->protocol == IPPROTO_ICMP) {
		struct icmphdr *icmp = (void *)ip + ip->ihl * 4;

		if ((void *)(icmp + 1) > data_end)
			return XDP_PASS;
		if (icmp->type == ICMP_ECHO)
			return XDP_DROP;
	} else if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *udp = (void *)ip + ip->ihl * 4;

		if ((void *)(udp + 1) > data_end)
			return XDP_PASS;
		if (udp->dest == bpf_htons(blocked_port))
			return XDP_DROP;
	}
	return XDP_PASS;
	// ANCHOR_END: verdict
}

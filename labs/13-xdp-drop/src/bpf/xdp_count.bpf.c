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
	// TODO: add one to this CPU's counter for the protocol: look up the
	// key `protocol` in `counts` (the value is this CPU's copy), check the
	// pointer, and add 1.
}
// ANCHOR_END: count

SEC("xdp")
int xdp_drop_count(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	// ANCHOR: todo
	// TODO: find the IPv4 header, proving to the verifier before each
	// read that the header lies before data_end; let every frame that is
	// not IPv4 (or too short) pass. Count each IPv4 packet once with
	// count(). Then drop (XDP_DROP) the ICMP echo requests and the UDP
	// datagrams sent to blocked_port, and pass (XDP_PASS) the rest.
	// Header fields are in network byte order; blocked_port is not.
	(void)eth;
	(void)data_end;
	return XDP_PASS;
	// ANCHOR_END: todo
}

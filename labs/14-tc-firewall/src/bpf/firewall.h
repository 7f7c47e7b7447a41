/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Given: the firewall's maps and settings. The grader reads `counts` and
 * the loader fills `allowed` and the range, so their layout is fixed here.
 */
#ifndef LAB14_FIREWALL_H
#define LAB14_FIREWALL_H

#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

/* What a direct-action classifier returns: the packet goes on, or it is
 * dropped. (linux/pkt_cls.h; vmlinux.h has no macros.) */
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

#define ETH_P_IP 0x0800
#define IPPROTO_UDP_NR 17

// ANCHOR: maps
/* Set by the loader before the program is loaded (--range LO HI): every
 * port from range_lo to range_hi, both ends included, is allowed. */
const volatile __u16 range_lo = 0;
const volatile __u16 range_hi = 0;

/* The other allowed ports, one key each (in host byte order), filled by
 * the loader (--allow). The value means nothing. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u16);
	__type(value, __u8);
} allowed SEC(".maps");

/* Per destination port (host byte order): how many packets went on and
 * how many were dropped. Pinned by the loader for the grader. */
struct port_count {
	__u64 passed;
	__u64 dropped;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, struct port_count);
} counts SEC(".maps");
// ANCHOR_END: maps

#endif

// SPDX-License-Identifier: GPL-2.0
// Program 4: send a sample (protocol, frame length) of every IPv4 frame to
// user space through a ring buffer.
#include "frame.h"

char LICENSE[] SEC("license") = "GPL";

// What user space reads for one frame.
struct frame_sample {
	__u32 protocol;
	__u32 len;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} samples SEC(".maps");

SEC("xdp")
int sample_frames(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct frame_sample *s;
	struct iphdr *ip;

	s = bpf_ringbuf_reserve(&samples, sizeof(*s), 0);
	if (!s)
		return XDP_PASS;
	ip = frame_ipv4(ctx);
	// ANCHOR: fix
	// A reservation is a reference the program holds: every path must
	// hand it back, by submitting it or by discarding it.
	if (!ip) {
		bpf_ringbuf_discard(s, 0);
		return XDP_PASS;
	}
	// ANCHOR_END: fix
	s->protocol = ip->protocol;
	s->len = data_end - data;
	bpf_ringbuf_submit(s, 0);
	return XDP_PASS;
}

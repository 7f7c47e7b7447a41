// SPDX-License-Identifier: GPL-2.0
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

// ANCHOR: bpf
// One call of process_item, as user space receives it. src/event.rs reads
// these bytes: keep the two in step.
struct event {
	u32 tid;
	// The function's two arguments, as the caller passed them.
	u32 size;
	s64 key;
	// What it returned: all 64 bits of rax.
	s64 ret;
	// From the uprobe to the uretprobe, in nanoseconds.
	u64 latency_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

// What the uprobe keeps for the uretprobe of the same call.
struct call {
	u64 start_ns;
	u32 size;
	s64 key;
};

// The calls in flight: one per thread that is inside the function, keyed
// by bpf_get_current_pid_tgid(). Several threads of one process can be
// inside it at once; a thread is inside it only once.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u64);
	__type(value, struct call);
} in_flight SEC(".maps");

// The uprobe: runs when a thread executes the function's first
// instruction, with the thread's registers as they were at that moment.
// BPF_UPROBE reads the arguments out of them where the C calling
// convention put them (rdi, rsi on x86-64).
SEC("uprobe")
int BPF_UPROBE(call_entry, u32 size, s64 key)
{
	// ANCHOR: solution_entry
	u64 id = bpf_get_current_pid_tgid();
	struct call call = {};

	call.start_ns = bpf_ktime_get_ns();
	call.size = size;
	call.key = key;

	// The arguments must be kept now: at the return, rdi and rsi hold
	// whatever the function left in them.
	bpf_map_update_elem(&in_flight, &id, &call, BPF_ANY);
	// ANCHOR_END: solution_entry
	return 0;
}

// The uretprobe: runs when the function returns to its caller. The only
// thing it learns from the registers is the return value (rax).
SEC("uretprobe")
int BPF_URETPROBE(call_exit, s64 ret)
{
	// ANCHOR: solution_exit
	u64 now = bpf_ktime_get_ns();
	u64 id = bpf_get_current_pid_tgid();
	struct call *call;
	struct event *e;

	call = bpf_map_lookup_elem(&in_flight, &id);
	// No entry: the call began before the uprobe was attached.
	if (!call)
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (e) {
		// The lower half of the ID is the thread, the kernel's pid.
		e->tid = (u32)id;
		e->size = call->size;
		e->key = call->key;
		e->ret = ret;
		e->latency_ns = now - call->start_ns;
		bpf_ringbuf_submit(e, 0);
	}
	// The call is over: its entry goes, or the map fills up for good.
	bpf_map_delete_elem(&in_flight, &id);
	// ANCHOR_END: solution_exit
	return 0;
}
// ANCHOR_END: bpf

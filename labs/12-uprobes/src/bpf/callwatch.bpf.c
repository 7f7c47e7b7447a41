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
	// ANCHOR: todo_entry
	// TODO 1: keep what the uretprobe will need, per thread.
	//  - The key: bpf_get_current_pid_tgid(). Its lower 32 bits name the
	//    thread; its upper 32 bits, the process, which several threads
	//    share, and which may be inside the function several times at once.
	//  - The value: a struct call with the time (bpf_ktime_get_ns()) and
	//    both arguments. Keep them now: when the function returns, the
	//    registers that carried them hold something else.
	//  - bpf_map_update_elem(&in_flight, &key, &value, BPF_ANY) stores it.
	// ANCHOR_END: todo_entry
	return 0;
}

// The uretprobe: runs when the function returns to its caller. The only
// thing it learns from the registers is the return value (rax).
SEC("uretprobe")
int BPF_URETPROBE(call_exit, s64 ret)
{
	// ANCHOR: todo_exit
	// TODO 2: send one event per call, from here.
	//  - Read the clock first: the call ends now.
	//  - Look up this thread's struct call in in_flight (same key as in
	//    call_entry); without one there is nothing to report.
	//  - Reserve a struct event in events with bpf_ringbuf_reserve(); if
	//    that worked, fill in tid (the lower 32 bits of the key), size,
	//    key, ret (all 64 bits) and latency_ns (now minus the start), and
	//    bpf_ringbuf_submit() it.
	//  - Delete the entry: the call is over.
	// ANCHOR_END: todo_exit
	return 0;
}
// ANCHOR_END: bpf

// SPDX-License-Identifier: GPL-2.0
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

// ANCHOR: bpf
// Slot N holds the program that handles system call N. User space fills
// it: a program array takes program file descriptors, not data.
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 512);
	__type(key, u32);
	__type(value, u32);
} syscall_progs SEC(".maps");

// Each handler's mark: how many times it ran, per system call number.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, u32);
	__type(value, u64);
} execve_hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, u32);
	__type(value, u64);
} timer_hits SEC(".maps");

// The sys_enter raw tracepoint's arguments: the caller's registers and
// the system call number.
static __always_inline u32 syscall_nr(struct bpf_raw_tracepoint_args *ctx)
{
	return ctx->args[1];
}

// Counts one call of system call `nr` in `hits`.
static __always_inline void mark(void *hits, u32 nr)
{
	u64 one = 1, *calls;

	calls = bpf_map_lookup_elem(hits, &nr);
	if (calls)
		__sync_fetch_and_add(calls, 1);
	else
		bpf_map_update_elem(hits, &nr, &one, BPF_NOEXIST);
}

// The handlers have no attach point of their own ("raw_tp" without a
// name): they only ever run as tail calls from the dispatcher, with its
// context.
SEC("raw_tp")
int handle_execve(struct bpf_raw_tracepoint_args *ctx)
{
	mark(&execve_hits, syscall_nr(ctx));
	return 0;
}

SEC("raw_tp")
int handle_timer(struct bpf_raw_tracepoint_args *ctx)
{
	mark(&timer_hits, syscall_nr(ctx));
	return 0;
}

// Runs at the entry of every system call, in every process.
SEC("raw_tp/sys_enter")
int dispatch(struct bpf_raw_tracepoint_args *ctx)
{
	u32 nr = syscall_nr(ctx);

	// ANCHOR: solution
	// Jump to the handler in slot `nr`. A tail call does not return: on
	// success this program's frame is replaced by the handler's.
	bpf_tail_call(ctx, &syscall_progs, nr);
	// ANCHOR_END: solution
	// Only reached when slot `nr` is empty: nothing handles this call.
	return 0;
}
// ANCHOR_END: bpf

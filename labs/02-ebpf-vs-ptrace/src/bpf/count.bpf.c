// SPDX-License-Identifier: GPL-2.0
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

// The process to count, set by user space before the program is loaded:
// `const volatile` puts it in .rodata, which the verifier then knows, and
// which user space can write only until load.
const volatile u32 target_tgid = 0;

// Syscall number -> calls made by the target process.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 512);
	__type(key, u32);
	__type(value, u64);
} syscall_counts SEC(".maps");

// ANCHOR: bpf
// The raw_syscalls:sys_enter tracepoint fires as any thread of any process
// enters any system call. As a raw tracepoint its arguments are the
// tracepoint's own: the registers and the syscall number.
SEC("raw_tp/sys_enter")
int BPF_PROG(count_syscall, struct pt_regs *regs, long id)
{
	// ANCHOR: todo
	// TODO: count this call if it is made by the target process.
	//  1. bpf_get_current_pid_tgid() >> 32 is the calling process's ID
	//     (the kernel's tgid); return 0 unless it is target_tgid. Every
	//     other process's calls pass through here too.
	//  2. Use the syscall number `id` (as a u32) as the key into
	//     syscall_counts and add one, as in lab 04: look up, insert a zero
	//     with BPF_NOEXIST if missing, then __sync_fetch_and_add().
	// ANCHOR_END: todo
	return 0;
}
// ANCHOR_END: bpf

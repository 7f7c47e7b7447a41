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
	// ANCHOR: solution
	u32 nr = id;
	u64 zero = 0;
	u64 *count;

	// Every process's calls come through here: keep the target's only.
	if (bpf_get_current_pid_tgid() >> 32 != target_tgid)
		return 0;
	count = bpf_map_lookup_elem(&syscall_counts, &nr);
	if (!count) {
		bpf_map_update_elem(&syscall_counts, &nr, &zero, BPF_NOEXIST);
		count = bpf_map_lookup_elem(&syscall_counts, &nr);
		if (!count)
			return 0;
	}
	__sync_fetch_and_add(count, 1);
	// ANCHOR_END: solution
	return 0;
}
// ANCHOR_END: bpf

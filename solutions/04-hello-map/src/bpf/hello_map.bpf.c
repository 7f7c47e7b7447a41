// SPDX-License-Identifier: GPL-2.0
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

// kprobes need a GPL-compatible program.
char LICENSE[] SEC("license") = "GPL";

// ANCHOR: bpf
// User ID -> how many times that user called execve. The map lives in the
// kernel; user space finds it by name and reads it whenever it likes.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, u32);
	__type(value, u64);
} counter_table SEC(".maps");

SEC("ksyscall/execve")
int count_execve(void *ctx)
{
	// ANCHOR: solution
	// The low 32 bits are the user ID, the high 32 bits the group ID.
	u32 uid = bpf_get_current_uid_gid() & 0xFFFFFFFF;
	u64 zero = 0;
	u64 *count;

	count = bpf_map_lookup_elem(&counter_table, &uid);
	if (!count) {
		// BPF_NOEXIST: if another CPU inserted this user meanwhile,
		// keep its entry (and its count) rather than overwrite it.
		bpf_map_update_elem(&counter_table, &uid, &zero, BPF_NOEXIST);
		count = bpf_map_lookup_elem(&counter_table, &uid);
		// The verifier insists: a lookup can always fail (a full map).
		if (!count)
			return 0;
	}
	__sync_fetch_and_add(count, 1);
	// ANCHOR_END: solution
	return 0;
}
// ANCHOR_END: bpf

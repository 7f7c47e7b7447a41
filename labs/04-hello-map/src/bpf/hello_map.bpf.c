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
	// ANCHOR: todo
	// TODO: count this execve for the calling user.
	//  1. The user ID is the low 32 bits of bpf_get_current_uid_gid().
	//  2. bpf_map_lookup_elem(&counter_table, &uid) returns a pointer to
	//     the user's counter inside the map, or NULL the first time.
	//  3. If it is NULL, insert a zero with bpf_map_update_elem(...,
	//     BPF_NOEXIST) and look it up again.
	//  4. Add one through the pointer with __sync_fetch_and_add(): it is
	//     atomic, and two CPUs may run this program at the same moment.
	// ANCHOR_END: todo
	return 0;
}
// ANCHOR_END: bpf

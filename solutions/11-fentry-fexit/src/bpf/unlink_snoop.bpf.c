// SPDX-License-Identifier: GPL-2.0
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

// fentry and fexit programs call GPL-only helpers: the licence must say GPL.
char LICENSE[] SEC("license") = "GPL";

// ANCHOR: bpf
// Long enough for the grader's paths; a longer one is cut short.
#define NAME_LEN 64

// One unlink, as user space receives it. src/event.rs reads these bytes:
// keep the two in step.
struct event {
	u32 pid;
	// What do_unlinkat returned: 0, or a negative errno (-2 is -ENOENT).
	s32 ret;
	char name[NAME_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

// What the fentry program keeps for the fexit program of the same call.
struct entry {
	char name[NAME_LEN];
};

// The unlinks in flight: one entry per thread between its fentry and its
// fexit, keyed by bpf_get_current_pid_tgid() (a thread runs one call at a
// time; two threads of one process can run one each).
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u64);
	__type(value, struct entry);
} in_flight SEC(".maps");

// fentry: runs when do_unlinkat is entered. BPF_PROG gives the function's
// own arguments, typed from the kernel's BTF: name is a struct filename *
// that the program may follow directly, without bpf_probe_read_kernel().
SEC("fentry/do_unlinkat")
int BPF_PROG(unlink_entry, int dfd, struct filename *name)
{
	// ANCHOR: solution_entry
	u64 id = bpf_get_current_pid_tgid();
	struct entry entry = {};

	// The name must be copied now: do_unlinkat releases the struct
	// filename (putname()) before it returns, so by the time fexit runs
	// the memory it points to belongs to nobody.
	bpf_probe_read_kernel_str(entry.name, sizeof(entry.name), name->name);
	bpf_map_update_elem(&in_flight, &id, &entry, BPF_ANY);
	// ANCHOR_END: solution_entry
	return 0;
}

// fexit: runs when do_unlinkat returns, with the same arguments and, last,
// its return value. ret is an int: what 6.1 and later return (5.10 returns
// a long, whose low half is the same number).
SEC("fexit/do_unlinkat")
int BPF_PROG(unlink_exit, int dfd, struct filename *name, int ret)
{
	// ANCHOR: solution_exit
	u64 id = bpf_get_current_pid_tgid();
	struct entry *entry;
	struct event *e;

	entry = bpf_map_lookup_elem(&in_flight, &id);
	// No entry: the call began before the programs were attached.
	if (!entry)
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (e) {
		// The kernel's tgid is what user space calls the process ID.
		e->pid = id >> 32;
		e->ret = ret;
		__builtin_memcpy(e->name, entry->name, sizeof(e->name));
		bpf_ringbuf_submit(e, 0);
	}
	// The call is over: its entry goes, or the map fills up for good.
	bpf_map_delete_elem(&in_flight, &id);
	// ANCHOR_END: solution_exit
	return 0;
}
// ANCHOR_END: bpf

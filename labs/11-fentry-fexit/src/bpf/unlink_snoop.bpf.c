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
	// ANCHOR: todo_entry
	// TODO 1: keep the file name for the fexit program.
	//  - The key: bpf_get_current_pid_tgid(), which names this thread.
	//  - The value: a struct entry whose name is a copy of the string
	//    name->name points to, made with bpf_probe_read_kernel_str().
	//    Copy it now: do_unlinkat frees the struct filename before it
	//    returns.
	//  - bpf_map_update_elem(&in_flight, &key, &value, BPF_ANY) stores it.
	// ANCHOR_END: todo_entry
	return 0;
}

// fexit: runs when do_unlinkat returns, with the same arguments and, last,
// its return value. ret is an int: what 6.1 and later return (5.10 returns
// a long, whose low half is the same number).
SEC("fexit/do_unlinkat")
int BPF_PROG(unlink_exit, int dfd, struct filename *name, int ret)
{
	// ANCHOR: todo_exit
	// TODO 2: send one event per call, from here.
	//  - Look up this thread's entry in in_flight (same key as in
	//    unlink_entry); without one there is nothing to report.
	//  - Reserve a struct event in events with bpf_ringbuf_reserve(); if
	//    that worked, fill in pid (the upper 32 bits of the key), ret and
	//    name (the entry's copy), and bpf_ringbuf_submit() it.
	//  - Delete the entry: the call is over.
	// ANCHOR_END: todo_exit
	return 0;
}
// ANCHOR_END: bpf

// SPDX-License-Identifier: GPL-2.0
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

// kprobes need a GPL-compatible program.
char LICENSE[] SEC("license") = "GPL";

// ANCHOR: bpf
// One execve, as user space receives it. src/event.rs reads these bytes:
// keep the two in step.
struct event {
	u32 pid;
	u32 uid;
	// The caller's name: at execve entry the process still runs the
	// program that called execve (often a shell).
	char command[16];
	// The program it asks the kernel to run.
	char path[64];
	char message[12];
};

// The ring buffer: one buffer shared by all CPUs, in which the program
// reserves space, fills it in place and submits it. Its size is in bytes
// (a power of two, a multiple of the page size); 256 KiB holds thousands
// of events, room for a burst while user space catches up.
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

const char message[12] = "Hello World";

// libbpf turns "ksyscall/execve" into a kprobe on the kernel's execve entry
// point, and BPF_KSYSCALL hands us the syscall's own arguments.
SEC("ksyscall/execve")
int BPF_KSYSCALL(hello_buffer, const char *filename)
{
	// ANCHOR: todo
	// TODO: send one event per execve.
	//  1. Reserve room for a struct event in the ring buffer with
	//     bpf_ringbuf_reserve(&events, sizeof(*e), 0). It returns NULL
	//     when the buffer is full: then there is nothing to do.
	//  2. Fill it in: pid is the upper 32 bits of
	//     bpf_get_current_pid_tgid() (the kernel's tgid is user space's
	//     pid), uid the lower 32 bits of bpf_get_current_uid_gid();
	//     bpf_get_current_comm() for command;
	//     bpf_probe_read_user_str() copies filename into path;
	//     __builtin_memcpy() copies message.
	//  3. bpf_ringbuf_submit(e, 0) hands it to user space.
	// ANCHOR_END: todo
	return 0;
}
// ANCHOR_END: bpf

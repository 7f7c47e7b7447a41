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
	// ANCHOR: solution
	struct event *e;

	// Space in the buffer, or NULL when it is full: the event is lost,
	// and the only thing to do is not to touch it.
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	// The kernel's tgid is what user space calls the process ID.
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->uid = bpf_get_current_uid_gid() & 0xFFFFFFFF;
	bpf_get_current_comm(&e->command, sizeof(e->command));
	// filename points into the caller's memory: copy it, do not keep it.
	bpf_probe_read_user_str(&e->path, sizeof(e->path), filename);
	__builtin_memcpy(e->message, message, sizeof(e->message));
	// From here on the event belongs to user space.
	bpf_ringbuf_submit(e, 0);
	// ANCHOR_END: solution
	return 0;
}
// ANCHOR_END: bpf

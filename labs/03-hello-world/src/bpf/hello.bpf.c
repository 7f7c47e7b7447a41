// SPDX-License-Identifier: GPL-2.0
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

// bpf_printk and kprobes need a GPL-compatible program.
char LICENSE[] SEC("license") = "GPL";

// ANCHOR: bpf
// libbpf turns "ksyscall/execve" into a kprobe on the kernel's execve entry
// point, and BPF_KSYSCALL hands us the syscall's own arguments.
SEC("ksyscall/execve")
int BPF_KSYSCALL(hello, const char *filename)
{
	// ANCHOR: todo
	// TODO: say hello. Copy the user-space string `filename` into a small
	// buffer on the BPF stack with bpf_probe_read_user_str(), then write
	// "Hello World <filename>" to the trace pipe with bpf_printk().
	// ANCHOR_END: todo
	return 0;
}
// ANCHOR_END: bpf

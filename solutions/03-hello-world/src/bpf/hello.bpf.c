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
	// ANCHOR: solution
	// The string lives in the caller's memory: copy it before printing.
	char path[64];

	bpf_probe_read_user_str(path, sizeof(path), filename);
	bpf_printk("Hello World %s", path);
	// ANCHOR_END: solution
	return 0;
}
// ANCHOR_END: bpf

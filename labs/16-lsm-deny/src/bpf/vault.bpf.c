// SPDX-License-Identifier: GPL-2.0
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

#define EPERM 1
#define NAME_LEN 64

// ANCHOR: bpf
// The protected file, as the kernel knows it: its inode number, and the
// device of the filesystem it lives on in the kernel's own encoding
// (MKDEV(major, minor): the major number above bit 20). The given user
// space fills both in before it loads the program.
const volatile u64 protected_ino = 0;
const volatile u32 protected_dev = 0;

// One refusal, as user space receives it. src/event.rs reads these bytes:
// keep the two in step.
struct event {
	// The process that was refused (its PID, the kernel's tgid).
	u32 pid;
	// The user it ran as.
	u32 uid;
	// The name of the file it tried to open (the last part of the path).
	char name[NAME_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

// Runs at the LSM hook file_open: every open(2) of every file, after the
// permission bits allowed it and before the file is handed out. `ret` is
// what the LSMs before this program decided; the program's own return
// value is the decision: 0 allows, a negative errno refuses, and open(2)
// fails with that errno.
SEC("lsm/file_open")
int BPF_PROG(deny_open, struct file *file, int ret)
{
	// ANCHOR: todo
	// TODO 1: decide. Keep the answer of an earlier BPF program on this hook
	// (a non-zero ret).
	// Then allow (return 0) every file but the protected one: compare the
	// file's inode number (file->f_inode->i_ino) and the device of its
	// filesystem (file->f_inode->i_sb->s_dev) with protected_ino and
	// protected_dev. Root (user ID 0) may open it too: the user ID is the
	// lower half of bpf_get_current_uid_gid(). Everyone else is refused
	// with -EPERM.
	//
	// TODO 2: before refusing, report the refusal: reserve a struct event
	// in the ring buffer `events`, fill in the process's PID (the upper
	// half of bpf_get_current_pid_tgid()), the user ID and the file's name
	// (bpf_probe_read_kernel_str() from file->f_path.dentry->d_name.name),
	// and submit it.
	return 0;
	// ANCHOR_END: todo
}
// ANCHOR_END: bpf

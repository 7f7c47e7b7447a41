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
	// ANCHOR: solution
	struct inode *inode = file->f_inode;
	struct event *e;
	u32 uid;

	// An earlier BPF program on this hook already refused: its answer stands.
	if (ret != 0)
		return ret;
	// A file is known by its inode on its filesystem; a name is only one
	// of the ways to reach it.
	if (inode->i_ino != protected_ino || inode->i_sb->s_dev != protected_dev)
		return 0;
	// The lower half is the user ID, the upper half the group ID.
	uid = (u32)bpf_get_current_uid_gid();
	if (uid == 0)
		return 0;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (e) {
		// The upper half is the process (tgid), the lower the thread.
		e->pid = bpf_get_current_pid_tgid() >> 32;
		e->uid = uid;
		bpf_probe_read_kernel_str(e->name, sizeof(e->name),
					  file->f_path.dentry->d_name.name);
		bpf_ringbuf_submit(e, 0);
	}
	return -EPERM;
	// ANCHOR_END: solution
}
// ANCHOR_END: bpf

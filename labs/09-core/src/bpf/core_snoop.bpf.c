// SPDX-License-Identifier: GPL-2.0
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

// tp_btf programs call GPL-only helpers: the licence must say GPL.
char LICENSE[] SEC("license") = "GPL";

// ANCHOR: event
// A task's comm: TASK_COMM_LEN in the kernel, NUL included.
#define COMM_LEN 16

// One exec, as user space receives it. src/event.rs reads these bytes:
// keep the two in step.
struct event {
	// The process that called exec: its tgid, which exec keeps.
	u32 pid;
	// The process ID of its parent (real_parent's tgid): what getppid()
	// returns in the new program.
	u32 ppid;
	// The task's state, and its parent's, as the kernel keeps them: a
	// bit mask of TASK_* values, 0 for TASK_RUNNING.
	u32 state;
	u32 parent_state;
	// The new program's name, and the parent's.
	char comm[COMM_LEN];
	char parent_comm[COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");
// ANCHOR_END: event

// ANCHOR: flavour
// ANCHOR: todo_flavour
// TODO 1: read a task's state on every kernel of the matrix.
//  - vmlinux.h comes from a kernel where the field is
//    `unsigned int __state`; before 5.14 it was `long state`. A program
//    that names only one of them does not load on the other kernels:
//    libbpf cannot relocate the read.
//  - Declare the old layout as a flavour of task_struct, a struct named
//    task_struct___old with just the field `long state`, marked
//    __attribute__((preserve_access_index)).
//  - In task_state(), ask bpf_core_field_exists(struct task_struct___old,
//    state): when the running kernel has it, read it with BPF_CORE_READ
//    through a task_struct___old pointer; else read t->__state.
static __always_inline u32 task_state(struct task_struct *t)
{
	return 0;
}
// ANCHOR_END: todo_flavour
// ANCHOR_END: flavour

// ANCHOR: prog
// sched_process_exec fires once a new program has replaced the old one,
// in the task that called exec: p is that task, old_pid the thread ID it
// had before exec (a thread other than the leader becomes the leader).
SEC("tp_btf/sched_process_exec")
int BPF_PROG(handle_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct event *e;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	// The ring buffer hands out memory as it is: clear what is not set.
	__builtin_memset(e, 0, sizeof(*e));
	// BPF_CORE_READ follows each pointer with bpf_probe_read_kernel(), at
	// the offset libbpf found for the field in this kernel's BTF.
	e->pid = BPF_CORE_READ(p, tgid);
	BPF_CORE_READ_STR_INTO(&e->comm, p, comm);
	// ANCHOR: todo_fill
	// TODO 2: the parent, and the states.
	//  - The parent is p->real_parent (read it with BPF_CORE_READ): the
	//    process that forked this one, whoever traces it.
	//  - ppid is that parent's tgid, the process ID, not its pid (the ID
	//    of the thread that called fork).
	//  - parent_comm is its comm: BPF_CORE_READ_STR_INTO(&e->parent_comm,
	//    parent, comm).
	//  - state and parent_state: task_state() of p and of the parent.
	// ANCHOR_END: todo_fill
	bpf_ringbuf_submit(e, 0);
	return 0;
}
// ANCHOR_END: prog

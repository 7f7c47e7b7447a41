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
// ANCHOR: solution_flavour
// The task_struct of kernels before 5.14, reduced to the one field this
// program needs. libbpf drops the ___old suffix when it matches the type
// against the running kernel's BTF, so this describes the same struct
// task_struct as vmlinux.h, as older kernels laid it out: its state was a
// long named state; 5.14 renamed it __state and made it an unsigned int.
struct task_struct___old {
	long state;
} __attribute__((preserve_access_index));

// The state of task t, on a kernel of either kind. Each branch carries a
// CO-RE relocation; libbpf resolves bpf_core_field_exists() to a constant
// when it loads the program, so the verifier sees the other branch as dead
// code and never checks the read that this kernel could not relocate.
static __always_inline u32 task_state(struct task_struct *t)
{
	if (bpf_core_field_exists(struct task_struct___old, state)) {
		struct task_struct___old *old = (void *)t;

		return BPF_CORE_READ(old, state);
	}
	return BPF_CORE_READ(t, __state);
}
// ANCHOR_END: solution_flavour
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
	// ANCHOR: solution_fill
	// real_parent is the process that forked this one (the thread that
	// called fork, to be exact: its tgid names the process). parent is
	// whoever gets SIGCHLD, which a tracer such as strace replaces.
	struct task_struct *parent = BPF_CORE_READ(p, real_parent);

	e->ppid = BPF_CORE_READ(parent, tgid);
	BPF_CORE_READ_STR_INTO(&e->parent_comm, parent, comm);
	e->state = task_state(p);
	e->parent_state = task_state(parent);
	// ANCHOR_END: solution_fill
	bpf_ringbuf_submit(e, 0);
	return 0;
}
// ANCHOR_END: prog

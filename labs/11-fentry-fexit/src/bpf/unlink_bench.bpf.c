// SPDX-License-Identifier: GPL-2.0
// The benchmark's programs (given; not part of the exercise): the same
// nearly empty body behind four kinds of hook on the same kernel function,
// so that the benchmark measures what each kind of hook costs per call.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

// ANCHOR: bpf
// How often each program ran. The benchmark unlinks from one thread, so a
// plain increment is enough; user space reads these through the skeleton.
u64 fentry_runs;
u64 fexit_runs;
u64 kprobe_runs;
u64 kretprobe_runs;

// A trampoline calls it: a direct call, arguments typed from BTF.
SEC("fentry/do_unlinkat")
int BPF_PROG(bench_fentry, int dfd, struct filename *name)
{
	fentry_runs++;
	return 0;
}

// The trampoline calls the function itself, then this, with its result.
SEC("fexit/do_unlinkat")
int BPF_PROG(bench_fexit, int dfd, struct filename *name, int ret)
{
	fexit_runs++;
	return 0;
}

// A kprobe: the registers saved in a struct pt_regs. The benchmark attaches
// it to whichever function the kernel has.
SEC("kprobe")
int BPF_KPROBE(bench_kprobe, int dfd, struct filename *name)
{
	kprobe_runs++;
	return 0;
}

// A kretprobe: the function's return address is swapped for a trampoline
// that runs this program, then returns to the real caller.
SEC("kretprobe")
int BPF_KRETPROBE(bench_kretprobe, int ret)
{
	kretprobe_runs++;
	return 0;
}
// ANCHOR_END: bpf

#!/usr/bin/env bash
# Regenerates the command output that the book shows (book/src/generated/).
#
# Every block a page presents as "what you will see" is included from a file
# written here, by running the real command inside the workbook's pinned-kernel
# VM through `labctl run`. Nothing in those files is typed by hand. The files
# are committed, so the book builds without a VM; rerun this after changing a
# lab, the kernel matrix or the guest tools (`just book-outputs`).
#
# Usage: bash book/outputs.sh [NAME...]   (no NAME: regenerate everything)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out="$repo/book/src/generated"
cd "$repo"
mkdir -p "$out"

# Build labctl once; then each capture reuses the binary instead of going
# through cargo's freshness check again.
cargo build -q -p labctl
labctl="$repo/target/debug/labctl"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

only=("$@")
wanted() {
    [ ${#only[@]} -eq 0 ] && return 0
    local name
    for name in "${only[@]}"; do [ "$name" = "$1" ] && return 0; done
    return 1
}

# capture NAME EXPECTED_STATUS LABCTL_ARGS...
# (bookcheck reads these lines: a page may only include generated/NAME.txt
# when a `capture NAME` line here produces it.)
# Runs `labctl LABCTL_ARGS...`, writes its stdout followed by its stderr to
# generated/NAME.txt, and fails if the exit status is not the expected one,
# so that a broken command never silently turns into a broken page. The two
# streams are kept apart and joined in a fixed order: interleaving them as a
# terminal does would make the file differ from run to run (and `strace -c`
# prints its table to stderr after the program's stdout anyway).
capture() {
    local name=$1
    shift
    wanted "$name" || return 0
    capture_to "$out/$name.txt" "$@"
}

# capture_to FILE EXPECTED_STATUS LABCTL_ARGS...: capture, into any file.
capture_to() {
    local file=$1 expected=$2
    shift 2
    local tmp status=0
    tmp=$(mktemp -d)
    echo "> labctl $*" >&2
    "$labctl" "$@" >"$tmp/stdout" 2>"$tmp/stderr" || status=$?
    if [ "$status" -ne "$expected" ]; then
        echo "error: 'labctl $*' exited with $status, expected $expected; output:" >&2
        cat "$tmp/stdout" "$tmp/stderr" >&2
        rm -rf "$tmp"
        return 1
    fi
    # `labctl lab` prints the verdict on stdout and the build and VM
    # commands it runs on stderr; the book shows the verdict.
    local streams=(stdout stderr)
    [ "$1" = lab ] && streams=(stdout)
    # Each stream ends in exactly one newline (trailing blank lines would
    # show up as empty lines in the code block), and paths are shown
    # relative to the repository, as a reader's checkout would print them.
    for stream in "${streams[@]}"; do
        if [ -s "$tmp/$stream" ]; then
            sed -e "s|$repo/||g" -e :a -e '/^\n*$/{$d;N;ba' -e '}' "$tmp/$stream" | awk 1
        fi
    done >"$file"
    rm -rf "$tmp"
}

# bundle DEMO FILE...: prints the path of a shell script that unpacks each
# FILE to /tmp in the guest and then runs book/demos/DEMO with the script's
# arguments. `labctl run` copies one host file into the VM (the command
# itself), so a demo that needs a lab binary or compiled eBPF objects *and*
# other commands travels as one script.
bundle() {
    local demo=$1 file name script
    shift
    script="$work/$demo"
    {
        echo '#!/bin/sh'
        echo 'set -e'
        echo 'mkdir -p /tmp'
        for file in "$@"; do
            name=$(basename "$file")
            # Debug info is of no use in the guest and triples the size.
            if [ -x "$file" ]; then strip -o "$work/$name.stripped" "$file"; else cp "$file" "$work/$name.stripped"; fi
            echo "base64 -d <<'PAYLOAD' | gunzip >/tmp/$name"
            gzip -9 -c "$work/$name.stripped" | base64
            echo 'PAYLOAD'
            echo "chmod +x /tmp/$name"
        done
        cat "book/demos/$demo"
    } >"$script"
    chmod +x "$script"
    echo "$script"
}

# compile_bpf NAME: book/demos/bpf/NAME.bpf.c to $work/NAME.bpf.o. The demo
# programs need only clang: demo.h stands in for libbpf's headers.
compile_bpf() {
    clang -g -O2 -target bpf -Wall -Wno-uninitialized -c "book/demos/bpf/$1.bpf.c" -o "$work/$1.bpf.o"
    echo "$work/$1.bpf.o"
}

# Chapter 1: the kernel the VM runs, and syscall censuses of a statically
# linked program (BusyBox echo) and a dynamically linked one (bpftool).
capture uname-r 0 run -- uname -r
capture strace-c-echo 0 run -- strace -c /bin/echo hello
capture strace-getrandom 0 run -- strace -e trace=getrandom,readlink /bin/echo hi
capture strace-c-bpftool-version 0 run -- strace -c /usr/sbin/bpftool version

# Chapter 4: the bpf() system call seen through strace, driven by bpftool on a
# pinned hash map. Each capture starts from a fresh VM, so it sets up what it
# needs; `2>&1` keeps strace's lines in order with bpftool's.
map=/sys/fs/bpf/counts
create_map="bpftool map create $map type hash key 4 value 8 entries 16 name counts"
put_42="bpftool map update pinned $map key 1 0 0 0 value 42 0 0 0 0 0 0 0"
capture bpf-map-create 0 run -- /bin/sh -c "strace -e trace=bpf $create_map 2>&1"
capture bpf-map-update 0 run -- /bin/sh -c "$create_map && strace -e trace=bpf $put_42 2>&1"
capture bpf-map-dump 0 run -- /bin/sh -c "$create_map && $put_42 && strace -e trace=bpf bpftool map dump pinned $map 2>&1"
capture bpf-map-show 0 run -- /bin/sh -c "$create_map && $put_42 && bpftool map show && ls -l /sys/fs/bpf"

# Chapter 5: the same struct in two kernels' BTF, to show why CO-RE exists.
task_struct_fields="uname -r; bpftool btf dump file /sys/kernel/btf/vmlinux format raw |
    awk '/^\\[[0-9]+\\] STRUCT .task_struct. /{f=1; print; next}
         f && /^\t.(pid|tgid|comm). /{print}
         f && /^\\[/{exit}'"
capture btf-task-struct-6.1 0 run --kernel 6.1 -- /bin/sh -c "$task_struct_fields"
capture btf-task-struct-6.12 0 run --kernel 6.12 -- /bin/sh -c "$task_struct_fields"
capture btf-sysfs 0 run -- /bin/sh -c "ls /sys/kernel/btf | head -n 5; ls /sys/kernel/btf | wc -l; bpftool btf show | head -n 3"

# Chapter 6: the verifier accepting one program and rejecting four, each
# with its log, in the VM's kernel.
verifier_demo() { bundle verifier.sh "$(compile_bpf "$1")"; }
capture verifier-drop_icmp 0 run --timeout 120 -- "$(verifier_demo drop_icmp)" drop_icmp
capture verifier-no_bounds_check 255 run --timeout 120 -- "$(verifier_demo no_bounds_check)" no_bounds_check
capture verifier-no_null_check 255 run --timeout 120 -- "$(verifier_demo no_null_check)" no_null_check
capture verifier-unbounded_loop 255 run --timeout 120 -- "$(verifier_demo unbounded_loop)" unbounded_loop
capture verifier-not_gpl 255 run --timeout 120 -- "$(verifier_demo not_gpl)" not_gpl

# Chapter 7: which program types the VM's kernel supports.
capture feature-prog-types 0 run -- /bin/sh -c "bpftool feature probe kernel 2>/dev/null | grep 'program_type'"

# Chapter 8: the accepted verifier demo attached with XDP to the loopback
# device, and run on hand-made packets with BPF_PROG_TEST_RUN.
xdp_demo() { bundle xdp.sh "$(compile_bpf drop_icmp)"; }
capture xdp-ping 0 run --timeout 120 -- "$(xdp_demo)" ping
capture xdp-test-run 0 run --timeout 120 -- "$(xdp_demo)" test-run

# Chapter 9: a seccomp filter at work (strace installs one to stop only at
# the system calls it traces), and the LSMs the VM's kernel runs.
capture seccomp-status 0 run -- /bin/sh -c "
    echo '\$ grep Seccomp /proc/self/status'
    grep Seccomp /proc/self/status
    echo '\$ strace -qq -f --seccomp-bpf -e trace=none grep Seccomp /proc/self/status'
    strace -qq -f --seccomp-bpf -e trace=none grep Seccomp /proc/self/status"
capture lsm-list 0 run -- /bin/sh -c "mount -t securityfs securityfs /sys/kernel/security &&
    cat /sys/kernel/security/lsm && echo"

# Chapter 10: the versions of the tools in the lab VM.
capture tool-versions 0 run -- /bin/sh -c "bpftool version; strace -V | head -n 1; /sbin/ip -V"

# Chapter 11: how much more a newer kernel offers eBPF programs, counted
# in its BTF.
kernel_growth="btf() { bpftool btf dump file /sys/kernel/btf/vmlinux format raw; }
    echo \"kernel:                                 \$(uname -r)\"
    echo \"functions tagged bpf_kfunc:             \$(btf | grep -c \"DECL_TAG 'bpf_kfunc'\")\"
    echo \"BPF arena kfuncs (bpf_arena_*):         \$(btf | grep -c \"FUNC 'bpf_arena_\")\""
capture kernel-growth-6.1 0 run --kernel 6.1 -- /bin/sh -c "$kernel_growth"
capture kernel-growth-6.12 0 run --kernel 6.12 -- /bin/sh -c "$kernel_growth"

# Lab pages: what the starter's verdict looks like, and what passing looks
# like.
capture lab-01-starter 1 lab 1
capture lab-01-solution 0 lab 1 --solution
capture lab-03-starter 1 lab 3
capture lab-03-solution 0 lab 3 --solution
capture lab-02-starter 1 lab 2
capture lab-02-solution 0 lab 2 --solution
capture lab-04-starter 1 lab 4
capture lab-04-solution 0 lab 4 --solution
capture lab-05-starter 1 lab 5
capture lab-05-solution 0 lab 5 --solution
capture lab-06-starter 1 lab 6
capture lab-06-solution 0 lab 6 --solution
capture lab-07-starter 1 lab 7
capture lab-07-solution 0 lab 7 --solution
capture lab-08-starter 1 lab 8
capture lab-08-solution 0 lab 8 --solution
capture lab-09-starter 1 lab 9
capture lab-09-solution 0 lab 9 --solution
capture lab-10-starter 1 lab 10
capture lab-10-solution 0 lab 10 --solution
capture lab-11-starter 1 lab 11
capture lab-11-solution 0 lab 11 --solution
capture lab-12-starter 1 lab 12
capture lab-12-solution 0 lab 12 --solution
capture lab-13-starter 1 lab 13
capture lab-13-solution 0 lab 13 --solution
capture lab-14-starter 1 lab 14
capture lab-14-solution 0 lab 14 --solution
capture lab-15-starter 1 lab 15
capture lab-15-solution 0 lab 15 --solution
capture lab-16-starter 1 lab 16
capture lab-16-solution 0 lab 16 --solution

# Lab 11: what an fentry, an fexit, a kprobe and a kretprobe on do_unlinkat
# cost per call, measured by the lab's own benchmark in the VM.
if wanted unlink-bench; then
    cargo build -q -p lab11-fentry-fexit --bin unlink-bench
    capture unlink-bench 0 run --timeout 300 -- target/debug/unlink-bench
fi

# Chapter 6: what a learner sees when the verifier rejects a lab's program
# (lab 04's mutant that drops a NULL check), on a kernel whose log names
# the C file and line. A fixed seed keeps the hints the same between runs.
capture tutor-lab-04 1 lab 4 --mutant no-null-check --kernel 6.12 --quiet --seed 4

# Chapters 2 and 3: the Hello World solution at work, then as the kernel
# holds it.
if wanted hello-trace || wanted hello-prog-show || wanted hello-xlated || wanted hello-jited; then
    # Starter and solution share target/debug: build the solution last.
    "$labctl" lab 3 --solution >/dev/null
    hello=$(bundle hello-world.sh target/debug/hello-world)
    capture hello-trace 0 run --timeout 60 -- "$hello" trace
    # target/debug is shared with starter builds: make sure the binary that
    # travelled was the solution.
    if wanted hello-trace && ! grep -q 'Hello World /bin/uname' "$out/hello-trace.txt"; then
        echo "error: hello-trace.txt has no 'Hello World /bin/uname' line;" \
            "target/debug/hello-world was not the solution (a starter build ran meanwhile?)" >&2
        exit 1
    fi
    capture hello-prog-show 0 run --timeout 60 -- "$hello" prog-show
    capture hello-xlated 0 run --timeout 60 -- "$hello" xlated
    # Debian's bpftool is built without a disassembler; the page shows
    # what that looks like.
    capture hello-jited 255 run --timeout 60 -- "$hello" jited
fi

# The compatibility page and the README's table: every lab on every kernel
# of the matrix, from a real run (starters fail with a hint, solutions pass;
# the mutants, which prove the checks and not the kernels, are left to
# `just test`). The README's copy sits between its two compatibility markers.
if wanted compatibility; then
    echo "> labctl verify --kernel all --no-mutants" >&2
    if ! "$labctl" verify --kernel all --no-mutants -q >"$work/matrix.log" 2>&1; then
        cat "$work/matrix.log" >&2
        echo "error: the matrix run failed; the compatibility table is left as it was" >&2
        exit 1
    fi
    grep '^Matrix run in' "$work/matrix.log" >&2
fi
capture compatibility 0 matrix

# What fetching prints when a pin is gone from its suite: a matrix that
# still pins bookworm's 6.1.0-9 of 2023, in a workspace of its own (the
# downloads are shared with this one's cache, so nothing big is fetched).
vanished="$work/vanished"
mkdir -p "$vanished/vm/cache" "$vanished/labs"
ln -s "$repo/vm/cache/downloads" "$vanished/vm/cache/downloads"
cat >"$vanished/vm/kernels.toml" <<'TOML'
default = "6.1"
[[kernel]]
name = "6.1"
suite = "bookworm-security"
series = "6.1"
package = "linux-image-6.1.0-9-cloud-amd64"
version = "6.1.27-1"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
release = "6.1.0-9-cloud-amd64"
TOML
(
    export WORKBOOK_ROOT="$vanished"
    capture kernel-fallback 0 kernels --fetch --quiet
)
if wanted compatibility; then
    awk -v table="$out/compatibility.txt" '
        /^<!-- compatibility:end -->/ { skipping = 0 }
        !skipping { print }
        /^<!-- compatibility:begin/ { while ((getline line < table) > 0) print line; skipping = 1 }
    ' README.md >"$work/README.md"
    cat "$work/README.md" >README.md
fi

echo "book outputs written to $out" >&2

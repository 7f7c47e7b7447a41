#!/usr/bin/env bash
# Captures the verifier logs that the tutor's unit tests read
# (harness/src/tutor.rs): each rejected demo of book/demos/bpf/ loaded with
# bpftool in the lab VM, one VM per kernel, a log per program in
# harness/tests/data/verifier/<kernel>/<program>.log.
#
# Usage: bash harness/tests/data/verifier/capture.sh [KERNEL...]   (default: 6.1 6.12)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../../.." && pwd)
data="$repo/harness/tests/data/verifier"
cd "$repo"
kernels=("$@")
[ ${#kernels[@]} -eq 0 ] && kernels=(6.1 6.12)

programs=(no_null_check no_bounds_check unbounded_loop not_gpl uninit_stack ringbuf_leak wrong_helper
    ctx_write deref_scalar signed_index unchecked_index off_by_one infinite_loop no_return misaligned
    big_stack bad_return arg_type)

cargo build -q -p labctl
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One guest script carries every object (labctl run copies the command
# itself into the VM) and loads them one after another, so that a kernel
# costs one boot.
script="$work/load-all.sh"
{
    echo '#!/bin/sh'
    echo 'mkdir -p /tmp'
    for name in "${programs[@]}"; do
        clang -g -O2 -target bpf -Wall -Wno-uninitialized -c "book/demos/bpf/$name.bpf.c" -o "$work/$name.bpf.o"
        echo "base64 -d <<'PAYLOAD' | gunzip >/tmp/$name.bpf.o"
        gzip -9 -c "$work/$name.bpf.o" | base64
        echo 'PAYLOAD'
    done
    # A log that runs to thousands of lines (the unbounded loop's has
    # over 100,000) is cut to its beginning and its end, as the book does:
    # the serial line that carries it is slow, and the end decides.
    cat <<'GUEST'
for obj in /tmp/*.bpf.o; do
    name=$(basename "$obj" .bpf.o)
    echo "=== $name"
    bpftool prog load "$obj" "/sys/fs/bpf/$name" >/tmp/load.log 2>&1 && echo "(loaded)"
    lines=$(wc -l </tmp/load.log)
    if [ "$lines" -gt 400 ]; then
        head -n 200 /tmp/load.log
        echo "[... $((lines - 300)) lines of the log left out ...]"
        tail -n 100 /tmp/load.log
    else
        cat /tmp/load.log
    fi
done
GUEST
} >"$script"
chmod +x "$script"

for kernel in "${kernels[@]}"; do
    echo "> labctl run --kernel $kernel -- load-all.sh" >&2
    target/debug/labctl run --kernel "$kernel" --timeout 300 -- "$script" >"$work/out.txt"
    mkdir -p "$data/$kernel"
    awk -v dir="$data/$kernel" '
        /^=== / { file = dir "/" substr($0, 5) ".log"; printf "" > file; next }
        file { print > file }
    ' "$work/out.txt"
    echo "$kernel: $(ls "$data/$kernel" | wc -l) logs in $data/$kernel" >&2
done

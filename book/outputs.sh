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
    local name=$1 expected=$2
    shift 2
    wanted "$name" || return 0
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
    # Each stream ends in exactly one newline; trailing blank lines would
    # show up as empty lines in the code block.
    for stream in stdout stderr; do
        [ -s "$tmp/$stream" ] && sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' "$tmp/$stream"
    done >"$out/$name.txt"
    rm -rf "$tmp"
}

# Chapter 1: the kernel the VM runs, and syscall censuses of a statically
# linked program (BusyBox echo) and a dynamically linked one (bpftool).
capture uname-r 0 run -- uname -r
capture strace-c-echo 0 run -- strace -c /bin/echo hello
capture strace-getrandom 0 run -- strace -e trace=getrandom,readlink /bin/echo hi
capture strace-c-bpftool-version 0 run -- strace -c /usr/sbin/bpftool version

echo "book outputs written to $out" >&2

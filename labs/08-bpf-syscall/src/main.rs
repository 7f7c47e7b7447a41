//! `bpf-syscall [PIN_PATH [KEY=VALUE...]]`: create a BPF hash map with raw
//! bpf() calls, store the entries in it (default 22=3 80=5 443=7), work on
//! it, and pin it (default /sys/fs/bpf/lab08_counts).

use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let pin = args.first().map_or_else(|| PathBuf::from(lab08_bpf_syscall::DEFAULT_PIN), PathBuf::from);
    let entries = match args.get(1..) {
        Some(rest) if !rest.is_empty() => lab08_bpf_syscall::parse_entries(rest)?,
        _ => lab08_bpf_syscall::PORTS.to_vec(),
    };
    lab08_bpf_syscall::run(&pin, &entries, &mut std::io::stdout().lock())
}

//! `bpf-syscall [PIN_PATH [KEY=VALUE...]]`: create a BPF hash map with raw
//! bpf() calls, store the entries in it (default 22=3 80=5 443=7), work on
//! it, and pin it (default /sys/fs/bpf/lab08_counts). `LAB08_WRITTEN=N` in
//! the environment: the value a second descriptor stores at the last key
//! (default 1000).

use std::path::PathBuf;

use anyhow::Context;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let pin = args.first().map_or_else(|| PathBuf::from(lab08_bpf_syscall::DEFAULT_PIN), PathBuf::from);
    let entries = match args.get(1..) {
        Some(rest) if !rest.is_empty() => lab08_bpf_syscall::parse_entries(rest)?,
        _ => lab08_bpf_syscall::PORTS.to_vec(),
    };
    let written = match std::env::var("LAB08_WRITTEN") {
        Ok(v) => v.parse().with_context(|| format!("LAB08_WRITTEN={v}: expected a u64"))?,
        Err(_) => 1000,
    };
    lab08_bpf_syscall::run(&pin, &entries, written, &mut std::io::stdout().lock())
}

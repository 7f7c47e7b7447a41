//! `bytecode-by-hand [PIN_PATH]`: load the hand-written socket filter, pin
//! it (default /sys/fs/bpf/lab07_len_filter) and test-run it on a few
//! frames.

use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let pin =
        std::env::args_os().nth(1).map_or_else(|| PathBuf::from(lab07_bytecode_by_hand::DEFAULT_PIN), PathBuf::from);
    lab07_bytecode_by_hand::run(&pin, &mut std::io::stdout().lock())
}

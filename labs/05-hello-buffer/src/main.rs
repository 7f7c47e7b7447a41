//! Loads the execve program and prints every event it sends through the
//! ring buffer, until interrupted.

mod event;

use std::mem::MaybeUninit;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use libbpf_rs::RingBufferBuilder;
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};

use event::Event;

mod hello_buffer {
    include!(concat!(env!("OUT_DIR"), "/hello_buffer.skel.rs"));
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
        hello_buffer::HelloBufferSkelBuilder::default().open(&mut storage).context("failed to open the BPF object")?;
    let mut skel = open.load().context("failed to load the BPF program (is this running as root?)")?;
    skel.attach().context("failed to attach the kprobe on execve")?;

    // The callback runs inside poll(), once per submitted event.
    let mut builder = RingBufferBuilder::new();
    builder
        .add(&skel.maps.events, |bytes: &[u8]| {
            match Event::parse(bytes) {
                Ok(event) => println!("{event}"),
                Err(e) => eprintln!("hello-buffer: a bad event: {e:#}"),
            }
            0
        })
        .context("failed to add the ring buffer")?;
    let ring = builder.build().context("failed to set up the ring buffer")?;

    eprintln!("Attached. Printing an event per execve; press Ctrl-C to stop.");
    println!("{}", Event::header());
    while !stop.load(Ordering::Relaxed) {
        // Sleeps until an event arrives or POLL passes. A signal may cut
        // the wait short with EINTR: that is no error, just a reason to
        // look at the flag.
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

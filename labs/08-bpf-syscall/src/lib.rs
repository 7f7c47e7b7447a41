//! Lab 08: a BPF map's whole life, one bpf() system call at a time.
//!
//! `sys` is the system call and its argument layouts; `map` wraps one map
//! in methods, one command each; `run` is the story the lab tells: create,
//! add, look up, update, delete, walk, pin.

pub mod map;
pub mod sys;

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail, ensure};

pub use map::CountMap;

/// Where the map is pinned unless told otherwise.
pub const DEFAULT_PIN: &str = "/sys/fs/bpf/lab08_counts";
/// The map's name, as `bpftool map show` lists it.
pub const MAP_NAME: &str = "lab08_counts";

/// Packets seen per port: what we store.
const PORTS: [(u32, u64); 3] = [(22, 3), (80, 5), (443, 7)];

// ANCHOR: main
/// Creates the map, exercises every element command on it, and pins it at
/// `pin_path`, reporting each step on `out`.
pub fn run(pin_path: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    let map = CountMap::create(MAP_NAME, 16).context("BPF_MAP_CREATE failed (are you root?)")?;
    writeln!(out, "created hash map {MAP_NAME}")?;

    for (port, packets) in PORTS {
        map.update(port, packets, sys::BPF_NOEXIST).with_context(|| format!("adding {port}"))?;
        writeln!(out, "added {port} -> {packets}")?;
    }
    // The kernel, not we, enforces BPF_NOEXIST.
    match map.update(443, 0, sys::BPF_NOEXIST) {
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => writeln!(out, "adding 443 again is refused: {e}")?,
        other => bail!("adding 443 a second time with BPF_NOEXIST should fail with EEXIST, got {other:?}"),
    }

    let packets = map.lookup(80).context("looking up 80")?;
    writeln!(out, "lookup 80 -> {packets:?}")?;
    ensure!(packets == Some(5), "80 should hold 5, not {packets:?}");

    map.update(80, 6, sys::BPF_EXIST).context("updating 80")?;
    writeln!(out, "updated 80 -> 6")?;

    map.delete(22).context("deleting 22")?;
    let gone = map.lookup(22).context("looking up 22 after deleting it")?;
    writeln!(out, "deleted 22; lookup 22 -> {gone:?}")?;
    ensure!(gone.is_none(), "22 is still there after BPF_MAP_DELETE_ELEM");

    // A hash map has no order of its own: walk it the way bpftool does.
    let mut key = None;
    while let Some(next) = map.next_key(key).context("walking the keys")? {
        let value = map.lookup(next).with_context(|| format!("looking up {next}"))?;
        writeln!(out, "walk: {next} -> {value:?}")?;
        key = Some(next);
    }

    // A pin left by an earlier run would make BPF_OBJ_PIN fail with EEXIST.
    match std::fs::remove_file(pin_path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("removing the old pin {}", pin_path.display()));
        }
        _ => {}
    }
    map.pin(pin_path).with_context(|| format!("pinning the map at {}", pin_path.display()))?;
    writeln!(out, "pinned at {}", pin_path.display())?;
    Ok(())
}
// ANCHOR_END: main

//! Lab 08: a BPF map's whole life, one bpf() system call at a time.
//!
//! `sys` is the system call and its argument layouts; `map` wraps one map
//! in methods, one command each; `run` is the story the lab tells: create,
//! add, look up, update, delete, walk, pin.

pub mod map;
pub mod sys;

use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::Path;

use anyhow::{Context, bail, ensure};

pub use map::CountMap;

/// Where the map is pinned unless told otherwise.
pub const DEFAULT_PIN: &str = "/sys/fs/bpf/lab08_counts";
/// The map's name, as `bpftool map show` lists it.
pub const MAP_NAME: &str = "lab08_counts";

/// Packets seen per port: what we store when we are told nothing else.
pub const PORTS: [(u32, u64); 3] = [(22, 3), (80, 5), (443, 7)];

/// Reads `KEY=VALUE` arguments (a u32 key, a u64 value).
pub fn parse_entries(args: &[String]) -> anyhow::Result<Vec<(u32, u64)>> {
    args.iter()
        .map(|a| {
            let (k, v) = a.split_once('=').with_context(|| format!("{a:?} is not KEY=VALUE"))?;
            Ok((
                k.parse().with_context(|| format!("{k:?} is not a u32 key"))?,
                v.parse().with_context(|| format!("{v:?} is not a u64 value"))?,
            ))
        })
        .collect()
}

// ANCHOR: main
/// Creates the map, stores `entries` in it (at least two), exercises every
/// element command on it, and pins it at `pin_path`, reporting each step
/// on `out`. The first entry is deleted, the second counts one more
/// packet, the last is refused a second time. Then, as a second program
/// would, it opens the pin: through one descriptor it stores `written` at
/// the last key, which our own lookup must see; through a write-only one,
/// reading must be refused.
pub fn run(pin_path: &Path, entries: &[(u32, u64)], written: u64, out: &mut impl Write) -> anyhow::Result<()> {
    let [(gone_port, _), (counted_port, counted), ..] = entries else {
        bail!("give at least two entries");
    };
    let (last_port, _) = entries[entries.len() - 1];
    let map = CountMap::create(MAP_NAME, 16).context("BPF_MAP_CREATE failed (are you root?)")?;
    writeln!(out, "created hash map {MAP_NAME}")?;

    for &(port, packets) in entries {
        map.update(port, packets, sys::BPF_NOEXIST).with_context(|| format!("adding {port}"))?;
        writeln!(out, "added {port} -> {packets}")?;
    }
    // The kernel, not we, enforces BPF_NOEXIST.
    match map.update(last_port, 0, sys::BPF_NOEXIST) {
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => writeln!(out, "adding {last_port} again is refused: {e}")?,
        other => bail!("adding {last_port} a second time with BPF_NOEXIST should fail with EEXIST, got {other:?}"),
    }

    // One more packet for a port: read the count, write it back plus one.
    let packets = map.lookup(*counted_port).with_context(|| format!("looking up {counted_port}"))?;
    writeln!(out, "lookup {counted_port} -> {packets:?}")?;
    ensure!(packets == Some(*counted), "{counted_port} should hold {counted}, not {packets:?}");
    let packets = packets.unwrap_or_default() + 1;
    map.update(*counted_port, packets, sys::BPF_EXIST).with_context(|| format!("updating {counted_port}"))?;
    writeln!(out, "updated {counted_port} -> {packets}")?;

    map.delete(*gone_port).with_context(|| format!("deleting {gone_port}"))?;
    let gone = map.lookup(*gone_port).with_context(|| format!("looking up {gone_port} after deleting it"))?;
    writeln!(out, "deleted {gone_port}; lookup {gone_port} -> {gone:?}")?;
    ensure!(gone.is_none(), "{gone_port} is still there after BPF_MAP_DELETE_ELEM");

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

    // The map is the kernel's, not ours: whoever holds a descriptor may
    // change it behind our back, so a lookup must ask the kernel each time.
    // This writer goes around CountMap, as another program would.
    let other = sys::obj_get(pin_path, 0).context("BPF_OBJ_GET on our own pin")?;
    let mut attr = sys::ElemAttr {
        map_fd: other.as_raw_fd() as u32,
        key: sys::addr(&last_port),
        value_or_next_key: sys::addr(&written),
        flags: sys::BPF_EXIST,
        ..Default::default()
    };
    sys::bpf(sys::Cmd::MapUpdateElem, &mut attr).with_context(|| format!("the other writer storing {last_port}"))?;
    let seen = map.lookup(last_port).with_context(|| format!("looking up {last_port} after the other writer"))?;
    writeln!(out, "another descriptor stored {last_port} -> {written}; lookup {last_port} -> {seen:?}")?;
    ensure!(seen == Some(written), "{last_port} holds {written} in the kernel, but lookup says {seen:?}");

    // A write-only descriptor: the kernel refuses to read through it, and
    // that refusal is an error, not "no such key" or "end of the walk".
    let write_only = CountMap::from_fd(sys::obj_get(pin_path, sys::BPF_F_WRONLY).context("BPF_OBJ_GET, write-only")?);
    match write_only.lookup(last_port) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            writeln!(out, "lookup through a write-only descriptor: {e}")?
        }
        other => bail!("a lookup through a write-only descriptor must fail with EPERM, got {other:?}"),
    }
    match write_only.next_key(None) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => writeln!(out, "walk through a write-only descriptor: {e}")?,
        other => bail!("a walk through a write-only descriptor must fail with EPERM, got {other:?}"),
    }
    Ok(())
}
// ANCHOR_END: main

//! Reading the kernel's counts: the user-space half of the lab.

use std::collections::BTreeMap;

use libbpf_rs::MapCore;

// ANCHOR: todo
/// Reads the whole map: user ID -> number of execve calls.
pub fn read_counts(map: &impl MapCore) -> anyhow::Result<BTreeMap<u32, u64>> {
    // TODO: walk the map into a BTreeMap. `map.keys()` yields every key as
    // raw bytes (a u32 in the machine's byte order: `u32::from_ne_bytes`);
    // `map.lookup(&key, libbpf_rs::MapFlags::ANY)?` returns the value's bytes
    // (a u64), or None when the entry went away in between.
    let _ = map;
    Ok(BTreeMap::new())
}
// ANCHOR_END: todo

//! Reading the kernel's counts: the user-space half of the lab.

use std::collections::BTreeMap;

use anyhow::Context;
use libbpf_rs::{MapCore, MapFlags};

// ANCHOR: solution
/// Reads the whole map: user ID -> number of execve calls.
pub fn read_counts(map: &impl MapCore) -> anyhow::Result<BTreeMap<u32, u64>> {
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

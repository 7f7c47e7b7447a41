//! The program array: which handler runs for which system call.

use std::os::fd::{AsFd, AsRawFd};

use anyhow::Context;
use libbpf_rs::{MapCore, MapFlags};

use crate::{NR_CLOCK_NANOSLEEP, NR_EXECVE, NR_NANOSLEEP, TailCallsSkel};

/// Puts each handler in the slots of the system calls it handles:
/// `handle_execve` at execve, `handle_timer` at nanosleep and
/// clock_nanosleep.
pub fn fill(skel: &TailCallsSkel<'_>) -> anyhow::Result<()> {
    // ANCHOR: solution
    let slots = [
        (NR_EXECVE, &skel.progs.handle_execve),
        (NR_NANOSLEEP, &skel.progs.handle_timer),
        (NR_CLOCK_NANOSLEEP, &skel.progs.handle_timer),
    ];
    for (nr, prog) in slots {
        // The value is the program's file descriptor; the kernel keeps a
        // reference to the program itself, which bpftool shows as its ID.
        let fd = prog.as_fd().as_raw_fd();
        skel.maps
            .syscall_progs
            .update(&nr.to_ne_bytes(), &fd.to_ne_bytes(), MapFlags::ANY)
            .with_context(|| format!("putting {} in slot {nr}", prog.name().to_string_lossy()))?;
    }
    Ok(())
    // ANCHOR_END: solution
}

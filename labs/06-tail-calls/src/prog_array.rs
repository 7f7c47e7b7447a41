//! The program array: which handler runs for which system call.

use crate::TailCallsSkel;

/// Puts each handler in the slots of the system calls it handles:
/// `handle_execve` at execve, `handle_timer` at nanosleep and
/// clock_nanosleep.
pub fn fill(skel: &TailCallsSkel<'_>) -> anyhow::Result<()> {
    // ANCHOR: todo
    // TODO: fill skel.maps.syscall_progs. A program array's key is the slot
    // (a u32: the system call number, crate::NR_EXECVE, …) and its value is
    // the file descriptor of a loaded program (an i32) — the kernel turns it
    // into a reference to the program. With `libbpf_rs::MapCore` in scope:
    //   map.update(&nr.to_ne_bytes(), &fd.to_ne_bytes(), libbpf_rs::MapFlags::ANY)
    // where fd = skel.progs.handle_execve.as_fd().as_raw_fd()
    // (std::os::fd::{AsFd, AsRawFd}).
    let _ = skel;
    Ok(())
    // ANCHOR_END: todo
}

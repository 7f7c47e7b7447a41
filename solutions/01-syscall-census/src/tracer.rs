//! The ptrace loop: the heart of the lab.

use std::path::Path;
use std::time::Instant;

use nix::sys::ptrace;
use nix::sys::wait::{WaitStatus, waitpid};

use crate::census::Census;
use crate::child::spawn_traced;

/// Runs `program` under ptrace and counts its system calls.
pub fn trace(program: &Path, args: &[String]) -> anyhow::Result<Census> {
    // The child is stopped just before its execve.
    let pid = spawn_traced(program, args)?;
    // ANCHOR: solution
    let mut census = Census::default();
    // The syscall in flight: its number and when it entered the kernel.
    let mut in_flight: Option<(u64, Instant)> = None;
    let mut deliver = None;
    loop {
        ptrace::syscall(pid, deliver.take())?;
        match waitpid(pid, None)? {
            WaitStatus::PtraceSyscall(_) => {
                let regs = ptrace::getregs(pid)?;
                match in_flight.take() {
                    // On entry, orig_rax holds the number and rax -ENOSYS.
                    None => in_flight = Some((regs.orig_rax, Instant::now())),
                    // On exit, rax holds the return value.
                    Some((nr, started)) => census.record(nr, regs.rax as i64, started.elapsed()),
                }
            }
            // The execve event comes between its entry and exit stops.
            WaitStatus::PtraceEvent(..) => {}
            WaitStatus::Stopped(_, sig) => deliver = Some(sig),
            WaitStatus::Exited(..) | WaitStatus::Signaled(..) => break,
            other => anyhow::bail!("unexpected wait status {other:?}"),
        }
    }
    // ANCHOR_END: solution
    Ok(census)
}

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
    // ANCHOR: todo
    let census = Census::default();
    // TODO: the census loop. Resume the child with `ptrace::syscall(pid, None)`
    // so that it stops at the next syscall entry or exit, then `waitpid` and
    // look at the status:
    //   - WaitStatus::PtraceSyscall: a syscall stop. Stops alternate entry,
    //     exit, entry, ... On entry remember the syscall number
    //     (`ptrace::getregs(pid)?.orig_rax`) and `Instant::now()`; on exit
    //     read the return value (`regs.rax as i64`) and call
    //     `census.record(nr, ret, started.elapsed())`.
    //   - WaitStatus::PtraceEvent: the execve event; just resume.
    //   - WaitStatus::Stopped(_, sig): a signal for the child; resume with
    //     `ptrace::syscall(pid, Some(sig))` so that it is delivered.
    //   - WaitStatus::Exited / Signaled: the child is gone; stop looping.
    // For now the child just runs to the end, untraced.
    let _ = Instant::now;
    ptrace::cont(pid, None)?;
    loop {
        match waitpid(pid, None)? {
            WaitStatus::Exited(..) | WaitStatus::Signaled(..) => break,
            _ => ptrace::cont(pid, None)?,
        }
    }
    // ANCHOR_END: todo
    Ok(census)
}

//! The ptrace counter: lab 01's tracer, counting only. It stops the child
//! twice per system call and reads its registers each time.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::ptrace;
use nix::sys::wait::{WaitStatus, waitpid};

use crate::census::{Census, is_error};
use crate::child::spawn_stopped;

/// Runs `program` under ptrace; returns its census and how long it ran.
pub fn count(program: &Path, args: &[String]) -> anyhow::Result<(Census, Duration)> {
    let pid = spawn_stopped(program, args, true)?;
    waitpid(pid, None).context("waiting for the child to stop")?;
    // TRACESYSGOOD marks syscall stops apart from signals; TRACEEXEC turns
    // the SIGTRAP after execve into an event; EXITKILL: the child dies with us.
    ptrace::setoptions(
        pid,
        ptrace::Options::PTRACE_O_TRACESYSGOOD
            | ptrace::Options::PTRACE_O_TRACEEXEC
            | ptrace::Options::PTRACE_O_EXITKILL,
    )
    .context("PTRACE_SETOPTIONS")?;

    let started = Instant::now();
    let mut census = Census::default();
    // The syscall in flight, between its entry and exit stops.
    let mut in_flight: Option<u64> = None;
    let mut deliver = None;
    loop {
        ptrace::syscall(pid, deliver.take()).context("PTRACE_SYSCALL")?;
        match waitpid(pid, None).context("waiting for the child")? {
            WaitStatus::PtraceSyscall(_) => {
                let regs = ptrace::getregs(pid).context("PTRACE_GETREGS")?;
                match in_flight.take() {
                    None => in_flight = Some(regs.orig_rax),
                    Some(nr) => census.add(nr, 1, u64::from(is_error(regs.rax as i64))),
                }
            }
            // The execve event comes between its entry and exit stops.
            WaitStatus::PtraceEvent(..) => {}
            WaitStatus::Stopped(_, sig) => deliver = Some(sig),
            WaitStatus::Exited(..) | WaitStatus::Signaled(..) => break,
            other => anyhow::bail!("unexpected wait status {other:?}"),
        }
    }
    Ok((census, started.elapsed()))
}

//! The ptrace loop: the heart of the lab.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::Context;
use nix::sys::ptrace;
use nix::sys::signal::{Signal, raise};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::census::Census;

/// Runs `program` under ptrace and counts its system calls.
pub fn trace(program: &Path, args: &[String]) -> anyhow::Result<Census> {
    let mut command = Command::new(program);
    command.args(args);
    // SAFETY: runs in the forked child before exec; both calls are
    // async-signal-safe system calls.
    unsafe {
        command.pre_exec(|| {
            // Ask to be traced by our parent, then stop so that the parent
            // can set its options before execve, the first call we count.
            ptrace::traceme().map_err(std::io::Error::from)?;
            raise(Signal::SIGSTOP).map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    let child = command.spawn().with_context(|| format!("cannot start {}", program.display()))?;
    let pid = Pid::from_raw(child.id() as i32);

    // The child's SIGSTOP.
    waitpid(pid, None).context("waiting for the child to stop")?;
    // TRACESYSGOOD marks syscall stops apart from signals; TRACEEXEC turns
    // the SIGTRAP after a successful execve into an event we can ignore;
    // EXITKILL makes sure the child dies with us.
    ptrace::setoptions(
        pid,
        ptrace::Options::PTRACE_O_TRACESYSGOOD
            | ptrace::Options::PTRACE_O_TRACEEXEC
            | ptrace::Options::PTRACE_O_EXITKILL,
    )?;

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

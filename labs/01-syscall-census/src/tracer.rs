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

    // ANCHOR: todo
    let census = Census::default();
    // TODO: the census loop. Resume the child with `ptrace::syscall(pid, None)`
    // so that it stops at the next syscall entry or exit, then `waitpid` and
    // look at the status:
    //   - WaitStatus::PtraceSyscall: a syscall stop. Stops alternate entry,
    //     exit, entry, ... On entry remember the syscall number
    //     (`ptrace::getregs(pid)?.orig_rax`) and the time; on exit read the
    //     return value (`regs.rax as i64`) and call
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

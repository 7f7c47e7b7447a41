//! Starting the command to trace.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::Context;
use nix::sys::ptrace;
use nix::sys::signal::{Signal, raise};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, execv, fork};

/// Starts `program` stopped, as our tracee, just before its execve, with
/// the ptrace options the census loop relies on.
///
/// std's Command cannot do this: its spawn waits for the child to exec,
/// and a child that stops itself first never does.
pub fn spawn_traced(program: &Path, args: &[String]) -> anyhow::Result<Pid> {
    // Everything the child needs is allocated before fork: after it, the
    // child may only make async-signal-safe calls.
    let path = CString::new(program.as_os_str().as_bytes()).context("program path has a NUL byte")?;
    let mut argv = vec![path.clone()];
    for a in args {
        argv.push(CString::new(a.as_str()).context("argument has a NUL byte")?);
    }
    // SAFETY: the child only calls ptrace, raise, execv and _exit.
    match unsafe { fork() }.context("fork failed")? {
        ForkResult::Child => {
            // Ask to be traced by our parent, then stop so that the parent
            // can set its options before execve, the first call we count.
            let _ = ptrace::traceme();
            let _ = raise(Signal::SIGSTOP);
            let _ = execv(&path, &argv);
            // SAFETY: exec failed; leave without running the parent's atexit
            // handlers or flushing its buffers a second time.
            unsafe { libc::_exit(127) }
        }
        ForkResult::Parent { child } => {
            match waitpid(child, None).context("waiting for the child to stop")? {
                WaitStatus::Stopped(_, Signal::SIGSTOP) => {}
                other => anyhow::bail!("the child did not stop as expected: {other:?}"),
            }
            // TRACESYSGOOD marks syscall stops apart from signals; TRACEEXEC
            // turns the SIGTRAP after a successful execve into an event;
            // EXITKILL makes sure the child dies with us.
            ptrace::setoptions(
                child,
                ptrace::Options::PTRACE_O_TRACESYSGOOD
                    | ptrace::Options::PTRACE_O_TRACEEXEC
                    | ptrace::Options::PTRACE_O_EXITKILL,
            )
            .context("PTRACE_SETOPTIONS failed")?;
            Ok(child)
        }
    }
}

//! Starting the command so that no system call of it is missed.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use nix::sys::ptrace;
use nix::sys::signal::{Signal, raise};
use nix::unistd::{ForkResult, Pid, execv, fork};

/// Starts `program` stopped just before its execve: the child stops itself
/// with SIGSTOP, so that the parent can get ready (attach a tracer, load a
/// BPF program that needs the child's PID) before the first call to count.
/// With `traced`, the child first asks to be traced by its parent. The
/// caller waits for the stop.
///
/// std's Command cannot do this: its spawn waits for the child to exec,
/// and a child that stops itself first never does.
pub fn spawn_stopped(program: &Path, args: &[String], traced: bool) -> anyhow::Result<Pid> {
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
            if traced {
                let _ = ptrace::traceme();
            }
            let _ = raise(Signal::SIGSTOP);
            let _ = execv(&path, &argv);
            // SAFETY: exec failed; leave without running the parent's
            // atexit handlers or flushing its buffers a second time.
            unsafe { libc::_exit(127) }
        }
        ForkResult::Parent { child } => Ok(child),
    }
}

/// Finds `program` the way a shell would, so that the counted execve is the
/// one that succeeds: execvp trying each PATH entry would add failed
/// execve calls that `strace -c` never shows.
pub fn resolve(program: &str) -> anyhow::Result<PathBuf> {
    if program.contains('/') {
        let p = Path::new(program);
        if p.is_file() {
            return Ok(p.to_path_buf());
        }
        bail!("{program}: no such file");
    }
    let path_var = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path_var)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .with_context(|| format!("{program}: command not found in PATH ({path_var})"))
}

//! Lab 01: a syscall census. The tracer stops the child at every system
//! call entry and exit; the census counts what it saw.

mod census;
mod child;
mod tracer;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

pub use census::{Census, SyscallStats};

/// Traces `args[0]` with `args[1..]` and returns its census.
pub fn run(args: &[String]) -> anyhow::Result<Census> {
    let (program, rest) = args.split_first().context("no command given")?;
    let path = resolve(program)?;
    tracer::trace(&path, rest).with_context(|| format!("tracing {}", path.display()))
}

/// Finds `program` the way a shell would, so that the traced execve is the
/// one that succeeds: letting execvp try each PATH entry would add failed
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

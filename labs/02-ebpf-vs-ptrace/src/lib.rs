//! Lab 02: one command, its system calls counted twice, by a ptrace tracer
//! that stops it at every call and by an eBPF program that never stops it.

pub mod census;
mod child;
mod ebpf;
mod tracer;

use std::time::{Duration, Instant};

use anyhow::Context;

pub use census::Census;
pub use child::resolve;

/// How the command is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Not watched at all.
    Bare,
    Ptrace,
    Ebpf,
}

/// What one run saw.
#[derive(Debug, Clone)]
pub struct Run {
    pub mode: Mode,
    /// None for a bare run: nobody counted.
    pub census: Option<Census>,
    /// From the moment the command was let go until it exited.
    pub wall: Duration,
}

/// Runs `args[0]` with `args[1..]` in `mode`.
pub fn run(mode: Mode, args: &[String]) -> anyhow::Result<Run> {
    let (program, rest) = args.split_first().context("no command given")?;
    let path = resolve(program)?;
    let (census, wall) = match mode {
        Mode::Bare => {
            let started = Instant::now();
            let status = std::process::Command::new(&path)
                .args(rest)
                .status()
                .with_context(|| format!("cannot run {}", path.display()))?;
            anyhow::ensure!(status.success(), "{} failed: {status}", path.display());
            (None, started.elapsed())
        }
        Mode::Ptrace => tracer::count(&path, rest).map(|(c, t)| (Some(c), t))?,
        Mode::Ebpf => ebpf::count(&path, rest).map(|(c, t)| (Some(c), t))?,
    };
    Ok(Run { mode, census, wall })
}

//! `ebpf-vs-ptrace [MODE] [COMMAND...]`: count COMMAND's system calls with
//! ptrace, with eBPF, or (`compare`, the default) run it bare, under ptrace
//! and under eBPF, and print both tables and the three wall times.

use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use lab02_ebpf_vs_ptrace::{Mode, Run, run};

/// The workload: one read and one write per byte, so 2 system calls per
/// byte, and not much else.
const DEFAULT_COMMAND: [&str; 5] = ["dd", "bs=1", "count=10000", "if=/dev/zero", "of=/dev/null"];

#[derive(Parser)]
#[command(about = "Count a command's system calls with ptrace and with eBPF, and time both")]
struct Args {
    #[arg(value_enum, default_value_t = Choice::Compare)]
    mode: Choice,
    /// The command to run (default: dd bs=1 count=10000 if=/dev/zero of=/dev/null).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Choice {
    /// Run the command bare, then under ptrace, then under eBPF.
    Compare,
    Bare,
    Ptrace,
    Ebpf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let command =
        if args.command.is_empty() { DEFAULT_COMMAND.iter().map(|s| s.to_string()).collect() } else { args.command };
    let modes: &[Mode] = match args.mode {
        Choice::Compare => &[Mode::Bare, Mode::Ptrace, Mode::Ebpf],
        Choice::Bare => &[Mode::Bare],
        Choice::Ptrace => &[Mode::Ptrace],
        Choice::Ebpf => &[Mode::Ebpf],
    };
    let mut runs = Vec::new();
    for mode in modes {
        match run(*mode, &command) {
            Ok(r) => {
                report(&r);
                runs.push(r);
            }
            Err(e) => {
                eprintln!("ebpf-vs-ptrace: {e:#}");
                return ExitCode::from(2);
            }
        }
    }
    if let [bare, ptrace, ebpf] = runs.as_slice() {
        let slowdown = |r: &Run| r.wall.as_secs_f64() / bare.wall.as_secs_f64().max(1e-6);
        eprintln!(
            "\n{}: bare {:.0} ms, under ptrace {:.0} ms ({:.1}x), under eBPF {:.0} ms ({:.1}x)",
            command.join(" "),
            ms(bare),
            ms(ptrace),
            slowdown(ptrace),
            ms(ebpf),
            slowdown(ebpf)
        );
    }
    ExitCode::SUCCESS
}

fn ms(r: &Run) -> f64 {
    r.wall.as_secs_f64() * 1000.0
}

/// The table goes to stderr, where strace prints its own, so that the
/// command's output on stdout stays clean.
fn report(r: &Run) {
    let how = match r.mode {
        Mode::Bare => "bare",
        Mode::Ptrace => "under ptrace",
        Mode::Ebpf => "under eBPF",
    };
    if let Some(census) = &r.census {
        eprintln!("\nSystem calls counted {how}:");
        eprint!("{}", census.render());
    }
    eprintln!("wall time {how}: {:.1} ms", ms(r));
}

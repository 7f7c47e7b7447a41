//! `unlink-bench [CALLS]`: what a hook on do_unlinkat costs each call. The
//! same unlink of a file that does not exist runs CALLS times (default
//! 10000) behind each kind of hook in turn: fentry, fexit, kprobe,
//! kretprobe, and both of each pair; and each time, just before, with
//! nothing attached. A hook's cost is the difference between the two, so
//! that a slow spell of the machine, which falls on both, cancels out. The
//! rows take turns for several rounds; the table shows each row's median
//! difference.

mod target;

use std::fs;
use std::mem::MaybeUninit;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use libbpf_rs::Link;
use libbpf_rs::skel::{OpenSkel, SkelBuilder};

mod unlink_bench {
    include!(concat!(env!("OUT_DIR"), "/unlink_bench.skel.rs"));
}

use unlink_bench::UnlinkBenchSkel;

const DEFAULT_CALLS: u64 = 10_000;
const ROUNDS: u32 = 15;

/// The hooks of one row of the table.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Hook {
    Fentry,
    Fexit,
    Kprobe,
    Kretprobe,
}

// ANCHOR: rows
const ROWS: &[(&str, &[Hook])] = &[
    ("fentry", &[Hook::Fentry]),
    ("kprobe", &[Hook::Kprobe]),
    ("fexit", &[Hook::Fexit]),
    ("kretprobe", &[Hook::Kretprobe]),
    ("fentry + fexit", &[Hook::Fentry, Hook::Fexit]),
    ("kprobe + kretprobe", &[Hook::Kprobe, Hook::Kretprobe]),
];
// ANCHOR_END: rows

fn attach(skel: &UnlinkBenchSkel<'_>, hook: Hook, function: &str) -> anyhow::Result<Link> {
    let progs = &skel.progs;
    let link = match hook {
        // Attached where the BTF target set before loading says.
        Hook::Fentry => progs.bench_fentry.attach(),
        Hook::Fexit => progs.bench_fexit.attach(),
        Hook::Kprobe => progs.bench_kprobe.attach_kprobe(false, function),
        Hook::Kretprobe => progs.bench_kretprobe.attach_kprobe(true, function),
    };
    link.context("failed to attach a benchmark program")
}

/// How often each hook's program has run so far.
fn runs(skel: &UnlinkBenchSkel<'_>, hook: Hook) -> u64 {
    let Some(bss) = skel.maps.bss_data.as_deref() else { return 0 };
    // The kernel writes these behind the compiler's back.
    let field = match hook {
        Hook::Fentry => &bss.fentry_runs,
        Hook::Fexit => &bss.fexit_runs,
        Hook::Kprobe => &bss.kprobe_runs,
        Hook::Kretprobe => &bss.kretprobe_runs,
    };
    // SAFETY: a valid, aligned u64 inside the map's mapping, which lives
    // as long as the skeleton.
    unsafe { std::ptr::read_volatile(field) }
}

/// Nanoseconds per call of `calls` unlinks.
fn time_calls(missing: &Path, calls: u64) -> f64 {
    let start = Instant::now();
    for _ in 0..calls {
        // unlink(2) of a name that does not exist: ENOENT, each time.
        let _ = fs::remove_file(missing);
    }
    start.elapsed().as_nanos() as f64 / calls as f64
}

/// Times `calls` unlinks after a first stretch, untimed, that lets caches
/// (and an emulator's translations of kernel code that attaching has just
/// rewritten) settle.
fn settled(missing: &Path, calls: u64) -> f64 {
    time_calls(missing, calls / 4);
    time_calls(missing, calls)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let calls = match std::env::args().nth(1) {
        None => DEFAULT_CALLS,
        Some(arg) => match arg.parse() {
            Ok(n) if n > 0 => n,
            _ => bail!("usage: unlink-bench [CALLS]  (CALLS: unlinks per round, default {DEFAULT_CALLS})"),
        },
    };
    let function = target::unlink_function()?;
    let mut storage = MaybeUninit::uninit();
    let mut open = unlink_bench::UnlinkBenchSkelBuilder::default()
        .open(&mut storage)
        .context("failed to open the benchmark's BPF object")?;
    if function != target::NAMES[0] {
        for prog in [&mut open.progs.bench_fentry, &mut open.progs.bench_fexit] {
            prog.set_attach_target(0, Some(function.to_string()))
                .with_context(|| format!("failed to point the programs at {function}"))?;
        }
    }
    let skel = open.load().context("failed to load the benchmark's BPF programs (is this running as root?)")?;

    let missing = std::env::temp_dir().join(format!("unlink-bench-{}-missing", std::process::id()));
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!("unlink(2) of a missing file, {calls} calls a round, median of {ROUNDS} rounds; kernel {}", kernel.trim());
    println!("hooks on {function}");

    // Per row: (nothing attached, hooked) for each round.
    let mut samples = vec![Vec::new(); ROWS.len()];
    let mut ran = [0u64; ROWS.len()];
    for _ in 0..ROUNDS {
        for (row, (_, hooks)) in ROWS.iter().enumerate() {
            let bare = settled(&missing, calls);
            let before = runs(&skel, hooks[0]);
            let links = hooks.iter().map(|h| attach(&skel, *h, function)).collect::<anyhow::Result<Vec<_>>>()?;
            let hooked = settled(&missing, calls);
            drop(links);
            ran[row] += runs(&skel, hooks[0]) - before;
            samples[row].push((bare, hooked));
        }
    }
    let expected = (calls + calls / 4) * u64::from(ROUNDS);
    let bare = median(samples.iter().flatten().map(|(b, _)| *b).collect());
    println!("{bare:.0} ns per call with nothing attached");
    println!("{:<20} {:>14} {:>10}", "hooked by", "added ns/call", "runs");
    for (row, (label, _)) in ROWS.iter().enumerate() {
        // The row's program ran for every call, or it measured something else.
        if ran[row] < expected {
            bail!("{label}: its program ran {} times for {expected} calls", ran[row]);
        }
        let added = median(samples[row].iter().map(|(b, h)| h - b).collect());
        println!("{label:<20} {added:>+14.0} {:>10}", ran[row]);
    }
    Ok(())
}

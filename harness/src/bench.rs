//! `labctl bench`: boot-to-verdict timings of labs, split into phases.
//!
//! Builds first (not timed), then runs each lab's solution `runs` times on
//! a cold boot and `runs` times from a restored snapshot, and prints the
//! median of each phase and the ratio; then times a one-line edit of a BPF
//! C file to its verdict. Timing belongs here, not in tests: the machines
//! are shared and noisy.

use std::process::ExitCode;
use std::sync::mpsc;

use crate::builder::{self, Variant};
use crate::engine::{self, Env, Options, Phases};
use crate::error::{Error, Result};
use crate::launch::{ColdBoot, Launcher};
use crate::manifest::Lab;
use crate::workspace::Workspace;

/// The median of `values` (the mean of the middle two for an even count).
pub fn median(values: &mut [u64]) -> u64 {
    if values.is_empty() {
        return 0;
    }
    values.sort_unstable();
    let n = values.len();
    if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2 }
}

/// Median phases over several runs; `total` is image + boot + run + check.
pub fn median_phases(runs: &[Phases]) -> (Phases, u64) {
    let pick = |f: fn(&Phases) -> u64| median(&mut runs.iter().map(f).collect::<Vec<_>>());
    let phases = Phases {
        build_ms: pick(|p| p.build_ms),
        image_ms: pick(|p| p.image_ms),
        boot_ms: pick(|p| p.boot_ms),
        run_ms: pick(|p| p.run_ms),
        check_ms: pick(|p| p.check_ms),
    };
    let total = median(&mut runs.iter().map(|p| p.image_ms + p.boot_ms + p.run_ms + p.check_ms).collect::<Vec<_>>());
    (phases, total)
}

/// How a benchmarked run's guest started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    Cold,
    Restored,
}

impl Path {
    fn name(self) -> &'static str {
        match self {
            Path::Cold => "cold",
            Path::Restored => "restored",
        }
    }
}

/// How many times faster `restored` is than `cold` (totals in ms).
pub fn speedup(cold_ms: u64, restored_ms: u64) -> f64 {
    if restored_ms == 0 { 0.0 } else { cold_ms as f64 / restored_ms as f64 }
}

/// The file a bench edit changes, and the line it puts in: a comment, so
/// the lab still passes, but one that moves every line below it, so the
/// BPF object (its line info) and everything built from it really change.
pub fn edited(source: &str, n: usize) -> String {
    let line = format!("// labctl bench: edit {n}\n");
    match source.split_once('\n') {
        Some((first, rest)) => format!("{first}\n{line}{rest}"),
        None => format!("{source}\n{line}"),
    }
}

/// Puts a file back as it was when dropped, whatever the ending.
struct Restore {
    path: std::path::PathBuf,
    original: Vec<u8>,
}

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.path, &self.original);
    }
}

fn row(label: &str, path: &str, m: &Phases, total: u64) {
    println!(
        "{:<5} {:<9} {:>7} {:>7} {:>7} {:>7} {:>7} {:>8}",
        label, path, m.build_ms, m.image_ms, m.boot_ms, m.run_ms, m.check_ms, total
    );
}

fn run_solution(env: &Env, lab: &Lab, sink: &engine::Sink) -> Result<Phases> {
    let report = engine::run_lab(env, lab, &engine::LabRun::new(Variant::Solution, None), sink)?;
    if !report.passed {
        return Err(Error::Usage(format!(
            "lab {}'s solution failed during the benchmark: {}",
            lab.number(),
            report.error.unwrap_or_else(|| "a check failed".into())
        )));
    }
    Ok(report.phases)
}

/// `labctl bench`: for each lab, `runs` cold boots and `runs` restores of
/// its solution, alternated so that both see the same machine load; then
/// the edit-to-verdict time of a one-line change to lab 03's BPF C.
pub fn bench(labs: &[u32], runs: usize, options: &Options) -> Result<ExitCode> {
    if runs == 0 {
        return Err(Error::Usage("--runs must be at least 1".into()));
    }
    let ws = Workspace::discover()?;
    let mut opts = options.clone();
    opts.quiet = true;
    let (sink, _rx) = mpsc::channel();
    let mut env = engine::prepare(&ws, &opts, &sink)?;
    let snapshots = crate::snapshot::Snapshot::new(ws.cache_dir().join("snapshots"), &env.kernel);
    // Each path's launcher, swapped into the engine for its runs: one of
    // each for the whole benchmark, as one labctl process has.
    let mut launchers: Vec<(Path, Box<dyn Launcher>)> = vec![(Path::Cold, Box::new(ColdBoot))];
    if !options.cold && snapshots.possible() {
        launchers.push((Path::Restored, Box::new(snapshots)));
    }
    println!(
        "labctl bench: {runs} runs per lab and path, kernel {}, {} acceleration, {} CPUs on the host",
        env.kernel.name,
        env.accel.name(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:<5} {:<9} {:>7} {:>7} {:>7} {:>7} {:>7} {:>8}   (median ms; total = image to verdict)",
        "lab", "path", "build", "image", "boot", "run", "check", "total"
    );
    for &number in labs {
        let lab = ws.lab(number)?;
        // Built once up front, and each path run once (a snapshot saved):
        // the benchmark times what follows.
        builder::build_lab(&ws, &lab, &Variant::Solution, true)?;
        let mut by_path: Vec<Vec<Phases>> = vec![Vec::new(); launchers.len()];
        for (_, l) in launchers.iter_mut() {
            run_with(&mut env, l, &lab, &sink)?;
        }
        for _ in 0..runs {
            for (i, (_, l)) in launchers.iter_mut().enumerate() {
                by_path[i].push(run_with(&mut env, l, &lab, &sink)?);
            }
        }
        let mut totals = Vec::new();
        for ((path, _), phases) in launchers.iter().zip(&by_path) {
            let (m, total) = median_phases(phases);
            row(&format!("{number:02}"), path.name(), &Phases { build_ms: 0, ..m }, total);
            totals.push(total);
        }
        if let [cold, restored] = totals[..] {
            println!("{:<5} restored is {:.1}x faster than cold", "", speedup(cold, restored));
        }
    }

    // Edit to verdict: what `lab 3 --watch` does after a save, on the
    // fastest path there is.
    let lab = ws.lab(3)?;
    let source = lab.solution_dir.join("src/bpf/hello.bpf.c");
    let original = std::fs::read(&source).map_err(Error::io(format!("reading {}", source.display())))?;
    let text = String::from_utf8_lossy(&original).into_owned();
    let _restore = Restore { path: source.clone(), original };
    let (path, l) = launchers.last_mut().expect("at least the cold path");
    let mut edits = Vec::new();
    for n in 0..runs {
        crate::files::write_atomic(&source, edited(&text, n).as_bytes())?;
        edits.push(run_with(&mut env, l, &lab, &sink)?);
    }
    let (m, _) = median_phases(&edits);
    let total = median(
        &mut edits.iter().map(|p| p.build_ms + p.image_ms + p.boot_ms + p.run_ms + p.check_ms).collect::<Vec<_>>(),
    );
    println!(
        "\nEdit to verdict, lab 03, one line added to {} ({}, median of {runs}; `--watch` waits 0.3 s more for the editor to finish):",
        ws.relative(&source).display(),
        path.name()
    );
    row("03", "edit", &m, total);
    Ok(ExitCode::SUCCESS)
}

/// [`run_solution`] with `launcher` in the engine for the run.
fn run_with(env: &mut Env, launcher: &mut Box<dyn Launcher>, lab: &Lab, sink: &engine::Sink) -> Result<Phases> {
    std::mem::swap(&mut env.launcher, launcher);
    let result = run_solution(env, lab, sink);
    std::mem::swap(&mut env.launcher, launcher);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut [5, 1, 3]), 3);
        assert_eq!(median(&mut [4, 1, 3, 2]), 2);
        assert_eq!(median(&mut []), 0);
    }

    #[test]
    fn total_is_the_median_of_sums_not_the_sum_of_medians() {
        let runs = [
            Phases { image_ms: 10, boot_ms: 100, run_ms: 5, check_ms: 1, build_ms: 0 },
            Phases { image_ms: 10, boot_ms: 300, run_ms: 5, check_ms: 1, build_ms: 0 },
            Phases { image_ms: 90, boot_ms: 200, run_ms: 5, check_ms: 1, build_ms: 0 },
        ];
        let (m, total) = median_phases(&runs);
        assert_eq!((m.image_ms, m.boot_ms), (10, 200));
        assert_eq!(total, 296);
    }

    #[test]
    fn an_edit_is_one_line_after_the_first_and_differs_each_time() {
        let source = "// SPDX\n#include \"x.h\"\nint x;\n";
        let one = edited(source, 1);
        assert_eq!(one, "// SPDX\n// labctl bench: edit 1\n#include \"x.h\"\nint x;\n");
        assert_eq!(one.lines().count(), source.lines().count() + 1);
        assert_ne!(edited(source, 2), one);
    }

    #[test]
    fn speedup_is_cold_over_restored() {
        assert_eq!(speedup(2000, 500), 4.0);
        assert_eq!(speedup(2000, 0), 0.0);
    }
}

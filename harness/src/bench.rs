//! `labctl bench`: boot-to-verdict timings of labs, split into phases.
//!
//! Builds first (not timed), then runs each lab's solution `runs` times and
//! prints the median of each phase. Timing belongs here, not in tests: the
//! machines are shared and noisy.

use std::process::ExitCode;
use std::sync::mpsc;

use crate::builder::{self, Variant};
use crate::engine::{self, Options, Phases};
use crate::error::{Error, Result};
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

pub fn bench(labs: &[u32], runs: usize, options: &Options) -> Result<ExitCode> {
    if runs == 0 {
        return Err(Error::Usage("--runs must be at least 1".into()));
    }
    let ws = Workspace::discover()?;
    let mut opts = options.clone();
    opts.quiet = true;
    let (sink, _rx) = mpsc::channel();
    let env = engine::prepare(&ws, &opts, &sink)?;
    println!("labctl bench: {runs} runs per lab, kernel {}, {} acceleration", env.kernel.name, env.accel.name());
    println!(
        "{:<5} {:>8} {:>8} {:>8} {:>8} {:>10}   (median ms, boot-to-verdict)",
        "lab", "image", "boot", "run", "check", "total"
    );
    for &number in labs {
        let lab = ws.lab(number)?;
        // Built once up front: the benchmark times what follows a build.
        builder::build_lab(&ws, &lab, &Variant::Solution, true)?;
        let mut phases = Vec::new();
        for _ in 0..runs {
            let report = engine::run_lab(&env, &lab, &engine::LabRun::new(Variant::Solution, None), &sink)?;
            if !report.passed {
                return Err(Error::Usage(format!("lab {number}'s solution failed during the benchmark")));
            }
            phases.push(report.phases);
        }
        let (m, total) = median_phases(&phases);
        println!(
            "{:<5} {:>8} {:>8} {:>8} {:>8} {:>10}",
            format!("{number:02}"),
            m.image_ms,
            m.boot_ms,
            m.run_ms,
            m.check_ms,
            total
        );
    }
    Ok(ExitCode::SUCCESS)
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
}

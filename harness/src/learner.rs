//! The learner's verbs around a lab run: progress, the hint ladder, and the
//! reference solution once a lab has passed.

use std::process::ExitCode;

use similar::TextDiff;

use crate::engine::LabReport;
use crate::error::{Error, Result};
use crate::manifest::Lab;
use crate::progress::{self, Progress};
use crate::workspace::Workspace;

/// `labctl progress`.
pub fn show_progress() -> Result<ExitCode> {
    let ws = Workspace::discover()?;
    let labs = ws.labs()?;
    let p = Progress::load(&ws.root)?;
    print!("{}", progress::table(&labs, &p, progress::now()));
    Ok(ExitCode::SUCCESS)
}

/// Records a run of the learner's own code and says which checks have
/// another hint waiting. Progress is a convenience: trouble saving it is a
/// warning, never a reason to lose the verdict.
pub fn after_run(ws: &Workspace, lab: &Lab, report: &LabReport) {
    let mut p = match Progress::load(&ws.root) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("warning: progress not saved: {e}");
            return;
        }
    };
    p.record(report, progress::now());
    if let Err(e) = p.save(&ws.root) {
        eprintln!("warning: progress not saved: {e}");
        return;
    }
    let stuck = p.stuck_checks(lab);
    if !stuck.is_empty() {
        println!("Still failing: {}. Another hint: just hint {} --next", stuck.join("; "), lab.number());
    }
    if report.passed && p.lab(lab.number()).is_some_and(|l| l.runs > 0) {
        println!("The reference solution is yours to compare: just solution {}", lab.number());
    }
}

/// `labctl hint N --next`: the next tier of each failing check.
pub fn next_hint(number: u32) -> Result<ExitCode> {
    let ws = Workspace::discover()?;
    let lab = ws.lab(number)?;
    let mut p = Progress::load(&ws.root)?;
    if p.lab(number).is_none() {
        println!("Run the lab first (just lab {number}): hints unlock for the checks that fail.");
        return Ok(ExitCode::SUCCESS);
    }
    let unlocked = p.unlock_next(&lab);
    if unlocked.is_empty() {
        println!("No check of lab {number} has a hint left to unlock. `just hint {number}` shows every tier.");
        return Ok(ExitCode::SUCCESS);
    }
    p.save(&ws.root)?;
    for (check, tier, hint) in unlocked {
        println!("{check}\n  hint {tier}: {hint}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `labctl solution N`: the difference between the learner's files and the
/// reference, once the lab has passed (or with `--force`).
pub fn solution(number: u32, force: bool) -> Result<ExitCode> {
    let ws = Workspace::discover()?;
    let lab = ws.lab(number)?;
    let passed = Progress::load(&ws.root)?.lab(number).is_some_and(|l| l.ever_passed);
    if !passed && !force {
        println!(
            "Lab {number} has not passed yet, so its solution stays closed: it is worth more to you after you \
             have found your own way. Run `just lab {number}` until it passes (or `just solution {number} --force`)."
        );
        return Ok(ExitCode::from(1));
    }
    print!("{}", solution_diff(&lab)?);
    Ok(ExitCode::SUCCESS)
}

/// A unified diff per student file: the learner's version against the
/// reference.
pub fn solution_diff(lab: &Lab) -> Result<String> {
    let mut out = String::new();
    for f in &lab.manifest.student_files {
        let mine_path = lab.dir.join(f);
        let reference_path = lab.solution_dir.join(f);
        let read =
            |p: &std::path::Path| std::fs::read_to_string(p).map_err(Error::io(format!("reading {}", p.display())));
        let mine = read(&mine_path)?;
        // A student file the solution leaves as it is has nothing to show.
        let reference = if reference_path.is_file() { read(&reference_path)? } else { mine.clone() };
        if mine == reference {
            out.push_str(&format!("{f}: the same as the reference\n"));
            continue;
        }
        let diff = TextDiff::from_lines(&mine, &reference);
        out.push_str(
            &diff.unified_diff().context_radius(3).header(&format!("yours/{f}"), &format!("reference/{f}")).to_string(),
        );
    }
    Ok(out)
}

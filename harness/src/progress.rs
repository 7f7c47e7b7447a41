//! The learner's progress: which labs passed, their points, when each last
//! ran, and how far up each check's hint ladder the learner has climbed.
//!
//! It lives in one small JSON file at the top of the checkout,
//! `.workbook-progress.json` (git ignores it, as rustlings ignores its state
//! file). `labctl lab N` updates it after every run of the learner's own
//! code; runs of the solution, of mutants or of a submission leave it alone.
//!
//! ```json
//! { "version": 1,
//!   "labs": { "3": { "status": "failed", "points": 2, "max_points": 6,
//!                    "last_run": 1764050000, "seed": 418273645, "runs": 4,
//!                    "checks": { "hello for each exec": { "tier": 2, "failures": 3 } } } } }
//! ```
//!
//! `tier` is the highest hint tier unlocked for a check (1 after its first
//! failure); `failures` counts its failures in a row.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::engine::LabReport;
use crate::error::{Error, Result};
use crate::manifest::Lab;

pub const FILE_NAME: &str = ".workbook-progress.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LabStatus {
    Passed,
    Failed,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckProgress {
    /// The highest hint tier unlocked, from 1.
    pub tier: usize,
    /// Failures in a row.
    pub failures: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabProgress {
    pub status: LabStatus,
    /// Whether the lab has ever passed (a later failing edit does not take
    /// the reference solution away again).
    #[serde(default)]
    pub ever_passed: bool,
    pub points: u32,
    pub max_points: u32,
    /// Seconds since the Unix epoch.
    pub last_run: u64,
    pub seed: u64,
    pub runs: u32,
    #[serde(default)]
    pub checks: BTreeMap<String, CheckProgress>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub version: u32,
    /// By lab number (as a string: JSON keys are strings).
    pub labs: BTreeMap<String, LabProgress>,
}

impl Default for Progress {
    fn default() -> Self {
        Progress { version: 1, labs: BTreeMap::new() }
    }
}

/// The progress file: `$WORKBOOK_PROGRESS` when set (tests, or a learner
/// who keeps it elsewhere), else `.workbook-progress.json` in the checkout.
pub fn path(root: &Path) -> PathBuf {
    std::env::var_os("WORKBOOK_PROGRESS").map(PathBuf::from).unwrap_or_else(|| root.join(FILE_NAME))
}

impl Progress {
    /// Reads the file; a missing one is a fresh start. A damaged one is an
    /// error that says how to start over, never silently replaced: it holds
    /// the learner's unlocked hints.
    pub fn load(root: &Path) -> Result<Self> {
        let p = path(root);
        match fs::read_to_string(&p) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                Error::Usage(format!("{} is damaged ({e}); move it away to start your progress afresh", p.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Progress::default()),
            Err(e) => Err(Error::Io { context: format!("reading {}", p.display()), source: e }),
        }
    }

    /// Writes the file atomically: another labctl reading it never sees half.
    pub fn save(&self, root: &Path) -> Result<()> {
        let p = path(root);
        let text = serde_json::to_string_pretty(self).expect("progress serialises");
        crate::files::write_atomic(&p, (text + "\n").as_bytes())
    }

    pub fn lab(&self, number: u32) -> Option<&LabProgress> {
        self.labs.get(&number.to_string())
    }

    /// The hint tier to show for each check of lab `number` (1 when none
    /// was unlocked yet).
    pub fn tiers(&self, number: u32) -> BTreeMap<String, usize> {
        self.lab(number).map(|l| l.checks.iter().map(|(k, c)| (k.clone(), c.tier.max(1))).collect()).unwrap_or_default()
    }

    /// Records a run of the learner's code.
    pub fn record(&mut self, report: &LabReport, now: u64) {
        let entry = self.labs.entry(report.number.to_string()).or_insert_with(|| LabProgress {
            status: LabStatus::Failed,
            ever_passed: false,
            points: 0,
            max_points: 0,
            last_run: now,
            seed: report.seed,
            runs: 0,
            checks: BTreeMap::new(),
        });
        entry.status = if report.passed { LabStatus::Passed } else { LabStatus::Failed };
        entry.ever_passed |= report.passed;
        entry.points = report.points;
        entry.max_points = report.max_points;
        entry.last_run = now;
        entry.seed = report.seed;
        entry.runs += 1;
        for v in &report.checks {
            let c = entry.checks.entry(v.name.clone()).or_default();
            if v.passed {
                c.failures = 0;
            } else {
                c.failures += 1;
                c.tier = c.tier.max(1);
            }
        }
    }

    /// Checks of lab `number` that failed more than once in a row and have
    /// a hint tier still locked: the learner is offered the next one.
    pub fn stuck_checks(&self, lab: &Lab) -> Vec<String> {
        let Some(p) = self.lab(lab.number()) else { return Vec::new() };
        lab.manifest
            .checks
            .iter()
            .filter(|c| p.checks.get(&c.name).is_some_and(|s| s.failures >= 2 && s.tier < c.hints.len()))
            .map(|c| c.name.clone())
            .collect()
    }

    /// Unlocks the next tier of every check of `lab` that is failing;
    /// returns (check, tier, hint template) for each one unlocked.
    pub fn unlock_next(&mut self, lab: &Lab) -> Vec<(String, usize, String)> {
        let Some(p) = self.labs.get_mut(&lab.number().to_string()) else { return Vec::new() };
        let mut unlocked = Vec::new();
        for (index, check) in lab.manifest.checks.iter().enumerate() {
            let Some(state) = p.checks.get_mut(&check.name) else { continue };
            if state.failures == 0 {
                continue;
            }
            let templates = lab.hint_templates(index);
            if state.tier < templates.len() {
                state.tier += 1;
                unlocked.push((check.name.clone(), state.tier, templates[state.tier - 1].clone()));
            }
        }
        unlocked
    }
}

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// "3 min ago", "2 h ago", "5 days ago".
pub fn ago(then: u64, now: u64) -> String {
    let s = now.saturating_sub(then);
    match s {
        0..=59 => "just now".into(),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=86_399 => format!("{} h ago", s / 3600),
        _ => format!("{} days ago", s / 86_400),
    }
}

/// The table `labctl progress` prints, and which lab comes next.
pub fn table(labs: &[Lab], progress: &Progress, now: u64) -> String {
    let mut out = String::new();
    out.push_str(&format!("{:<4} {:<24} {:<10} {:>7}  {}\n", "lab", "", "status", "points", "last run"));
    let mut next = None;
    let (mut earned, mut total) = (0, 0);
    for lab in labs {
        let max: u32 = lab.manifest.checks.iter().map(|c| c.points()).sum();
        total += max;
        let (status, points, when) = match progress.lab(lab.number()) {
            Some(p) => {
                earned += p.points;
                let status = match p.status {
                    LabStatus::Passed => "passed",
                    LabStatus::Failed => "failed",
                };
                (status, format!("{}/{max}", p.points), ago(p.last_run, now))
            }
            None => ("not tried", format!("-/{max}"), "-".into()),
        };
        if status != "passed" && next.is_none() {
            next = Some(lab.number());
        }
        out.push_str(&format!(
            "{:<4} {:<24} {:<10} {:>7}  {}\n",
            lab.number(),
            lab.manifest.slug,
            status,
            points,
            when
        ));
    }
    out.push_str(&format!("\n{earned} of {total} points.\n"));
    match next {
        Some(n) => out.push_str(&format!("Next: just lab {n}\n")),
        None => out.push_str("Every lab passes. Well done.\n"),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::{Status, Verdict};

    fn verdict(name: &str, passed: bool) -> Verdict {
        Verdict {
            name: name.into(),
            status: if passed { Status::Good } else { Status::Bad },
            passed,
            detail: String::new(),
            hint: None,
            points: 1,
        }
    }

    fn report(passed: bool, checks: Vec<Verdict>) -> LabReport {
        LabReport {
            number: 3,
            slug: "hello-world".into(),
            title: "Hello".into(),
            variant: "starter".into(),
            seed: 5,
            kernel: String::new(),
            accel: None,
            passed,
            duration_ms: 0,
            boot_ms: 0,
            phases: Default::default(),
            points: checks.iter().filter(|c| c.passed).map(|c| c.points).sum(),
            max_points: checks.len() as u32,
            checks,
            notes: Vec::new(),
            console_log: None,
            verifier: None,
            error: None,
            kernels: Vec::new(),
        }
    }

    #[test]
    fn failures_count_in_a_row_and_unlock_tier_one() {
        let mut p = Progress::default();
        p.record(&report(false, vec![verdict("a", false), verdict("b", true)]), 100);
        p.record(&report(false, vec![verdict("a", false), verdict("b", true)]), 200);
        let lab = p.lab(3).unwrap();
        assert_eq!(lab.checks["a"], CheckProgress { tier: 1, failures: 2 });
        assert_eq!(lab.checks["b"], CheckProgress { tier: 0, failures: 0 });
        assert_eq!((lab.runs, lab.last_run, lab.status), (2, 200, LabStatus::Failed));
        p.record(&report(true, vec![verdict("a", true), verdict("b", true)]), 300);
        let lab = p.lab(3).unwrap();
        assert!(lab.ever_passed && lab.status == LabStatus::Passed && lab.checks["a"].failures == 0);
        p.record(&report(false, vec![verdict("a", false), verdict("b", true)]), 400);
        assert!(p.lab(3).unwrap().ever_passed, "a pass is remembered");
    }

    #[test]
    fn the_file_round_trips_and_a_damaged_one_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Progress::load(dir.path()).unwrap(), Progress::default());
        let mut p = Progress::default();
        p.record(&report(false, vec![verdict("a", false)]), 7);
        p.save(dir.path()).unwrap();
        assert_eq!(Progress::load(dir.path()).unwrap(), p);
        fs::write(path(dir.path()), "{ not json").unwrap();
        let err = Progress::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("damaged") && err.contains(FILE_NAME), "{err}");
    }

    #[test]
    fn times_read_as_people_say_them() {
        assert_eq!(ago(100, 130), "just now");
        assert_eq!(ago(0, 600), "10 min ago");
        assert_eq!(ago(0, 7200), "2 h ago");
        assert_eq!(ago(0, 3 * 86_400), "3 days ago");
    }
}

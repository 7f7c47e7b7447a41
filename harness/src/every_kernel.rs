//! Labs graded on every kernel of the matrix from one build
//! (`every_kernel = true` in `lab.toml`).
//!
//! A CO-RE lab's claim is that one binary runs on every kernel. So the
//! harness builds it once, ships the very same bytes (their sha256 goes to
//! the checks, see [`crate::checks::Observations::built`]) to a VM of each
//! kernel, grades each run on its own, and combines them: a check passes
//! only when it passed on every kernel, and the report keeps a row per
//! kernel ([`KernelRun`]).

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Instant;

use serde::Serialize;

use crate::checks::{Status, Verdict};
use crate::engine::{self, EngineEvent, Env, LabReport, LabRun, Options, Sink};
use crate::error::{Error, Result};
use crate::manifest::{Lab, Manifest};

/// How one kernel did, in a lab graded on every kernel.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct KernelRun {
    /// The kernel's name in vm/kernels.toml.
    pub name: String,
    /// `uname -r` in the guest (the name when it never booted).
    pub release: String,
    pub passed: bool,
    pub points: u32,
    pub checks: Vec<Verdict>,
    pub console_log: Option<PathBuf>,
    /// A harness error on this kernel.
    pub error: Option<String>,
}

impl KernelRun {
    fn of(name: &str, r: LabReport) -> Self {
        KernelRun {
            name: name.into(),
            release: r.kernel,
            passed: r.passed,
            points: r.points,
            checks: r.checks,
            console_log: r.console_log,
            error: r.error,
        }
    }

    fn failed(name: &str, e: &Error) -> Self {
        KernelRun {
            name: name.into(),
            release: name.into(),
            passed: false,
            points: 0,
            checks: Vec::new(),
            console_log: None,
            error: Some(e.to_string()),
        }
    }
}

/// Whether a run of `lab` with `--kernel kernel` covers the whole matrix:
/// for a lab graded on every kernel, unless one kernel is named.
pub fn covers_matrix(lab: &Lab, kernel: Option<&str>) -> bool {
    lab.manifest.every_kernel && matches!(kernel, None | Some(crate::matrix::ALL))
}

/// Runs `lab`: on every kernel of the matrix when `everywhere` (reusing
/// `env` for its own kernel), else on `env`'s kernel alone.
pub fn run_lab(env: &Env, lab: &Lab, run: &LabRun, everywhere: bool, sink: &Sink) -> Result<LabReport> {
    if !everywhere {
        return engine::run_lab(env, lab, run, sink);
    }
    let m = lab.for_seed(run.seed)?;
    let started = Instant::now();
    let _ = sink.send(EngineEvent::LabStart {
        number: m.number,
        title: m.title.clone(),
        variant: run.variant.name(),
        seed: run.seed,
    });
    let mut report = engine::new_report(&m, run);
    let Some(shipped) = engine::build(&env.ws, lab, &m, run, &mut report, env.options.quiet, sink)? else {
        report.duration_ms = started.elapsed().as_millis() as u64;
        let _ = sink.send(EngineEvent::LabEnd(Box::new(report.clone())));
        return Ok(report);
    };
    let _ = sink.send(EngineEvent::Note(format!(
        "one build for every kernel: {}",
        shipped
            .sha256
            .iter()
            .map(|(name, hash)| format!("{name} sha256 {}", &hash[..16]))
            .collect::<Vec<_>>()
            .join(", ")
    )));
    let mut runs = Vec::new();
    for name in env.ws.kernels()?.names() {
        let _ = sink.send(EngineEvent::Note(format!("── kernel {name} ──")));
        let result = on_kernel(&name, sink, |quiet_sink| {
            if name == env.kernel.name {
                return run_on(env, &m, run, &shipped, &report, quiet_sink);
            }
            let opts = Options { kernel: Some(name.clone()), ..env.options.clone() };
            let other = engine::prepare(&env.ws, &opts, quiet_sink)?;
            run_on(&other, &m, run, &shipped, &report, quiet_sink)
        });
        match result {
            Ok(r) => runs.push(KernelRun::of(&name, r)),
            Err(Error::Interrupted) => return Err(Error::Interrupted),
            Err(e) => {
                let _ = sink.send(EngineEvent::Warning(format!("kernel {name}: {e}")));
                runs.push(KernelRun::failed(&name, &e));
            }
        }
    }
    let mut report = combine(&m, report, runs);
    report.duration_ms = started.elapsed().as_millis() as u64;
    for v in &report.checks {
        let _ = sink.send(EngineEvent::Verdict(v.clone()));
    }
    let _ = sink.send(EngineEvent::LabEnd(Box::new(report.clone())));
    Ok(report)
}

fn run_on(
    env: &Env,
    m: &Manifest,
    run: &LabRun,
    shipped: &engine::Shipped,
    built: &LabReport,
    sink: &Sink,
) -> Result<LabReport> {
    if crate::INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(Error::Interrupted);
    }
    engine::run_built(env, m, run, shipped, built.clone(), sink)
}

/// Calls `f` with a sink that passes on everything but verdicts: one
/// kernel's verdicts are shown combined with the others', once.
fn on_kernel<T>(kernel: &str, sink: &Sink, f: impl FnOnce(&Sink) -> Result<T>) -> Result<T> {
    let (tx, rx) = mpsc::channel();
    let outer = sink.clone();
    let kernel = kernel.to_string();
    let forward = std::thread::spawn(move || {
        for ev in rx {
            let ev = match ev {
                EngineEvent::Verdict(_) | EngineEvent::LabEnd(_) => continue,
                EngineEvent::Warning(w) => EngineEvent::Warning(format!("{kernel}: {w}")),
                other => other,
            };
            let _ = outer.send(ev);
        }
    });
    let result = f(&tx);
    drop(tx);
    let _ = forward.join();
    result
}

/// One lab report from its runs on each kernel. `built` is the report of
/// the build (its notes and build time); a check passes only when it
/// passed on every kernel, and the lab only when every kernel's run did.
pub fn combine(m: &Manifest, built: LabReport, runs: Vec<KernelRun>) -> LabReport {
    let mut report = built;
    report.checks = m.checks.iter().enumerate().map(|(i, c)| combine_check(&c.name, c.points(), i, &runs)).collect();
    report.passed = !runs.is_empty() && runs.iter().all(|r| r.passed && r.error.is_none());
    report.points = engine::lab_points(m, &report.checks);
    report.kernel = runs.iter().map(|r| r.release.as_str()).collect::<Vec<_>>().join(", ");
    report.console_log = runs.iter().find(|r| !r.passed).and_then(|r| r.console_log.clone());
    let errors: Vec<String> =
        runs.iter().filter_map(|r| r.error.as_ref().map(|e| format!("kernel {}: {e}", r.name))).collect();
    report.error = (!errors.is_empty()).then(|| errors.join("; "));
    report.kernels = runs;
    report
}

fn combine_check(name: &str, points: u32, index: usize, runs: &[KernelRun]) -> Verdict {
    let missing = |r: &KernelRun| Verdict {
        name: name.into(),
        status: Status::Missing,
        passed: false,
        detail: format!("not run: {}", r.error.as_deref().unwrap_or("no verdict")),
        hint: None,
        points,
    };
    let verdicts: Vec<(&str, Verdict)> =
        runs.iter().map(|r| (r.name.as_str(), r.checks.get(index).cloned().unwrap_or_else(|| missing(r)))).collect();
    let failed: Vec<&(&str, Verdict)> = verdicts.iter().filter(|(_, v)| !v.passed).collect();
    if verdicts.is_empty() {
        return Verdict { detail: "no kernel ran".into(), ..missing(&KernelRun::failed("", &Error::Interrupted)) };
    }
    if failed.is_empty() {
        let first = &verdicts[0].1.detail;
        let same = verdicts.iter().all(|(_, v)| &v.detail == first);
        let names: Vec<&str> = verdicts.iter().map(|(k, _)| *k).collect();
        let detail = match first.lines().next() {
            Some(line) if same => format!("on every kernel ({}): {line}", names.join(", ")),
            _ => format!("on every kernel ({})", names.join(", ")),
        };
        return Verdict { name: name.into(), status: Status::Good, passed: true, detail, hint: None, points };
    }
    let status = if failed.iter().any(|(_, v)| v.status == Status::Bad) { Status::Bad } else { Status::Missing };
    let names: Vec<&str> = failed.iter().map(|(k, _)| *k).collect();
    let mut detail = format!("fails on {} of {} kernels ({})", failed.len(), verdicts.len(), names.join(", "));
    // The first kernel's whole story; the others' first lines, which are
    // mostly the same story with other PIDs.
    for (i, (kernel, v)) in failed.iter().enumerate() {
        let shown = if i == 0 { v.detail.lines().count() } else { 1 };
        detail.push_str(&format!("\n{kernel}:"));
        for line in v.detail.lines().take(shown) {
            detail.push_str(&format!("\n  {line}"));
        }
    }
    let hint = failed.iter().find_map(|(_, v)| v.hint.clone());
    Verdict { name: name.into(), status, passed: false, detail, hint, points }
}

/// The verdict's table: a line per kernel.
pub fn kernel_rows(runs: &[KernelRun], max_points: u32) -> Vec<String> {
    let mut rows = vec![format!("{:<7} {:<6} {:<7} {:<7} {}", "kernel", "result", "checks", "points", "uname -r")];
    for r in runs {
        let result = match (&r.error, r.passed) {
            (Some(_), _) => "ERROR",
            (None, true) => "PASS",
            (None, false) => "FAIL",
        };
        let good = r.checks.iter().filter(|c| c.passed).count();
        rows.push(format!(
            "{:<7} {:<6} {:<7} {:<7} {}",
            r.name,
            result,
            format!("{good}/{}", r.checks.len()),
            format!("{}/{max_points}", r.points),
            r.release
        ));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::Variant;

    const MANIFEST: &str = r#"
number = 9
slug = "x"
title = "X"
chapter = 5
kind = "ebpf"
goal = "g"
student_files = ["src/x.bpf.c"]
every_kernel = true
[[steps]]
name = "s"
run = ["/bin/true"]
[[checks]]
name = "loads"
kind = "exit_code"
step = "s"
equals = 0
precondition = true
[[checks]]
name = "right"
kind = "exit_code"
step = "s"
equals = 0
points = 2
"#;

    fn manifest() -> Manifest {
        crate::manifest::parse(std::path::Path::new("labs/09-x/lab.toml"), MANIFEST).unwrap()
    }

    fn verdict(name: &str, passed: bool, detail: &str) -> Verdict {
        let status = if passed { Status::Good } else { Status::Bad };
        Verdict {
            name: name.into(),
            status,
            passed,
            detail: detail.into(),
            hint: (!passed).then(|| "h".into()),
            points: 0,
        }
    }

    fn kernel(name: &str, loads: bool, right: bool) -> KernelRun {
        KernelRun {
            name: name.into(),
            release: format!("{name}.0-cloud-amd64"),
            passed: loads && right,
            points: if loads && right { 2 } else { 0 },
            checks: vec![verdict("loads", loads, "it loads"), verdict("right", right, &format!("on {name}"))],
            console_log: Some(PathBuf::from(format!("{name}.console.log"))),
            error: None,
        }
    }

    fn built() -> LabReport {
        engine::new_report(&manifest(), &LabRun::new(Variant::Solution, Some(7)))
    }

    #[test]
    fn a_lab_passes_only_when_every_kernel_passes() {
        let m = manifest();
        let all = combine(&m, built(), vec![kernel("5.10", true, true), kernel("6.1", true, true)]);
        assert!(all.passed);
        assert_eq!(all.points, 2);
        assert_eq!(all.checks[0].detail, "on every kernel (5.10, 6.1): it loads");
        assert_eq!(all.checks[1].detail, "on every kernel (5.10, 6.1)", "details that differ are not shown");
        assert_eq!(all.kernels.len(), 2);

        let one_wrong = combine(&m, built(), vec![kernel("5.10", true, false), kernel("6.1", true, true)]);
        assert!(!one_wrong.passed);
        assert_eq!(one_wrong.points, 0, "a check earns its points only on every kernel");
        let right = &one_wrong.checks[1];
        assert!(!right.passed && right.status == Status::Bad);
        assert_eq!(right.detail, "fails on 1 of 2 kernels (5.10)\n5.10:\n  on 5.10");
        assert_eq!(right.hint.as_deref(), Some("h"));
        assert_eq!(one_wrong.console_log, Some(PathBuf::from("5.10.console.log")));
    }

    #[test]
    fn only_the_first_failing_kernel_tells_the_whole_story() {
        let m = manifest();
        let mut a = kernel("5.10", true, false);
        a.checks[1].detail = "3 wrong\n  pid 1\n  pid 2".into();
        let mut b = kernel("6.1", true, false);
        b.checks[1].detail = "2 wrong\n  pid 7".into();
        let r = combine(&m, built(), vec![a, b]);
        assert_eq!(
            r.checks[1].detail,
            "fails on 2 of 2 kernels (5.10, 6.1)\n5.10:\n  3 wrong\n    pid 1\n    pid 2\n6.1:\n  2 wrong"
        );
    }

    #[test]
    fn a_precondition_failed_on_one_kernel_voids_the_points() {
        let m = manifest();
        let mut odd = kernel("7.x", false, true);
        odd.checks[1] = verdict("right", true, "on 7.x");
        let r = combine(&m, built(), vec![kernel("6.1", true, true), odd]);
        assert!(r.checks[1].passed && !r.checks[0].passed);
        assert_eq!(r.points, 0);
    }

    #[test]
    fn a_kernel_that_could_not_run_is_an_error_and_its_checks_missing() {
        let m = manifest();
        let broken = KernelRun::failed("5.10", &Error::Usage("no kernel 5.10 fetched".into()));
        let r = combine(&m, built(), vec![broken, kernel("6.1", true, true)]);
        assert!(!r.passed);
        assert_eq!(r.error.as_deref(), Some("kernel 5.10: no kernel 5.10 fetched"));
        assert_eq!(r.checks[0].status, Status::Missing);
        assert!(r.checks[0].detail.contains("not run: no kernel 5.10 fetched"), "{}", r.checks[0].detail);
        assert!(!combine(&m, built(), Vec::new()).passed, "no kernel at all is no pass");
    }

    #[test]
    fn the_table_has_a_row_per_kernel() {
        let mut failed = KernelRun::failed("7.x", &Error::Usage("boom".into()));
        failed.release = "7.x".into();
        let rows = kernel_rows(&[kernel("5.10", true, true), kernel("6.1", true, false), failed], 2);
        assert_eq!(
            rows,
            [
                "kernel  result checks  points  uname -r",
                "5.10    PASS   2/2     2/2     5.10.0-cloud-amd64",
                "6.1     FAIL   1/2     0/2     6.1.0-cloud-amd64",
                "7.x     ERROR  0/0     0/2     7.x",
            ]
        );
    }

    #[test]
    fn only_a_lab_that_asks_covers_the_matrix_and_only_without_a_kernel() {
        let raw = crate::manifest::parse_raw(std::path::Path::new("lab.toml"), MANIFEST).unwrap();
        let lab = Lab {
            manifest: manifest(),
            raw,
            dir: PathBuf::from("labs/09-x"),
            solution_dir: PathBuf::from("solutions/09-x"),
            path: PathBuf::from("labs/09-x/lab.toml"),
        };
        assert!(covers_matrix(&lab, None));
        assert!(covers_matrix(&lab, Some("all")));
        assert!(!covers_matrix(&lab, Some("6.12")));
        let mut one = lab.clone();
        one.manifest.every_kernel = false;
        assert!(!covers_matrix(&one, None));
    }
}

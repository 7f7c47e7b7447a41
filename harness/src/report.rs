//! Reporters: the terminal (live, from the engine's events), JSON, JUnit
//! XML and a markdown summary (from the finished reports).

use std::io::Write;
use std::path::Path;
use std::sync::mpsc::Receiver;

use serde::Serialize;

use crate::checks::Status;
use crate::engine::{EngineEvent, LabReport, VerifierReport};
use crate::error::{Error, Result};

/// How much the terminal reporter shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TerminalOptions {
    /// Every console line of the guest.
    pub console: bool,
    /// Phase timings and step endings.
    pub progress: bool,
}

/// Prints events as they come until the channel closes. On a terminal, a
/// spinner says what the run is waiting for (building, booting, …) on one
/// line under the lines already printed; elsewhere the same lines are
/// printed plainly.
pub fn terminal(rx: Receiver<EngineEvent>, opts: TerminalOptions) {
    use std::io::IsTerminal;
    let mut out = std::io::stdout();
    let spinner = (opts.progress && out.is_terminal()).then(|| {
        let pb = indicatif::ProgressBar::new_spinner();
        pb.set_style(indicatif::ProgressStyle::with_template("  {spinner} {msg}").expect("valid template"));
        pb.enable_steady_tick(std::time::Duration::from_millis(120));
        pb
    });
    for ev in rx {
        let mut buf = Vec::new();
        let _ = print_event(&mut buf, &ev, opts);
        match &spinner {
            Some(pb) => {
                let text = String::from_utf8_lossy(&buf);
                if let Some(text) = text.strip_suffix('\n') {
                    for line in text.split('\n') {
                        pb.println(line);
                    }
                }
                if let Some(what) = waiting_for(&ev) {
                    pb.set_message(what);
                }
            }
            None => {
                let _ = out.write_all(&buf);
                let _ = out.flush();
            }
        }
    }
    if let Some(pb) = spinner {
        pb.finish_and_clear();
    }
}

/// What a run waits for after `ev`, for the spinner.
fn waiting_for(ev: &EngineEvent) -> Option<&'static str> {
    match ev {
        EngineEvent::LabStart { .. } => Some("building"),
        EngineEvent::Phase { name: "build", .. } => Some("making the image"),
        EngineEvent::Phase { name: "image", .. } => Some("booting the VM"),
        EngineEvent::Phase { name: "boot", .. } => Some("running the steps"),
        EngineEvent::Phase { name: "run", .. } => Some("checking"),
        EngineEvent::Verdict(_) | EngineEvent::LabEnd(_) => Some(""),
        _ => None,
    }
}

fn print_event(out: &mut impl Write, ev: &EngineEvent, opts: TerminalOptions) -> std::io::Result<()> {
    match ev {
        EngineEvent::Note(note) if opts.progress => writeln!(out, "  {note}"),
        EngineEvent::LabStart { number, title, variant, seed } => {
            writeln!(out, "\nLab {number:02} · {title} ({variant}, seed {seed})")
        }
        EngineEvent::Phase { name, ms, detail } if opts.progress => {
            writeln!(out, "  {name:<6} {:>6.2} s  {detail}", *ms as f64 / 1000.0)
        }
        EngineEvent::Console(line) if opts.console => writeln!(out, "  | {line}"),
        EngineEvent::StepEnd(r) if opts.progress => {
            writeln!(out, "  step   {:<24} {} in {} ms", r.name, crate::checks::ending(r), r.duration_ms)
        }
        EngineEvent::Warning(w) => writeln!(out, "  warning: {w}"),
        EngineEvent::Shown { step, stdout, stderr } => {
            writeln!(out, "\n── {step} ──")?;
            for line in stdout.lines().chain(stderr.lines()) {
                writeln!(out, "  {line}")?;
            }
            Ok(())
        }
        EngineEvent::Verifier(r) => print_verifier(out, r),
        EngineEvent::Verdict(v) => {
            writeln!(out, "{:<8}{}", v.status.label(), v.name)?;
            if v.passed && v.detail.contains('\n') {
                // A passing check with figures to show (a named check's
                // measurement, say): its detail is worth reading too.
                for line in v.detail.lines() {
                    writeln!(out, "        {line}")?;
                }
            }
            if !v.passed {
                for line in v.detail.lines() {
                    writeln!(out, "        {line}")?;
                }
                if let Some(hint) = &v.hint {
                    writeln!(out, "        hint: {hint}")?;
                }
            }
            Ok(())
        }
        EngineEvent::LabEnd(r) => {
            let passed = r.checks.iter().filter(|c| c.passed).count();
            if !r.kernels.is_empty() {
                // A lab graded on every kernel: a row per kernel, then the
                // combined verdict.
                writeln!(out)?;
                for row in crate::every_kernel::kernel_rows(&r.kernels, r.max_points) {
                    writeln!(out, "  {row}")?;
                }
                let good = r.kernels.iter().filter(|k| k.passed).count();
                writeln!(
                    out,
                    "{} on {good} of {} kernels, one build.",
                    if r.passed { "PASS" } else { "FAIL" },
                    r.kernels.len()
                )?;
            }
            writeln!(
                out,
                "Lab {:02}: {passed}/{} checks passed, {}/{} points, {:.1} s.",
                r.number,
                r.checks.len(),
                r.points,
                r.max_points,
                r.duration_ms as f64 / 1000.0
            )?;
            if !r.passed {
                if let Some(log) = &r.console_log {
                    writeln!(out, "Console log: {}", log.display())?;
                }
                writeln!(out, "Same workload again: labctl lab {} --seed {}", r.number, r.seed)?;
                writeln!(out, "More hints: just hint {}", r.number)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The tutor's explanation of a rejected program: the verifier's decisive
/// line, the C line it was checking, what it means, and where to read more.
fn print_verifier(out: &mut impl Write, r: &VerifierReport) -> std::io::Result<()> {
    let e = &r.explanation;
    writeln!(out, "\n── the verifier rejected a program ({}) ──", r.step)?;
    writeln!(out, "  {}", e.message)?;
    match (&e.file, e.line, &e.source) {
        (Some(file), Some(line), Some(source)) => writeln!(out, "  at {file}:{line}: {}", source.trim())?,
        (_, _, Some(source)) => writeln!(out, "  while checking: {}", source.trim())?,
        _ => {}
    }
    for line in wrap(&e.explanation, 76) {
        writeln!(out, "  {line}")?;
    }
    writeln!(out, "  Read: {}", e.section)?;
    if let Some(log) = &r.log {
        writeln!(out, "  Whole log: {}", log.display())?;
    }
    writeln!(out)
}

/// `text` in lines of at most `width` characters, broken between words.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

/// The JSON report: one object per lab, plus totals.
#[derive(Debug, Serialize)]
pub struct JsonReport<'a> {
    pub passed: bool,
    pub points: u32,
    pub max_points: u32,
    pub labs: &'a [LabReport],
}

pub fn write_json(path: &Path, labs: &[LabReport]) -> Result<()> {
    let report = JsonReport {
        passed: labs.iter().all(|l| l.passed),
        points: labs.iter().map(|l| l.points).sum(),
        max_points: labs.iter().map(|l| l.max_points).sum(),
        labs,
    };
    write_file(path, serde_json::to_string_pretty(&report).expect("reports serialise").as_bytes())
}

/// JUnit XML: a test suite per lab, a test case per check.
pub fn write_junit(path: &Path, labs: &[LabReport]) -> Result<()> {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut report = Report::new("eBPF Workbook");
    for lab in labs {
        let mut suite = TestSuite::new(format!("lab{:02}-{}", lab.number, lab.slug));
        suite.set_time(std::time::Duration::from_millis(lab.duration_ms));
        if let Some(err) = &lab.error {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
            status.set_message(err.clone());
            suite.add_test_case(TestCase::new("harness", status));
        }
        for check in &lab.checks {
            let status = if check.passed {
                TestCaseStatus::success()
            } else {
                let kind =
                    if check.status == Status::Missing { NonSuccessKind::Error } else { NonSuccessKind::Failure };
                let mut s = TestCaseStatus::non_success(kind);
                s.set_message(check.detail.lines().next().unwrap_or_default().to_string());
                let hint = check.hint.as_deref().map(|h| format!("\nhint: {h}")).unwrap_or_default();
                s.set_description(format!("{}{hint}", check.detail));
                s
            };
            suite.add_test_case(TestCase::new(check.name.clone(), status));
        }
        report.add_test_suite(suite);
    }
    let xml = report.to_string().map_err(|e| Error::Usage(format!("rendering JUnit XML: {e}")))?;
    write_file(path, xml.as_bytes())
}

/// A markdown table for CI job summaries.
pub fn summary_markdown(labs: &[LabReport]) -> String {
    let mut s = String::from("| Lab | Title | Result | Checks | Points |\n|---|---|---|---|---|\n");
    for l in labs {
        let result = match (&l.error, l.passed) {
            (Some(_), _) => "error",
            (None, true) => "pass",
            (None, false) => "fail",
        };
        let passed = l.checks.iter().filter(|c| c.passed).count();
        s.push_str(&format!(
            "| {:02} | {} | {result} | {passed}/{} | {}/{} |\n",
            l.number,
            l.title,
            l.checks.len(),
            l.points,
            l.max_points
        ));
    }
    let (points, max): (u32, u32) = (labs.iter().map(|l| l.points).sum(), labs.iter().map(|l| l.max_points).sum());
    s.push_str(&format!("\n**Total: {points}/{max} points**\n"));
    s
}

/// Gradescope's autograder `results.json`: a test per check, scored by
/// its points, with the detail and the hint as output. A lab the harness
/// could not run is a failed test of its own, so the total still adds up.
pub fn gradescope(labs: &[LabReport]) -> serde_json::Value {
    let mut tests = Vec::new();
    for l in labs {
        let lab = format!("Lab {:02} · {}", l.number, l.title);
        if let Some(err) = &l.error {
            tests.push(serde_json::json!({
                "name": format!("{lab}: the harness ran it"),
                "score": 0,
                "max_score": 0,
                "status": "failed",
                "output": format!("The grader could not run this lab: {err}"),
                "visibility": "visible",
            }));
        }
        for c in &l.checks {
            let mut output = c.detail.clone();
            if let Some(h) = c.hint.as_ref().filter(|_| !c.passed) {
                output.push_str(&format!("\nhint: {h}"));
            }
            tests.push(serde_json::json!({
                "name": format!("{lab}: {}", c.name),
                // A lab whose precondition failed earns nothing (its
                // points are 0), and neither does any of its checks.
                "score": if c.passed && l.points > 0 { c.points } else { 0 },
                "max_score": c.points,
                "status": if c.passed { "passed" } else { "failed" },
                "output": output,
                "visibility": "visible",
            }));
        }
    }
    let seeds: Vec<String> = labs.iter().map(|l| format!("lab {:02}: seed {}", l.number, l.seed)).collect();
    serde_json::json!({
        "score": labs.iter().map(|l| l.points).sum::<u32>(),
        "execution_time": labs.iter().map(|l| l.duration_ms).sum::<u64>() / 1000,
        "output": format!("Workloads (replay with labctl lab N --seed S): {}", seeds.join(", ")),
        "visibility": "visible",
        "tests": tests,
    })
}

pub fn write_gradescope(path: &Path, labs: &[LabReport]) -> Result<()> {
    let text = serde_json::to_string_pretty(&gradescope(labs)).expect("reports serialise");
    write_file(path, text.as_bytes())
}

pub fn write_file(path: &Path, data: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(Error::io(format!("creating {}", parent.display())))?;
    }
    std::fs::write(path, data).map_err(Error::io(format!("writing {}", path.display())))
}

#[cfg(test)]
mod gradescope_tests {
    use super::*;
    use crate::checks::{Status, Verdict};

    #[test]
    fn every_check_is_a_test_scored_by_its_points() {
        let check = |name: &str, passed: bool, points: u32| Verdict {
            name: name.into(),
            status: if passed { Status::Good } else { Status::Bad },
            passed,
            detail: format!("{name} detail"),
            hint: (!passed).then(|| "look here".to_string()),
            points,
        };
        let lab = LabReport {
            number: 4,
            slug: "hello-map".into(),
            title: "Hello map".into(),
            variant: "starter".into(),
            seed: 99,
            kernel: String::new(),
            accel: None,
            passed: false,
            duration_ms: 3000,
            boot_ms: 0,
            phases: Default::default(),
            points: 3,
            max_points: 5,
            checks: vec![check("attached", true, 0), check("counts", true, 3), check("printed", false, 2)],
            notes: Vec::new(),
            console_log: None,
            verifier: None,
            error: None,
            kernels: Vec::new(),
        };
        let mut broken = lab.clone();
        broken.number = 5;
        broken.checks.clear();
        broken.points = 0;
        broken.error = Some("no kernel".into());
        let v = gradescope(&[lab, broken]);
        assert_eq!(v["score"], 3);
        let tests = v["tests"].as_array().unwrap();
        assert_eq!(tests.len(), 4);
        assert_eq!(tests[1]["name"], "Lab 04 · Hello map: counts");
        assert_eq!((tests[1]["score"].as_u64(), tests[1]["max_score"].as_u64()), (Some(3), Some(3)));
        assert_eq!((tests[2]["score"].as_u64(), tests[2]["max_score"].as_u64()), (Some(0), Some(2)));
        assert!(tests[2]["output"].as_str().unwrap().contains("hint: look here"));
        assert!(tests[3]["output"].as_str().unwrap().contains("no kernel"));
        assert!(tests.iter().all(|t| t["visibility"] == "visible"));
        assert!(v["output"].as_str().unwrap().contains("seed 99"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Verdict;
    use crate::engine::Phases;

    fn lab(passed: bool) -> LabReport {
        LabReport {
            number: 3,
            slug: "hello-world".into(),
            title: "Hello".into(),
            variant: "starter".into(),
            seed: 17,
            notes: Vec::new(),
            kernel: "6.1.0".into(),
            accel: Some("tcg"),
            passed,
            duration_ms: 2000,
            boot_ms: 1500,
            phases: Phases::default(),
            points: if passed { 2 } else { 1 },
            max_points: 2,
            checks: vec![
                Verdict {
                    name: "a".into(),
                    status: Status::Good,
                    passed: true,
                    detail: "ok".into(),
                    hint: None,
                    points: 1,
                },
                Verdict {
                    name: "b <x>".into(),
                    status: if passed { Status::Good } else { Status::Bad },
                    passed,
                    detail: "no Hello".into(),
                    hint: (!passed).then(|| "fill in the TODO".into()),
                    points: 1,
                },
            ],
            console_log: None,
            verifier: None,
            error: None,
            kernels: Vec::new(),
        }
    }

    #[test]
    fn json_report_has_the_documented_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        write_json(&path, &[lab(false)]).unwrap();
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let l = &v["labs"][0];
        for key in ["number", "slug", "title", "kernel", "passed", "duration_ms", "boot_ms", "checks"] {
            assert!(l.get(key).is_some(), "missing {key}");
        }
        assert_eq!(l["checks"][1]["hint"], "fill in the TODO");
        assert_eq!(l["checks"][1]["passed"], false);
        assert_eq!(v["passed"], false);
    }

    #[test]
    fn junit_marks_failed_checks_as_failures_and_escapes_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.xml");
        write_junit(&path, &[lab(false)]).unwrap();
        let xml = std::fs::read_to_string(&path).unwrap();
        assert!(xml.contains("tests=\"2\"") && xml.contains("failures=\"1\""), "{xml}");
        assert!(xml.contains("b &lt;x&gt;") && xml.contains("<failure"), "{xml}");
    }

    #[test]
    fn terminal_shows_bad_checks_with_their_hint() {
        let mut out = Vec::new();
        let opts = TerminalOptions { console: false, progress: false };
        for v in lab(false).checks {
            print_event(&mut out, &EngineEvent::Verdict(v), opts).unwrap();
        }
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("GOOD    a\n"));
        assert!(text.contains("BAD     b <x>\n        no Hello\n        hint: fill in the TODO"), "{text}");
    }

    /// A lab whose loader printed the verifier's log of a map value used
    /// without a NULL check (captured from 6.12).
    fn rejected() -> VerifierReport {
        let log = include_str!("../tests/data/verifier/6.12/no_null_check.log");
        let explanation = crate::tutor::explain_output(log).expect("a rejection");
        VerifierReport { step: "hello".into(), explanation, log: Some("runs/lab04.hello.verifier.log".into()) }
    }

    #[test]
    fn terminal_explains_a_rejected_program_with_its_source_line() {
        let mut out = Vec::new();
        let opts = TerminalOptions { console: false, progress: false };
        print_event(&mut out, &EngineEvent::Verifier(Box::new(rejected())), opts).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("── the verifier rejected a program (hello) ──"), "{text}");
        assert!(text.contains("\n  R0 invalid mem access 'map_value_or_null'\n"), "{text}");
        assert!(text.contains("\n  at no_null_check.bpf.c:15: *count += 1;"), "{text}");
        assert!(text.contains("NULL"), "{text}");
        assert!(text.contains("  Read: book/src/ch06-verifier.md#"), "{text}");
        assert!(text.contains("  Whole log: runs/lab04.hello.verifier.log\n"), "{text}");
        assert!(text.lines().all(|l| l.chars().count() <= 80 || !l.contains(' ')), "{text}");
    }

    #[test]
    fn json_carries_the_verifiers_explanation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        let mut l = lab(false);
        l.verifier = Some(rejected());
        write_json(&path, &[l, lab(true)]).unwrap();
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let verifier = &v["labs"][0]["verifier"];
        assert_eq!(verifier["message"], "R0 invalid mem access 'map_value_or_null'");
        assert_eq!(verifier["file"], "no_null_check.bpf.c");
        assert_eq!(verifier["line"], 15);
        assert_eq!(verifier["kind"], "null-check");
        assert!(verifier["explanation"].as_str().unwrap().contains("NULL"));
        assert_eq!(verifier["step"], "hello");
        assert!(v["labs"][1]["verifier"].is_null());
    }

    #[test]
    fn summary_counts_points() {
        let md = summary_markdown(&[lab(true), lab(false)]);
        assert!(md.contains("| 03 | Hello | pass | 2/2 | 2/2 |"));
        assert!(md.contains("**Total: 3/4 points**"));
    }
}

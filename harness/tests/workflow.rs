//! The learner's and the instructor's workflow around a lab run: progress,
//! the hint ladder, the solution after a pass, quiet and verbose output,
//! and the class edition. The progress file of each test is its own
//! (WORKBOOK_PROGRESS), never the developer's.

mod common;

use std::path::Path;

use common::labctl;

fn with_progress(file: &Path) -> std::process::Command {
    let mut cmd = labctl();
    cmd.env("WORKBOOK_PROGRESS", file);
    cmd
}

fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn a_run_of_the_learners_code_is_recorded_and_the_hint_ladder_climbs() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("progress.json");
    // Not quiet, not verbose: no command lines, but the steps and verdict.
    let out = with_progress(&file).args(["lab", "1"]).output().unwrap();
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(!shown.lines().any(|l| l.starts_with("> ")), "command lines without -v:\n{shown}");
    assert!(shown.contains("hint: ") && shown.contains("seed "), "{shown}");
    let progress: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(progress["labs"]["1"]["status"], "failed");
    assert_eq!(progress["labs"]["1"]["runs"], 1);

    // A second failure of the same check offers the next tier...
    let out = with_progress(&file).args(["lab", "1", "-v"]).output().unwrap();
    let shown = text(&out);
    assert!(
        shown.lines().any(|l| l.starts_with("> ") && l.contains("qemu-system-x86_64 ")),
        "-v shows the QEMU command line:\n{shown}"
    );
    assert!(shown.contains("Another hint: just hint 1 --next"), "{shown}");
    // ...which `hint --next` unlocks and the next run shows.
    let out = with_progress(&file).args(["hint", "1", "--next"]).output().unwrap();
    assert!(text(&out).contains("hint 2: "), "{}", text(&out));
    let progress: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let tiers: Vec<u64> = progress["labs"]["1"]["checks"]
        .as_object()
        .unwrap()
        .values()
        .filter(|c| c["failures"].as_u64() > Some(0))
        .map(|c| c["tier"].as_u64().unwrap())
        .collect();
    assert!(!tiers.is_empty() && tiers.iter().all(|t| *t == 2), "{progress}");

    let out = with_progress(&file).arg("progress").output().unwrap();
    let table = text(&out);
    assert!(
        table.contains("syscall-census") && table.contains("failed") && table.contains("Next: just lab 1"),
        "{table}"
    );
}

#[test]
fn the_solution_stays_closed_until_the_lab_passes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("progress.json");
    let out = with_progress(&file).args(["solution", "3"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("has not passed yet"), "{}", text(&out));
    let out = with_progress(&file).args(["solution", "3", "--force"]).output().unwrap();
    let diff = text(&out);
    assert_eq!(out.status.code(), Some(0), "{diff}");
    assert!(
        diff.contains("--- yours/src/bpf/hello.bpf.c") && diff.contains("+++ reference/src/bpf/hello.bpf.c"),
        "{diff}"
    );
    std::fs::write(
        &file,
        r#"{"version":1,"labs":{"3":{"status":"passed","ever_passed":true,"points":6,"max_points":6,"last_run":0,"seed":1,"runs":1}}}"#,
    )
    .unwrap();
    let out = with_progress(&file).args(["solution", "3"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = with_progress(&file).arg("progress").output().unwrap();
    assert!(text(&out).contains("Next: just lab 1"), "{}", text(&out));
}

#[test]
fn the_class_edition_has_no_solutions_and_grades_a_starter_as_failing() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("class");
    let out = labctl().arg("export").arg(&dest).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(dest.join("labs/01-syscall-census/lab.toml").is_file());
    assert!(dest.join("book/src/SUMMARY.md").is_file());
    let leftovers: Vec<_> = walk(&dest.join("solutions")).into_iter().filter(|p| !p.ends_with("README.md")).collect();
    assert!(leftovers.is_empty(), "solutions leaked into the class edition: {leftovers:?}");
    // A second export into the same directory is refused, nothing overwritten.
    let again = labctl().arg("export").arg(&dest).output().unwrap();
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));

    // The edition works: its lab 1 starter builds, runs and fails with a
    // hint. It shares this checkout's kernels and build cache.
    std::os::unix::fs::symlink(common::root().join("vm/cache"), dest.join("vm/cache")).unwrap();
    let out = labctl()
        .current_dir(&dest)
        .env("WORKBOOK_ROOT", &dest)
        .env("CARGO_TARGET_DIR", common::root().join("target"))
        .env("WORKBOOK_PROGRESS", dir.path().join("progress.json"))
        .args(["lab", "1", "--json"])
        .arg(dir.path().join("report.json"))
        .output()
        .unwrap();
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(report["points"], 0, "an untouched starter scores nothing:\n{shown}");
    assert!(
        report["labs"].as_array().unwrap().iter().all(|l| l["passed"] == false && l["error"].is_null()),
        "{report}"
    );
    let verify =
        labctl().current_dir(&dest).env("WORKBOOK_ROOT", &dest).args(["lab", "1", "--solution"]).output().unwrap();
    assert_eq!(verify.status.code(), Some(2), "{}", text(&verify));
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn on_a_terminal_a_spinner_says_what_the_run_waits_for() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = with_progress(&dir.path().join("progress.json"));
    cmd.args(["lab", "1"]);
    let mut session = rexpect::session::spawn_command(cmd, Some(300_000)).unwrap();
    session.exp_string("booting the VM").expect("the spinner names the boot");
    let (before, _) = session.exp_regex(r"Lab 01: \d+/\d+ checks passed").expect("the verdict");
    assert!(!before.lines().any(|l| l.trim_start().starts_with("> ")), "no command lines on a terminal:\n{before}");
    session.exp_eof().expect("labctl ends");
}

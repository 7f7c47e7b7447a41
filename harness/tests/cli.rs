//! labctl as a user runs it: real builds, real VMs, real exit codes.

mod common;

use assert_cmd::assert::OutputAssertExt;
use common::labctl;
use predicates::prelude::*;

#[test]
fn lab_1_solution_passes_with_exit_0() {
    labctl()
        .args(["lab", "1", "--solution"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("GOOD    calls and errors match strace -c"))
        .stdout(predicate::str::contains("7/7 checks passed"));
}

#[test]
fn lab_1_starter_fails_with_exit_1_and_its_hint() {
    labctl()
        .args(["lab", "1"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("BAD     calls match strace -c"))
        .stdout(predicate::str::contains("hint: Your table does not count the same calls as strace -c on /tmp/"))
        .stdout(predicate::str::contains("Console log:"));
}

#[test]
fn lab_3_solution_passes_and_writes_reports() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let junit = dir.path().join("j.xml");
    labctl().args(["lab", "3", "--solution", "--json"]).arg(&json).arg("--junit").arg(&junit).assert().code(0);
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let lab = &report["labs"][0];
    assert_eq!(lab["number"], 3);
    assert_eq!(lab["passed"], true);
    assert!(lab["kernel"].as_str().unwrap().starts_with("6.1."), "{lab}");
    assert!(lab["boot_ms"].as_u64().unwrap() > 0);
    assert!(std::fs::read_to_string(&junit).unwrap().contains("failures=\"0\""));
}

#[test]
fn an_unknown_lab_number_exits_2_and_lists_the_labs() {
    labctl()
        .args(["lab", "99"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("there is no lab 99; the labs are 1"));
}

#[test]
fn run_returns_the_guest_commands_status_and_output() {
    labctl()
        .args(["run", "--", "/bin/sh", "-c", "uname -r; echo oops >&2; exit 7"])
        .assert()
        .code(7)
        .stdout(predicate::str::diff("6.1.0-56-cloud-amd64\n"))
        .stderr(predicate::str::contains("oops"));
}

#[test]
fn a_kernel_file_that_is_not_a_kernel_exits_2_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("vmlinuz-not-really");
    std::fs::write(&bogus, "this is text, not a bzImage\n".repeat(100)).unwrap();
    labctl()
        .args(["lab", "1", "--kernel"])
        .arg(&bogus)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("vmlinuz-not-really is not a Linux kernel image"));
}

#[test]
fn hint_prints_every_tier() {
    labctl()
        .args(["hint", "3"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("a line with the path for each run of the first program"))
        .stdout(predicate::str::contains("hint 1: Each of the <first_runs> processes that ran /<top>/<first>"))
        .stdout(predicate::str::contains("hint 2: bpf_printk(\"Hello World %s\", path)"));
}

#[test]
fn hint_speaks_korean_for_a_korean_locale_and_for_lang_ko() {
    let hangul = || predicate::str::is_match("[\u{AC00}-\u{D7A3}]").unwrap();
    labctl()
        .args(["hint", "2"])
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .env("LANG", "ko_KR.UTF-8")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("hint 1: ebpf-vs-ptrace ebpf가 실패했다"))
        .stdout(hangul());
    labctl().args(["--lang", "ko", "hint", "2"]).env("LC_ALL", "C.UTF-8").assert().code(0).stdout(hangul());
    labctl()
        .args(["hint", "2", "--lang", "en"])
        .env("LC_ALL", "ko_KR.UTF-8")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("hint 1: ebpf-vs-ptrace ebpf failed"))
        .stdout(hangul().not());
}

/// A PATH with every program of this one but those `hidden` names.
fn path_without(hidden: &[&str]) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = std::env::var_os("PATH").unwrap();
    for d in std::env::split_paths(&path) {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let link = dir.path().join(&name);
            if hidden.iter().any(|h| name.to_string_lossy().starts_with(h)) || link.exists() {
                continue;
            }
            let _ = std::os::unix::fs::symlink(entry.path(), link);
        }
    }
    let joined = dir.path().display().to_string();
    (dir, joined)
}

#[test]
fn a_missing_clang_is_a_harness_error_that_names_the_fix_not_a_verdict() {
    let (_dir, path) = path_without(&["clang"]);
    labctl()
        .args(["lab", "3", "--solution"])
        .env("PATH", path)
        .assert()
        .code(2)
        .stdout(predicate::str::contains("the lab compiles").not())
        .stderr(predicate::str::contains("clang"))
        .stderr(predicate::str::contains("apt-get install clang"));
}

#[test]
fn a_timeout_too_large_for_a_clock_is_a_usage_error_not_a_panic() {
    // `run` keeps 0-124 for the guest command's own status and says 125
    // for a failure of its own, a bad argument included.
    for timeout in ["1e30", "inf", "0", "-3"] {
        labctl()
            .args(["run", &format!("--timeout={timeout}"), "--", "/bin/true"])
            .assert()
            .code(125)
            .stderr(predicate::str::contains(format!("--timeout {}", timeout.parse::<f64>().unwrap())))
            .stderr(predicate::str::contains("panicked").not());
    }
}

#[test]
fn two_labctl_processes_on_one_checkout_both_finish_correctly() {
    // The same lab twice and another beside them: shared build lock,
    // caches, images and run directories, all at once.
    let runs: Vec<(Vec<&str>, i32)> = vec![
        (vec!["lab", "1", "--solution", "--seed", "7"], 0),
        (vec!["lab", "1", "--solution", "--seed", "8"], 0),
        (vec!["lab", "3"], 1),
    ];
    let children: Vec<_> = runs
        .iter()
        .map(|(args, _)| {
            labctl()
                .args(args)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (child, (args, code)) in children.into_iter().zip(&runs) {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(*code),
            "labctl {args:?}\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("checks passed") || stdout.contains("BAD"), "{stdout}");
    }
}

/// A lab run's report: its seed, and each check's status with the first
/// line of its detail where that names only the seeded workload (the
/// signal check's: the command's random name and its signal count).
fn seeded_run(seed: Option<&str>) -> (u64, Vec<(String, String, String)>) {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let mut cmd = labctl();
    cmd.args(["lab", "1", "--json"]).arg(&json);
    if let Some(seed) = seed {
        cmd.args(["--seed", seed]);
    }
    cmd.assert().code(1);
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let lab = &report["labs"][0];
    let checks = lab["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let name = c["name"].as_str().unwrap().to_string();
            let detail = c["detail"].as_str().unwrap_or_default();
            let seeded = if name.contains("signal") { detail.lines().next().unwrap_or_default() } else { "" };
            (name, c["status"].to_string(), seeded.to_string())
        })
        .collect();
    (lab["seed"].as_u64().unwrap(), checks)
}

#[test]
fn a_seed_replays_the_workload_and_the_verdict_and_no_seed_draws_a_new_one() {
    let (seed_a, a) = seeded_run(Some("4242"));
    let (seed_b, b) = seeded_run(Some("4242"));
    assert_eq!((seed_a, seed_b), (4242, 4242));
    // The details name the seeded workload (its command's random name, its
    // counts): the same seed, the same words.
    assert_eq!(a, b);
    let (fresh_a, fa) = seeded_run(None);
    let (fresh_b, fb) = seeded_run(None);
    assert_ne!(fresh_a, fresh_b);
    assert_ne!(fa, fb, "two fresh seeds drew the same workload");
}

#[test]
fn a_mutant_that_does_not_exist_is_named_with_the_labs_mutants() {
    labctl()
        .args(["lab", "3", "--mutant", "no-such-mistake"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("lab 3 has no mutant `no-such-mistake`"))
        .stderr(predicate::str::contains("solutions/03-hello-world/mutants"))
        .stderr(predicate::str::contains("only-tmp"));
}

#[test]
fn a_mutant_runs_as_the_grader_sees_it_and_fails() {
    labctl()
        .args(["lab", "3", "--mutant", "only-tmp.patch"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("(mutant only-tmp, seed"))
        .stdout(predicate::str::contains("BAD     a line for each run of a system program"));
}

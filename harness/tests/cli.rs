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
        .stdout(predicate::str::contains("GOOD    table matches strace -c"))
        .stdout(predicate::str::contains("4/4 checks passed"));
}

#[test]
fn lab_1_starter_fails_with_exit_1_and_its_hint() {
    labctl()
        .args(["lab", "1"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("BAD     table matches strace -c"))
        .stdout(predicate::str::contains("hint: Your table is missing syscalls"))
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
        .stdout(predicate::str::contains("hint 1: No 'Hello World ... uname'"))
        .stdout(predicate::str::contains("hint 2: bpf_printk"));
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

//! labctl's VM handling driven through its faults by a fake QEMU (a Perl
//! script, `fake_qemu.pl`) that plays a scenario in seconds: boot failure,
//! a guest that never speaks, a hang after boot, QEMU dying, a kernel panic
//! and floods. The real-VM versions of some of these are in faults.rs.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use labctl::engine::{self, Env, Options, RunRequest};
use labctl::error::Error;
use labctl::qemu::Console;
use labctl::vm::{RunEnd, VmRun};
use labctl::workspace::Workspace;
use workbook_agent::{Event, Plan, StepResult};

/// A fake `qemu-system-x86_64` in a directory of its own, with its scenario.
struct Fake {
    dir: tempfile::TempDir,
}

impl Fake {
    fn new(scenario: &[String]) -> Fake {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let qemu = dir.path().join("qemu-system-x86_64");
        std::fs::write(&qemu, include_str!("fake_qemu.pl")).unwrap();
        std::fs::set_permissions(&qemu, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.path().join("scenario"), scenario.join("\n") + "\n").unwrap();
        Fake { dir }
    }

    fn qemu(&self) -> PathBuf {
        self.dir.path().join("qemu-system-x86_64")
    }

    /// PATH with the fake first.
    fn path_env(&self) -> String {
        format!("{}:{}", self.dir.path().display(), std::env::var("PATH").unwrap_or_default())
    }

    /// The pids the fake ran as.
    fn pids(&self) -> Vec<u32> {
        let calls = std::fs::read_to_string(self.dir.path().join("calls")).unwrap_or_default();
        calls.lines().filter_map(|l| l.split(' ').next()?.parse().ok()).collect()
    }

    /// Fails if a process the fake ran as still exists (zombies included:
    /// the guard must reap, not only kill).
    fn assert_gone(&self) {
        let pids = self.pids();
        assert!(!pids.is_empty(), "the fake QEMU never ran");
        for pid in pids {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            assert!(stat.is_empty(), "the fake QEMU {pid} is still there: {stat}");
        }
    }
}

fn event(ev: &Event) -> String {
    format!("event {}", ev.to_line().trim_end())
}

fn hello() -> Vec<String> {
    vec![
        "console workbook-agent: up on Linux 6.1.0-fake".into(),
        "connect".into(),
        event(&Event::Hello { kernel: "6.1.0-fake".into(), uptime_ms: 5 }),
    ]
}

fn step_start(name: &str) -> String {
    event(&Event::StepStart { name: name.into() })
}

fn step_end(name: &str, exit_code: i32, stdout: &str) -> String {
    event(&Event::StepEnd(StepResult {
        name: name.into(),
        exit_code: Some(exit_code),
        duration_ms: 3,
        stdout: stdout.into(),
        ..Default::default()
    }))
}

fn lines(parts: &[&[String]]) -> Vec<String> {
    parts.iter().flat_map(|p| p.iter().cloned()).collect()
}

/// The engine's shared pieces, with the fake as QEMU and short bounds.
fn env_with(fake: &Fake, boot: Duration) -> Env {
    let ws = Workspace::at(common::root()).unwrap();
    let (sink, _rx) = std::sync::mpsc::channel();
    let options =
        Options { quiet: true, accel: labctl::accel::AccelChoice::Tcg, boot_timeout: Some(boot), ..Options::default() };
    let mut env = engine::prepare(&ws, &options, &sink).unwrap();
    env.qemu = fake.qemu();
    env
}

fn run(env: &Env, name: &str, total: Duration) -> Result<VmRun, Error> {
    let plan = Plan { steps: vec![common::step("a", &["/bin/true"], 1.0)], ..Plan::default() };
    let (sink, _rx) = std::sync::mpsc::channel();
    let req =
        RunRequest { plan: &plan, binaries: &[], files: &[], modules: &[], console: Console::Captured, total, name };
    env.run_plan(&req, &sink).map(|(run, _)| run)
}

fn step_names(run: &VmRun) -> Vec<String> {
    engine::step_results(&run.events).into_keys().collect()
}

#[test]
fn qemu_that_exits_at_once_is_a_boot_failure_that_quotes_qemu() {
    let fake = Fake::new(&["stderr qemu-system-x86_64: -kernel /k: could not open".into(), "exit 1".into()]);
    let env = env_with(&fake, Duration::from_secs(10));
    let started = Instant::now();
    let err = run(&env, "fake-exit", Duration::from_secs(5)).unwrap_err();
    assert!(matches!(err, Error::Boot { .. }), "{err}");
    assert!(err.to_string().contains("could not open"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(8));
    fake.assert_gone();
}

#[test]
fn a_guest_that_never_speaks_is_a_boot_timeout_and_its_qemu_is_killed() {
    // It ignores SIGTERM: only a SIGKILL from the guard ends it.
    let fake = Fake::new(&["hang".into()]);
    let env = env_with(&fake, Duration::from_secs(2));
    let started = Instant::now();
    let err = run(&env, "fake-silent", Duration::from_secs(5)).unwrap_err();
    assert!(err.to_string().contains("no output on the console within 2 s"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(6), "took {:?}", started.elapsed());
    fake.assert_gone();
}

#[test]
fn a_vm_that_hangs_after_boot_times_out_and_keeps_what_it_received() {
    let fake =
        Fake::new(&lines(&[&hello(), &[step_start("a"), step_end("a", 0, "ok"), step_start("b"), "hang".into()]]));
    let env = env_with(&fake, Duration::from_secs(2));
    let started = Instant::now();
    let vm = run(&env, "fake-hang", Duration::from_secs(2)).expect("a run that reached the agent is kept");
    assert_eq!(vm.end, RunEnd::TimedOut { seconds: 4.0 });
    assert_eq!(step_names(&vm), ["a"]);
    assert!(started.elapsed() < Duration::from_secs(8), "took {:?}", started.elapsed());
    fake.assert_gone();
}

#[test]
fn qemu_dying_mid_run_keeps_what_was_received_and_says_why() {
    let fake = Fake::new(&lines(&[
        &hello(),
        &[
            step_start("a"),
            step_end("a", 0, "ok"),
            step_start("b"),
            "stderr qemu-system-x86_64: fatal: the emulator broke".into(),
            "exit 1".into(),
        ],
    ]));
    let env = env_with(&fake, Duration::from_secs(5));
    let vm = run(&env, "fake-death", Duration::from_secs(5)).expect("a run that reached the agent is kept");
    match &vm.end {
        RunEnd::Died { message, by_guest: false } => assert!(message.contains("the emulator broke"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(step_names(&vm), ["a"]);
    fake.assert_gone();
}

#[test]
fn a_kernel_panic_mid_run_keeps_what_was_received() {
    let fake = Fake::new(&lines(&[
        &hello(),
        &[
            step_start("a"),
            step_end("a", 0, "ok"),
            step_start("b"),
            "console Kernel panic - not syncing: Out of memory and no killable processes...".into(),
            "exit 0".into(),
        ],
    ]));
    let env = env_with(&fake, Duration::from_secs(5));
    let vm = run(&env, "fake-panic", Duration::from_secs(5)).expect("a run that reached the agent is kept");
    match &vm.end {
        RunEnd::Panicked { message } => assert!(message.contains("Out of memory"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(step_names(&vm), ["a"]);
    assert!(std::fs::read_to_string(&vm.log).unwrap().contains("Kernel panic"));
}

#[test]
fn floods_on_the_console_and_the_events_channel_do_not_stall_the_run() {
    let fake = Fake::new(&lines(&[
        &["flood 2".into()],
        &hello(),
        &[step_start("a"), "flood_events 2 a".into(), step_end("a", 0, "ok"), event(&Event::Done), "exit 0".into()],
    ]));
    let env = env_with(&fake, Duration::from_secs(20));
    let started = Instant::now();
    let vm = run(&env, "fake-flood", Duration::from_secs(20)).unwrap();
    assert_eq!(vm.end, RunEnd::Completed);
    assert_eq!(step_names(&vm), ["a"]);
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
    fake.assert_gone();
}

/// A scenario for lab 1 that runs its steps but the last, during which
/// `then` happens.
fn lab1_scenario(then: &[String]) -> (Vec<String>, String) {
    let ws = Workspace::at(common::root()).unwrap();
    let lab = ws.lab(1).unwrap();
    let steps: Vec<String> = lab.manifest.steps.iter().map(|s| s.name.clone()).collect();
    let (last, done) = steps.split_last().unwrap();
    let mut scenario = hello();
    for name in done {
        scenario.push(step_start(name));
        scenario.push(step_end(name, 0, ""));
    }
    scenario.push(step_start(last));
    // Long enough for the watcher, which polls every 20 ms, to see this
    // QEMU alive: a scenario played in a millisecond would pass unseen, and
    // the test would wait for a VM that came and went.
    scenario.push("sleep 0.5".into());
    scenario.extend(then.iter().cloned());
    (scenario, last.clone())
}

#[test]
fn a_kernel_panic_during_a_lab_step_keeps_the_verdicts_and_is_the_students_failure() {
    let (scenario, last) = lab1_scenario(&[
        "console Kernel panic - not syncing: Out of memory and no killable processes...".into(),
        "exit 0".into(),
    ]);
    let fake = Fake::new(&scenario);
    let path = fake.path_env();
    let run = common::labctl_watched(
        &["lab", "1", "--solution", "--quiet"],
        &[("PATH", &path), ("WORKBOOK_ACCEL", "tcg")],
        Duration::from_secs(600),
    );
    let stdout = run.stdout();
    assert_eq!(run.output.status.code(), Some(1), "{stdout}\n{}", run.stderr());
    assert!(stdout.contains("GOOD    census runs to completion"), "{stdout}");
    assert!(stdout.contains("MISSING unknown command fails"), "{stdout}");
    assert!(stdout.contains(&format!("the guest kernel panicked while `{last}` was running")), "{stdout}");
    fake.assert_gone();
}

#[test]
fn qemu_failing_during_a_lab_keeps_the_verdicts_and_is_a_harness_error() {
    let (scenario, _) =
        lab1_scenario(&["stderr qemu-system-x86_64: fatal: the emulator broke".into(), "exit 1".into()]);
    let fake = Fake::new(&scenario);
    let path = fake.path_env();
    let run = common::labctl_watched(
        &["lab", "1", "--solution", "--quiet"],
        &[("PATH", &path), ("WORKBOOK_ACCEL", "tcg")],
        Duration::from_secs(600),
    );
    let stdout = run.stdout();
    assert_eq!(run.output.status.code(), Some(2), "{stdout}\n{}", run.stderr());
    assert!(stdout.contains("GOOD    census runs to completion"), "{stdout}");
    assert!(stdout.contains("MISSING unknown command fails"), "{stdout}");
    assert!(stdout.contains("the emulator broke"), "{stdout}");
    fake.assert_gone();
}

#[test]
fn a_program_the_verifier_rejects_is_explained_in_the_terminal_and_the_json() {
    // Lab 3 as if its loader had printed the verifier's log of a map value
    // used without a NULL check (captured from 6.1) and exited.
    let ws = Workspace::at(common::root()).unwrap();
    let lab = ws.lab(3).unwrap();
    let log = include_str!("data/verifier/6.1/no_null_check.log");
    let mut scenario = hello();
    for step in &lab.manifest.steps {
        scenario.push(step_start(&step.name));
        let mut result =
            StepResult { name: step.name.clone(), exit_code: Some(0), duration_ms: 3, ..Default::default() };
        if step.run.iter().any(|a| a.starts_with("/lab/bin/")) {
            result.exit_code = Some(1);
            result.stderr = format!("{log}Error: failed to load the BPF object\n");
        }
        scenario.push(event(&Event::StepEnd(result)));
    }
    scenario.push(event(&Event::Done));
    scenario.push("sleep 0.5".into());
    scenario.push("exit 0".into());
    let fake = Fake::new(&scenario);
    let path = fake.path_env();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let run = common::labctl_watched(
        &["lab", "3", "--solution", "--quiet", "--json", json.to_str().unwrap()],
        &[("PATH", &path), ("WORKBOOK_ACCEL", "tcg")],
        Duration::from_secs(600),
    );
    let stdout = run.stdout();
    assert_eq!(run.output.status.code(), Some(1), "{stdout}\n{}", run.stderr());
    assert!(stdout.contains("── the verifier rejected a program (hello) ──"), "{stdout}");
    assert!(stdout.contains("  R0 invalid mem access 'map_value_or_null'"), "{stdout}");
    assert!(stdout.contains("  Read: book/src/ch06-verifier.md#"), "{stdout}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let verifier = &report["labs"][0]["verifier"];
    assert_eq!(verifier["message"], "R0 invalid mem access 'map_value_or_null'", "{report}");
    assert_eq!(verifier["kind"], "null-check");
    let kept = std::fs::read_to_string(verifier["log"].as_str().unwrap()).unwrap();
    assert!(kept.contains("-- BEGIN PROG LOAD LOG --"), "{kept}");
    fake.assert_gone();
}

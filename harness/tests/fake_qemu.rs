//! labctl's VM handling driven through its faults by a fake QEMU (a Perl
//! script, `fake_qemu.pl`) that plays a scenario in seconds: boot failure,
//! a guest that never speaks, a hang after boot, QEMU dying, a kernel panic
//! and floods, each on a cold boot and on a restore of a (made-up) snapshot.
//! The real-VM versions of some of these are in faults.rs.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use labctl::engine::{self, Env, Options, RunRequest};
use labctl::error::Error;
use labctl::qemu::Console;
use labctl::snapshot::{Found, Manifest, Snapshot};
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

/// The boot the made-up snapshot says it was saved from; every scenario's
/// agent reports it (a cold boot's is not checked).
const FAKE_BOOT: &str = "fake-boot";

fn hello() -> Vec<String> {
    vec![
        "console workbook-agent: up on Linux 6.1.0-fake".into(),
        "connect".into(),
        event(&Event::Hello { kernel: "6.1.0-fake".into(), uptime_ms: 5, boot_id: FAKE_BOOT.into() }),
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

/// The engine's shared pieces, with the fake as QEMU and short bounds,
/// booting cold.
fn env_with(fake: &Fake, boot: Duration) -> Env {
    let ws = Workspace::at(common::root()).unwrap();
    let (sink, _rx) = std::sync::mpsc::channel();
    let options = Options {
        quiet: true,
        accel: labctl::accel::AccelChoice::Tcg,
        boot_timeout: Some(boot),
        cold: true,
        ..Options::default()
    };
    let mut env = engine::prepare(&ws, &options, &sink).unwrap();
    env.qemu = fake.qemu();
    env
}

/// How a scenario's guest starts.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Path {
    Cold,
    /// From a snapshot made up for the fake, in a directory of its own.
    Restored,
}

/// Makes up a snapshot in `dir` that the fake can "restore": the one a run
/// on `env` looks for, with the boot the scenarios' agent reports.
fn made_up_snapshot(env: &Env, dir: &std::path::Path) -> PathBuf {
    let snapshots = Snapshot::new(dir.to_path_buf(), &env.kernel);
    let socket = dir.join("key.sock");
    let spec = env.vm_spec(PathBuf::new(), Console::Captured, &socket);
    let (key, _) = snapshots.key_for(&env.ws.cache_dir(), &env.base, &spec).unwrap().expect("snapshots possible");
    let slot = snapshots.slot(&key);
    std::fs::create_dir_all(&slot).unwrap();
    std::fs::write(slot.join("state"), "a saved machine").unwrap();
    std::fs::write(slot.join("boot.cpio"), "an initramfs").unwrap();
    let manifest = Manifest {
        format: labctl::snapshot::FORMAT,
        key: key.clone(),
        kernel: "fake".into(),
        qemu: "fake".into(),
        boot_id: FAKE_BOOT.into(),
        state_bytes: 15,
        boot_image_bytes: 12,
    };
    std::fs::write(slot.join("snapshot.json"), serde_json::to_vec(&manifest).unwrap()).unwrap();
    assert!(matches!(snapshots.find(&key), Found::Usable(_)));
    slot
}

/// [`env_with`] on `path`; the directory holds the made-up snapshot.
fn env_on(path: Path, fake: &Fake, boot: Duration) -> (Env, tempfile::TempDir) {
    let mut env = env_with(fake, boot);
    let dir = tempfile::tempdir().unwrap();
    if path == Path::Restored {
        made_up_snapshot(&env, dir.path());
        env.launcher = Box::new(Snapshot::new(dir.path().to_path_buf(), &env.kernel));
    }
    (env, dir)
}

/// Removes a made-up snapshot from the project's cache, whatever the
/// test's ending (its key has the fake's version: no real run finds it).
struct Remove(PathBuf);

impl Drop for Remove {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `labctl lab 1 --solution` with the fake as QEMU, on `path`: the
/// project's own snapshot cache gets a made-up snapshot for the restore.
fn lab1_with_fake(fake: &Fake, path: Path) -> common::Watched {
    let _slot = match path {
        Path::Cold => None,
        Path::Restored => {
            let env = env_with(fake, Duration::from_secs(10));
            Some(Remove(made_up_snapshot(&env, &env.ws.cache_dir().join("snapshots"))))
        }
    };
    let mut args = vec!["lab", "1", "--solution", "--quiet"];
    if path == Path::Cold {
        args.push("--cold");
    }
    let search = fake.path_env();
    common::labctl_watched(&args, &[("PATH", &search), ("WORKBOOK_ACCEL", "tcg")], Duration::from_secs(600))
}

/// The run's QEMU command lines: whether it restored, booted, or both.
fn restored_and_booted(fake: &Fake) -> (usize, usize) {
    let calls = std::fs::read_to_string(fake.dir.path().join("calls")).unwrap_or_default();
    let restores = calls.lines().filter(|l| l.contains(" -incoming ")).count();
    (restores, calls.lines().count() - restores)
}

/// Proves the path the run took: on a restore, whether a cold boot
/// followed (only when the restored guest never spoke).
fn assert_path(fake: &Fake, path: Path, fell_back: bool) {
    let expected = match (path, fell_back) {
        (Path::Cold, _) => (0, 1),
        (Path::Restored, false) => (1, 0),
        (Path::Restored, true) => (1, 1),
    };
    assert_eq!(restored_and_booted(fake), expected, "(restores, cold boots) on {path:?}");
}

/// Each scenario on both paths: `NAME::cold` and `NAME::restored`.
macro_rules! on_both_paths {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn cold() {
                super::$name(super::Path::Cold)
            }
            #[test]
            fn restored() {
                super::$name(super::Path::Restored)
            }
        }
    )*};
}

on_both_paths!(
    qemu_that_exits_at_once_is_a_boot_failure_that_quotes_qemu,
    a_guest_that_never_speaks_is_a_boot_timeout_and_its_qemu_is_killed,
    a_vm_that_hangs_after_boot_times_out_and_keeps_what_it_received,
    qemu_dying_mid_run_keeps_what_was_received_and_says_why,
    a_kernel_panic_mid_run_keeps_what_was_received,
    floods_on_the_console_and_the_events_channel_do_not_stall_the_run,
    a_kernel_panic_during_a_lab_step_keeps_the_verdicts_and_is_the_students_failure,
    qemu_failing_during_a_lab_keeps_the_verdicts_and_is_a_harness_error,
);

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

fn qemu_that_exits_at_once_is_a_boot_failure_that_quotes_qemu(path: Path) {
    let fake = Fake::new(&["stderr qemu-system-x86_64: -kernel /k: could not open".into(), "exit 1".into()]);
    let (env, _snapshots) = env_on(path, &fake, Duration::from_secs(10));
    let started = Instant::now();
    let err = run(&env, "fake-exit", Duration::from_secs(5)).unwrap_err();
    assert!(matches!(err, Error::Boot { .. }), "{err}");
    assert!(err.to_string().contains("could not open"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(8));
    fake.assert_gone();
    assert_path(&fake, path, true);
}

fn a_guest_that_never_speaks_is_a_boot_timeout_and_its_qemu_is_killed(path: Path) {
    // It ignores SIGTERM: only a SIGKILL from the guard ends it.
    let fake = Fake::new(&["hang".into()]);
    let (env, _snapshots) = env_on(path, &fake, Duration::from_secs(2));
    let started = Instant::now();
    let err = run(&env, "fake-silent", Duration::from_secs(5)).unwrap_err();
    assert!(err.to_string().contains("no output on the console within 2 s"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(6), "took {:?}", started.elapsed());
    fake.assert_gone();
    assert_path(&fake, path, true);
}

fn a_vm_that_hangs_after_boot_times_out_and_keeps_what_it_received(path: Path) {
    let fake =
        Fake::new(&lines(&[&hello(), &[step_start("a"), step_end("a", 0, "ok"), step_start("b"), "hang".into()]]));
    let (env, _snapshots) = env_on(path, &fake, Duration::from_secs(2));
    let started = Instant::now();
    let vm = run(&env, "fake-hang", Duration::from_secs(2)).expect("a run that reached the agent is kept");
    assert_eq!(vm.end, RunEnd::TimedOut { seconds: 4.0 });
    assert_eq!(step_names(&vm), ["a"]);
    assert!(started.elapsed() < Duration::from_secs(8), "took {:?}", started.elapsed());
    fake.assert_gone();
    assert_path(&fake, path, false);
}

fn qemu_dying_mid_run_keeps_what_was_received_and_says_why(path: Path) {
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
    let (env, _snapshots) = env_on(path, &fake, Duration::from_secs(5));
    let vm = run(&env, "fake-death", Duration::from_secs(5)).expect("a run that reached the agent is kept");
    match &vm.end {
        RunEnd::Died { message, by_guest: false } => assert!(message.contains("the emulator broke"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(step_names(&vm), ["a"]);
    fake.assert_gone();
    assert_path(&fake, path, false);
}

fn a_kernel_panic_mid_run_keeps_what_was_received(path: Path) {
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
    let (env, _snapshots) = env_on(path, &fake, Duration::from_secs(5));
    let vm = run(&env, "fake-panic", Duration::from_secs(5)).expect("a run that reached the agent is kept");
    match &vm.end {
        RunEnd::Panicked { message } => assert!(message.contains("Out of memory"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(step_names(&vm), ["a"]);
    assert!(std::fs::read_to_string(&vm.log).unwrap().contains("Kernel panic"));
    assert_path(&fake, path, false);
}

fn floods_on_the_console_and_the_events_channel_do_not_stall_the_run(path: Path) {
    let fake = Fake::new(&lines(&[
        &["flood 2".into()],
        &hello(),
        &[step_start("a"), "flood_events 2 a".into(), step_end("a", 0, "ok"), event(&Event::Done), "exit 0".into()],
    ]));
    let (env, _snapshots) = env_on(path, &fake, Duration::from_secs(20));
    let started = Instant::now();
    let vm = run(&env, "fake-flood", Duration::from_secs(20)).unwrap();
    assert_eq!(vm.end, RunEnd::Completed);
    assert_eq!(step_names(&vm), ["a"]);
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
    fake.assert_gone();
    assert_path(&fake, path, false);
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

fn a_kernel_panic_during_a_lab_step_keeps_the_verdicts_and_is_the_students_failure(path: Path) {
    let (scenario, last) = lab1_scenario(&[
        "console Kernel panic - not syncing: Out of memory and no killable processes...".into(),
        "exit 0".into(),
    ]);
    let fake = Fake::new(&scenario);
    let run = lab1_with_fake(&fake, path);
    let stdout = run.stdout();
    assert_eq!(run.output.status.code(), Some(1), "{stdout}\n{}", run.stderr());
    assert!(stdout.contains("GOOD    census runs to completion"), "{stdout}");
    assert!(stdout.contains("MISSING unknown command fails"), "{stdout}");
    assert!(stdout.contains(&format!("the guest kernel panicked while `{last}` was running")), "{stdout}");
    fake.assert_gone();
    assert_path(&fake, path, false);
}

fn qemu_failing_during_a_lab_keeps_the_verdicts_and_is_a_harness_error(path: Path) {
    let (scenario, _) =
        lab1_scenario(&["stderr qemu-system-x86_64: fatal: the emulator broke".into(), "exit 1".into()]);
    let fake = Fake::new(&scenario);
    let run = lab1_with_fake(&fake, path);
    let stdout = run.stdout();
    assert_eq!(run.output.status.code(), Some(2), "{stdout}\n{}", run.stderr());
    assert!(stdout.contains("GOOD    census runs to completion"), "{stdout}");
    assert!(stdout.contains("MISSING unknown command fails"), "{stdout}");
    assert!(stdout.contains("the emulator broke"), "{stdout}");
    fake.assert_gone();
    assert_path(&fake, path, false);
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

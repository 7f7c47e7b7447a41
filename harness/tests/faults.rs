//! The ways a run can go wrong, each ending promptly with a clear report
//! and no QEMU left behind: on a cold boot and on a restored snapshot.

mod common;

use std::time::{Duration, Instant};

use common::{labctl_watched, labctl_watched_interrupted};
use labctl::engine::{self, Options, RunRequest};
use labctl::qemu::Console;
use labctl::workspace::Workspace;
use workbook_agent::Plan;

fn env(cold: bool) -> engine::Env {
    let ws = Workspace::at(common::root()).unwrap();
    let (sink, _rx) = std::sync::mpsc::channel();
    let env = engine::prepare(&ws, &Options { quiet: true, cold, ..Options::default() }, &sink).unwrap();
    assert_eq!(env.launcher.name(), if cold { "cold boot" } else { "snapshot restore" });
    env
}

/// Each fault, tried on both ways a guest starts: `NAME::cold` boots the
/// kernel, `NAME::restored` restores the snapshot.
macro_rules! on_both_paths {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn cold() {
                super::$name(true)
            }
            #[test]
            fn restored() {
                super::$name(false)
            }
        }
    )*};
}

on_both_paths!(
    a_hanging_step_times_out_within_its_timeout_plus_5_s,
    labctl_run_reports_a_timeout_and_reaps_its_qemu_before_exiting,
    a_guest_kernel_panic_is_reported_as_one_with_the_log,
    ctrl_c_kills_and_reaps_qemu_before_labctl_exits,
    a_step_that_floods_stdout_for_10_s_is_capped_and_the_run_goes_on,
    streamed_output_keeps_characters_that_straddle_reads,
);

/// `labctl run` arguments: `options`, `--cold` when asked, then the command.
fn run_args<'a>(cold: bool, options: &[&'a str], command: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["run"];
    args.extend_from_slice(options);
    if cold {
        args.push("--cold");
    }
    args.push("--");
    args.extend_from_slice(command);
    args
}

fn a_hanging_step_times_out_within_its_timeout_plus_5_s(cold: bool) {
    let env = env(cold);
    let step = common::step("hang", &["/bin/sleep", "600"], 3.0);
    let plan = Plan { steps: vec![step], ..Plan::default() };
    let (sink, _rx) = std::sync::mpsc::channel();
    let req = RunRequest {
        plan: &plan,
        binaries: &[],
        files: &[],
        modules: &[],
        console: Console::Captured,
        total: Duration::from_secs(60),
        name: "test-hang",
    };
    let (run, _) = env.run_plan(&req, &sink).expect("the VM itself is fine");
    let result = engine::step_results(&run.events).remove("hang").unwrap();
    assert!(result.timed_out, "{result:?}");
    assert!(result.duration_ms >= 3000, "{result:?}");
    // Everything after boot: the step, the kill and the power-off.
    let after_boot = run.total_ms - run.boot_ms;
    assert!(after_boot < 8000, "took {after_boot} ms after boot for a 3 s timeout");
}

fn labctl_run_reports_a_timeout_and_reaps_its_qemu_before_exiting(cold: bool) {
    let args = run_args(cold, &["--timeout", "3"], &["/bin/sleep", "600"]);
    let run = labctl_watched(&args, &[], Duration::from_secs(150));
    assert_eq!(run.output.status.code(), Some(124), "{}", run.stderr());
    assert!(run.stderr().contains("timed out after 3 s"), "{}", run.stderr());
}

fn a_guest_kernel_panic_is_reported_as_one_with_the_log(cold: bool) {
    let started = Instant::now();
    let args = run_args(cold, &[], &["/bin/sh", "-c", "echo c > /proc/sysrq-trigger; sleep 600"]);
    let run = labctl_watched(&args, &[], Duration::from_secs(150));
    let stderr = run.stderr();
    assert_eq!(run.output.status.code(), Some(125), "{stderr}");
    assert!(stderr.contains("the guest kernel panicked"), "{stderr}");
    let log = stderr.lines().find_map(|l| l.trim().strip_prefix("console log: ")).expect("the log's path is printed");
    assert!(std::fs::read_to_string(log).unwrap().contains("Kernel panic"));
    assert!(started.elapsed() < Duration::from_secs(120), "a panic must end the run at once, not at a timeout");
    assert!(!run.qemus.is_empty());
}

fn ctrl_c_kills_and_reaps_qemu_before_labctl_exits(cold: bool) {
    // The guest would sleep for ten minutes: only labctl's guard can end
    // this VM, and it must have done so while labctl is still running.
    let args = run_args(cold, &[], &["/bin/sleep", "600"]);
    let run = labctl_watched_interrupted(&args, &[], Duration::from_secs(150), Some(Duration::from_secs(3)));
    assert_eq!(run.output.status.code(), Some(125), "{}", run.stderr());
    assert!(run.stderr().contains("interrupted"), "{}", run.stderr());
    assert!(!run.qemus.is_empty());
}

fn a_step_that_floods_stdout_for_10_s_is_capped_and_the_run_goes_on(cold: bool) {
    let env = env(cold);
    let flood = common::step(
        "flood",
        &["/bin/sh", "-c", "yes 'flood 한글 flood' & p=$!; sleep 10; kill $p; echo flooded >&2"],
        30.0,
    );
    let after = common::step("after", &["/bin/echo", "still here"], 10.0);
    let plan = Plan { steps: vec![flood, after], ..Plan::default() };
    let (sink, _rx) = std::sync::mpsc::channel();
    let req = RunRequest {
        plan: &plan,
        binaries: &[],
        files: &[],
        modules: &[],
        console: Console::Captured,
        total: Duration::from_secs(60),
        name: "test-flood",
    };
    let (run, _) = env.run_plan(&req, &sink).expect("the VM itself is fine");
    assert!(run.end.is_completed(), "{:?}", run.end);
    let results = engine::step_results(&run.events);
    let flood = &results["flood"];
    assert!(flood.truncated, "{} bytes kept", flood.stdout.len());
    assert!(flood.stdout.len() <= workbook_agent::capture::OUTPUT_CAP);
    let ends = |t: &str| {
        let chars: Vec<char> = t.chars().collect();
        let head: String = chars.iter().take(40).collect();
        let tail: String = chars[chars.len().saturating_sub(40)..].iter().collect();
        format!("begins {head:?} … ends {tail:?}")
    };
    assert!(flood.stdout.starts_with("flood 한글 flood\n"), "{}", ends(&flood.stdout));
    assert!(!flood.stdout.contains('\u{fffd}'), "a broken character: {}", ends(&flood.stdout));
    assert_eq!(flood.stderr, "flooded\n");
    assert_eq!(results["after"].stdout, "still here\n");
    // Ten seconds of flood, then the capped result over the serial port.
    let after_boot = run.total_ms - run.boot_ms;
    assert!(after_boot < 25_000, "took {after_boot} ms after boot");
}

fn streamed_output_keeps_characters_that_straddle_reads(cold: bool) {
    let args = run_args(cold, &[], &["/bin/sh", "-c", "yes 한글 | head -n 20000"]);
    let out = common::labctl().args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).expect("whole characters");
    assert_eq!(stdout.len(), 20000 * "한글\n".len(), "{}", stdout.chars().take(60).collect::<String>());
    assert!(stdout.lines().all(|l| l == "한글"));
}

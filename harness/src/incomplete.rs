//! What a run could not observe, said where the student looks: in the
//! verdicts.
//!
//! A run ends early when the VM times out, QEMU dies, or the guest kernel
//! panicks: the steps that ran keep their verdicts, the checks that needed
//! the rest are MISSING with the reason, and the blame goes where it
//! belongs. When the guest kernel panicked, or the guest powered itself
//! off, while a lab step was running, that step did it (it ran out of
//! memory, it rebooted the machine): a student failure, exit 1. Every other
//! early end is the harness's (QEMU failed or was killed, or the guest is
//! stuck although every step has a timeout that fits in the lab's): exit 2.
//!
//! A step whose output went past the agent's cap is graded on its
//! beginning and its end, and its failing verdicts say so.

use workbook_agent::Event;
use workbook_agent::capture::OUTPUT_CAP;

use crate::checks::{Observations, Status, Verdict};
use crate::manifest::Manifest;
use crate::vm::{RunEnd, VmRun};

/// What an early end means for the report.
#[derive(Debug, Clone, PartialEq)]
pub struct EarlyEnd {
    /// Appended to every MISSING verdict.
    pub reason: String,
    /// Set when the harness is to blame: the report's `error`, exit 2.
    pub harness_error: Option<String>,
}

/// Steps that started and never reported an end, in order.
pub fn unfinished_steps(events: &[Event]) -> Vec<String> {
    let mut running: Vec<String> = Vec::new();
    for ev in events {
        match ev {
            Event::StepStart { name } => running.push(name.clone()),
            Event::StepEnd(r) => running.retain(|n| *n != r.name),
            _ => {}
        }
    }
    running
}

/// How `run` ended, for grading; None when it completed.
pub fn early_end(run: &VmRun) -> Option<EarlyEnd> {
    if run.end.is_completed() {
        return None;
    }
    let running = unfinished_steps(&run.events);
    let during = match running.as_slice() {
        [] => String::new(),
        [one] => format!(" while `{one}` was running"),
        many => format!(" while {} were running", many.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")),
    };
    let (what, student) = match &run.end {
        RunEnd::Completed => return None,
        RunEnd::TimedOut { seconds } => (format!("the VM ran out of its {seconds} s{during}"), false),
        RunEnd::Panicked { message } => (format!("the guest kernel panicked{during} ({message})"), !running.is_empty()),
        RunEnd::Died { message, by_guest } => {
            (format!("the VM stopped{during} ({message})"), *by_guest && !running.is_empty())
        }
    };
    let harness_error = (!student)
        .then(|| format!("{what}; the checks that needed the rest are MISSING\n  console log: {}", run.log.display()));
    Some(EarlyEnd { reason: what, harness_error })
}

/// Says in every MISSING verdict why it was never observed.
pub fn explain_missing(verdicts: &mut [Verdict], end: &EarlyEnd) {
    for v in verdicts.iter_mut().filter(|v| v.status == Status::Missing) {
        v.detail = format!("{}: {}", v.detail, end.reason);
    }
}

/// Steps whose output was cut at the agent's cap.
pub fn truncated_steps(obs: &Observations) -> Vec<&str> {
    obs.steps.values().filter(|r| r.truncated).map(|r| r.name.as_str()).collect()
}

/// The sentence for a step whose output was cut.
pub fn truncation_note(step: &str) -> String {
    format!("the output of `{step}` went past {} KiB: only its beginning and its end were kept", OUTPUT_CAP / 1024)
}

/// Adds to every verdict that did not pass a note for each step it reads
/// (its `step`, or a step a named check's arguments name) whose output was
/// cut.
pub fn explain_truncated(verdicts: &mut [Verdict], m: &Manifest, obs: &Observations) {
    let cut = truncated_steps(obs);
    if cut.is_empty() {
        return;
    }
    for v in verdicts.iter_mut().filter(|v| !v.passed) {
        let Some(check) = m.checks.iter().find(|c| c.name == v.name) else { continue };
        let reads =
            |step: &str| check.step.as_deref() == Some(step) || check.args.values().any(|a| a.as_str() == Some(step));
        for step in cut.iter().filter(|s| reads(s)) {
            v.detail = format!("{}\n  ({})", v.detail, truncation_note(step));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use workbook_agent::StepResult;

    use super::*;

    fn run(end: RunEnd) -> VmRun {
        let events = vec![
            Event::Hello { kernel: "6.1".into(), uptime_ms: 1, boot_id: String::new() },
            Event::StepStart { name: "a".into() },
            Event::StepEnd(StepResult { name: "a".into(), exit_code: Some(0), ..Default::default() }),
            Event::StepStart { name: "b".into() },
        ];
        VmRun { events, boot_ms: 1, total_ms: 2, log: PathBuf::from("/x/console.log"), end }
    }

    #[test]
    fn a_panic_during_a_step_is_the_steps_doing() {
        let end = early_end(&run(RunEnd::Panicked { message: "Kernel panic - not syncing: OOM".into() })).unwrap();
        assert_eq!(end.harness_error, None);
        assert!(end.reason.contains("panicked while `b` was running"), "{}", end.reason);
    }

    #[test]
    fn a_timeout_or_a_failing_qemu_is_the_harness() {
        let end = early_end(&run(RunEnd::TimedOut { seconds: 180.0 })).unwrap();
        let err = end.harness_error.unwrap();
        assert!(err.contains("180 s while `b` was running") && err.contains("/x/console.log"), "{err}");
        let died = RunEnd::Died { message: "QEMU: killed".into(), by_guest: false };
        assert!(early_end(&run(died)).unwrap().harness_error.is_some());
        let off = RunEnd::Died { message: "powered off".into(), by_guest: true };
        assert!(early_end(&run(off)).unwrap().harness_error.is_none());
        assert_eq!(early_end(&run(RunEnd::Completed)), None);
    }

    #[test]
    fn missing_verdicts_say_why() {
        let end = EarlyEnd { reason: "the VM ran out of its 9 s".into(), harness_error: None };
        let mut v = vec![Verdict {
            name: "c".into(),
            status: Status::Missing,
            passed: false,
            detail: "step `b` never reported a result".into(),
            hint: None,
            points: 1,
        }];
        explain_missing(&mut v, &end);
        assert_eq!(v[0].detail, "step `b` never reported a result: the VM ran out of its 9 s");
    }

    #[test]
    fn failing_verdicts_on_a_truncated_step_say_so() {
        let m = crate::manifest::parse(
            std::path::Path::new("lab.toml"),
            "number = 1\nslug = \"x\"\ntitle = \"t\"\nchapter = 1\nkind = \"ptrace\"\ngoal = \"g\"\nstudent_files = []\n\
             [[steps]]\nname = \"flood\"\nrun = [\"/bin/yes\"]\n\
             [[checks]]\nname = \"says hi\"\nkind = \"output\"\nstep = \"flood\"\ncontains = [\"hi\"]\nhints = [\"a\", \"b\"]\n",
        )
        .unwrap();
        let mut obs = Observations::default();
        obs.steps.insert("flood".into(), StepResult { name: "flood".into(), truncated: true, ..Default::default() });
        let mut v = crate::checks::evaluate(&m, &obs);
        explain_truncated(&mut v, &m, &obs);
        assert!(
            v[0].detail
                .ends_with("(the output of `flood` went past 256 KiB: only its beginning and its end were kept)"),
            "{}",
            v[0].detail
        );
    }
}

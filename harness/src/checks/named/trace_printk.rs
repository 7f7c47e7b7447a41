//! `trace_printk`: a step started a command a number of times and printed
//! the PID of each process that ran it; the trace pipe (a step that copies
//! it to its stdout) must hold exactly one `bpf_trace_printk` line per
//! process, written in that process, with the expected message.
//!
//! ```toml
//! check = "trace_printk"
//! args = { trace = "hello", started = "run-first", message = "Hello World /tmp/{{first}}", count = "{{runs}}" }
//! ```
//!
//! The kernel writes each line's prefix, `sh-312 [000] d..31 12.3: `, and
//! the program only the message after `bpf_trace_printk: `: the PID in the
//! prefix ties each line to the process that was running when the program
//! ran, which the program cannot choose. The `started` step knows the PIDs
//! without asking the student's program (`CMD & echo $!`, or
//! `echo $$; exec CMD`).

use std::collections::HashSet;
use std::sync::LazyLock;

use regex::Regex;

use super::args::{only, step_arg, string_arg};
use super::exec_events::pids;
use super::{NamedCheck, Observations, Outcome, Status};
use crate::checks::{ending, excerpt, step};

pub const CHECK: NamedCheck = NamedCheck { name: "trace_printk", validate, evaluate };

const KEYS: &[&str] = &["trace", "started", "message", "count"];

/// How many faulty processes a failure lists.
const SHOWN: usize = 6;

fn validate(args: &toml::Table, steps: &HashSet<&str>) -> Result<(), String> {
    only(args, KEYS)?;
    step_arg(args, "trace", steps)?;
    step_arg(args, "started", steps)?;
    if string_arg(args, "message")?.trim().is_empty() {
        return Err("message is the text each line must carry after `bpf_trace_printk: `".into());
    }
    count(args)?;
    Ok(())
}

fn count(args: &toml::Table) -> Result<usize, String> {
    match args.get("count") {
        Some(toml::Value::Integer(n)) if *n > 0 => Ok(*n as usize),
        Some(other) => Err(format!("count must be a positive integer, not {other}")),
        None => Err("count is required: how many PIDs the started step prints".into()),
    }
}

/// One line of the trace pipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceLine {
    /// The task's name (comm) and its kernel PID, as the kernel wrote them.
    pub task: String,
    pub pid: u32,
    pub message: String,
}

static LINE: LazyLock<Regex> = LazyLock::new(|| {
    // `<comm>-<pid> [(<tgid>)] [<cpu>] <flags> <timestamp>: bpf_trace_printk: <message>`;
    // a comm may hold dashes and spaces, so the PID is the last `-N` before
    // the CPU number.
    Regex::new(r"^\s*(.*)-(\d+)\s+(?:\(\s*[-\d]+\)\s+)?\[\d+\]\s.*?bpf_trace_printk: (.*)$").expect("valid regex")
});

/// The `bpf_trace_printk` lines of a copy of the trace pipe.
pub fn trace_lines(text: &str) -> Vec<TraceLine> {
    text.lines()
        .filter_map(|l| {
            let c = LINE.captures(l)?;
            Some(TraceLine {
                task: c[1].trim().to_string(),
                pid: c[2].parse().ok()?,
                message: c[3].trim_end().to_string(),
            })
        })
        .collect()
}

/// What is wrong, one line per kind of problem; empty when all is well.
fn compare(lines: &[TraceLine], pids: &[u32], message: &str) -> Vec<String> {
    let mut missing = Vec::new();
    let mut wrong = Vec::new();
    let mut doubled = Vec::new();
    for pid in pids {
        let mine: Vec<&TraceLine> = lines.iter().filter(|l| l.pid == *pid).collect();
        match mine.iter().filter(|l| l.message == message).count() {
            1 => {}
            0 if mine.is_empty() => missing.push(pid.to_string()),
            0 => wrong.push(format!("{}-{pid}: {:?}", mine[0].task, mine[0].message)),
            n => doubled.push(format!("{pid} ({n} lines)")),
        }
    }
    let stray: Vec<String> = lines
        .iter()
        .filter(|l| l.message == message && !pids.contains(&l.pid))
        .map(|l| format!("{}-{}", l.task, l.pid))
        .collect();
    let list = |items: &[String]| {
        let more = if items.len() > SHOWN { ", …" } else { "" };
        format!("{}{more}", items.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", "))
    };
    let mut problems = Vec::new();
    if !missing.is_empty() {
        problems.push(format!(
            "{} of the {} processes wrote no line at all: PIDs {}",
            missing.len(),
            pids.len(),
            list(&missing)
        ));
    }
    if !wrong.is_empty() {
        problems.push(format!(
            "{} processes wrote lines, but none with the message {message:?}: {}",
            wrong.len(),
            list(&wrong)
        ));
    }
    if !doubled.is_empty() {
        problems.push(format!("one exec, more than one line with the message: {}", list(&doubled)));
    }
    if !stray.is_empty() {
        problems.push(format!(
            "{} lines with the message come from processes that did not run it: {}",
            stray.len(),
            list(&stray)
        ));
    }
    problems
}

fn evaluate(args: &toml::Table, obs: &Observations) -> Outcome {
    let bad = |m: String| (Status::Bad, m);
    let trace_name = string_arg(args, "trace").map_err(bad)?;
    let started_name = string_arg(args, "started").map_err(bad)?;
    let message = string_arg(args, "message").map_err(bad)?;
    let want = count(args).map_err(bad)?;

    let started = step(obs, started_name)?;
    if started.exit_code != Some(0) || started.timed_out {
        return Err(bad(format!(
            "`{started_name}` {}: it cannot say which processes to look for\n{}",
            ending(started),
            excerpt(&started.stderr, 4)
        )));
    }
    let pids = pids(&started.stdout);
    if pids.len() != want {
        return Err(bad(format!(
            "`{started_name}` printed {} PIDs, expected {want}\n{}",
            pids.len(),
            excerpt(&started.stdout, 4)
        )));
    }
    let trace = step(obs, trace_name)?;
    let lines = trace_lines(&trace.stdout);
    let problems = compare(&lines, &pids, message);
    if problems.is_empty() {
        return Ok(format!("each of the {want} processes of `{started_name}` wrote one line {message:?}"));
    }
    Err(bad(format!(
        "`{trace_name}`: {}\n  the trace pipe ({} bpf_trace_printk lines) ended with:\n{}",
        problems.join("\n    "),
        lines.len(),
        excerpt(&trace.stdout, 4)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "
              sh-101     [000] d..31    12.345678: bpf_trace_printk: Hello World /tmp/abc
     wb-workload-102     [000] d..31    12.355678: bpf_trace_printk: Hello World /tmp/abc
              sh-103     [000] d..31    12.365678: bpf_trace_printk: Hello World sh
              sh-104     [000] d..31    12.375678: bpf_trace_printk: Hello World /bin/uname
";

    #[test]
    fn lines_give_the_kernels_pid_and_the_message() {
        let lines = trace_lines(TRACE);
        assert_eq!(lines.len(), 4);
        assert_eq!(
            lines[1],
            TraceLine { task: "wb-workload".into(), pid: 102, message: "Hello World /tmp/abc".into() }
        );
        let tgid = trace_lines("  true-7 (      7) [000] d..31 1.0: bpf_trace_printk: hi");
        assert_eq!(tgid[0].pid, 7);
    }

    #[test]
    fn every_process_needs_exactly_one_line() {
        let lines = trace_lines(TRACE);
        assert!(compare(&lines, &[101, 102], "Hello World /tmp/abc").is_empty());
        let p = compare(&lines, &[101, 103, 105], "Hello World /tmp/abc");
        assert!(p[0].contains("1 of the 3") && p[0].contains("105"), "{p:?}");
        assert!(p[1].contains("sh-103") && p[1].contains("Hello World sh"), "{p:?}");
        assert!(p[2].contains("did not run it") && p[2].contains("-102"), "{p:?}");
        let twice = trace_lines(&format!("{TRACE}  sh-101 [000] d..31 13.0: bpf_trace_printk: Hello World /tmp/abc\n"));
        assert!(compare(&twice, &[101, 102], "Hello World /tmp/abc")[0].contains("101 (2 lines)"));
    }

    #[test]
    fn arguments_are_validated() {
        let steps = HashSet::from(["hello", "run"]);
        let args = |t: &str| -> toml::Table { toml::from_str(t).unwrap() };
        let good = "trace = \"hello\"\nstarted = \"run\"\nmessage = \"Hello World /tmp/x\"\ncount = 3";
        assert!(validate(&args(good), &steps).is_ok());
        assert!(validate(&args(&good.replace("3", "0")), &steps).unwrap_err().contains("count"));
        assert!(validate(&args(&good.replace("\"run\"", "\"nope\"")), &steps).is_err());
    }
}

//! `syscall_events`: a step ran a workload under `strace -f -o FILE` and
//! printed FILE; every call of one syscall that strace saw must be reported
//! exactly once by the events step, on a line that shows the caller's PID,
//! the path the call named and what it returned (0, or minus the errno).
//!
//! ```toml
//! check = "syscall_events"
//! args = { events = "snoop", strace = "unlinks", syscall = "unlink", columns = ["pid", "ret", "", "path"] }
//! # optional: returns = "ENOENT"   only the calls that failed with ENOENT
//! #           returns = "0"        only the calls that succeeded
//! #           returns = "error"    only the calls that failed, however
//! #           at_least = 3         strace must show at least this many of
//! #                                those calls (default 1), so that a
//! #                                workload that did nothing cannot pass
//! ```
//!
//! strace is the ground truth: the kernel's own answer to each call, the
//! caller's PID and the path as the caller passed it, seen from outside
//! the student's process. `columns` says where each field sits on an event
//! line, counted in words from the left ("" skips a word); the path is the
//! first quoted argument of the call. A call reported twice (say, once on
//! entry and once on return) is as wrong as one never reported.

use std::collections::{BTreeMap, HashSet};
use std::sync::LazyLock;

use regex::Regex;

use super::args::{only, step_arg, string_arg};
use super::{NamedCheck, Observations, Outcome, Status};
use crate::checks::{ending, excerpt, step};

pub const CHECK: NamedCheck = NamedCheck { name: "syscall_events", validate, evaluate };

const KEYS: &[&str] = &["events", "strace", "syscall", "columns", "returns", "at_least"];

/// How many wrong or missing calls a failure lists.
const SHOWN: usize = 8;

/// Linux's errno numbers (x86-64, asm-generic), for the names strace prints.
const ERRNOS: &[(&str, i64)] = &[
    ("EPERM", 1),
    ("ENOENT", 2),
    ("ESRCH", 3),
    ("EINTR", 4),
    ("EIO", 5),
    ("ENXIO", 6),
    ("E2BIG", 7),
    ("ENOEXEC", 8),
    ("EBADF", 9),
    ("ECHILD", 10),
    ("EAGAIN", 11),
    ("ENOMEM", 12),
    ("EACCES", 13),
    ("EFAULT", 14),
    ("ENOTBLK", 15),
    ("EBUSY", 16),
    ("EEXIST", 17),
    ("EXDEV", 18),
    ("ENODEV", 19),
    ("ENOTDIR", 20),
    ("EISDIR", 21),
    ("EINVAL", 22),
    ("ENFILE", 23),
    ("EMFILE", 24),
    ("ENOTTY", 25),
    ("ETXTBSY", 26),
    ("EFBIG", 27),
    ("ENOSPC", 28),
    ("ESPIPE", 29),
    ("EROFS", 30),
    ("EMLINK", 31),
    ("EPIPE", 32),
    ("EDOM", 33),
    ("ERANGE", 34),
    ("EDEADLK", 35),
    ("ENAMETOOLONG", 36),
    ("ENOLCK", 37),
    ("ENOSYS", 38),
    ("ENOTEMPTY", 39),
    ("ELOOP", 40),
];

fn errno(name: &str) -> Option<i64> {
    ERRNOS.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

/// Which calls a check covers, by what they returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Returns {
    All,
    Success,
    AnyError,
    /// Minus this errno.
    Errno(i64),
}

impl Returns {
    fn covers(self, ret: i64) -> bool {
        match self {
            Returns::All => true,
            Returns::Success => ret >= 0,
            Returns::AnyError => ret < 0,
            Returns::Errno(e) => ret == -e,
        }
    }

    fn describe(self) -> String {
        match self {
            Returns::All => String::new(),
            Returns::Success => " that succeeded".into(),
            Returns::AnyError => " that failed".into(),
            Returns::Errno(e) => {
                let name = ERRNOS.iter().find(|(_, v)| *v == e).map_or("?", |(n, _)| n);
                format!(" that failed with {name} ({})", -e)
            }
        }
    }
}

fn returns(args: &toml::Table) -> Result<Returns, String> {
    if !args.contains_key("returns") {
        return Ok(Returns::All);
    }
    match string_arg(args, "returns")? {
        "0" => Ok(Returns::Success),
        "error" => Ok(Returns::AnyError),
        name => errno(name)
            .map(Returns::Errno)
            .ok_or_else(|| format!("returns = {name:?}: use \"0\", \"error\" or an errno name such as \"ENOENT\"")),
    }
}

fn at_least(args: &toml::Table) -> Result<usize, String> {
    match args.get("at_least") {
        None => Ok(1),
        Some(toml::Value::Integer(n)) if *n > 0 => Ok(*n as usize),
        Some(other) => Err(format!("at_least must be a positive integer, not {other}")),
    }
}

/// Where each field sits on an event line, as a word index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Columns {
    pid: usize,
    ret: usize,
    path: usize,
}

fn columns(args: &toml::Table) -> Result<Columns, String> {
    let v = args.get("columns").ok_or("columns is required: where pid, ret and path are on an event line")?;
    let names = v.as_array().ok_or_else(|| format!("columns must be a list of field names, not {v}"))?;
    let (mut pid, mut ret, mut path) = (None, None, None);
    for (i, name) in names.iter().enumerate() {
        let slot = match name.as_str() {
            Some("pid") => &mut pid,
            Some("ret") => &mut ret,
            Some("path") => &mut path,
            Some("") => continue,
            _ => return Err(format!("columns: {name} is not one of \"pid\", \"ret\", \"path\", \"\"")),
        };
        if slot.replace(i).is_some() {
            return Err(format!("columns: {name} is given twice"));
        }
    }
    match (pid, ret, path) {
        (Some(pid), Some(ret), Some(path)) => Ok(Columns { pid, ret, path }),
        _ => Err("columns must say where pid, ret and path are".into()),
    }
}

fn validate(args: &toml::Table, steps: &HashSet<&str>) -> Result<(), String> {
    only(args, KEYS)?;
    step_arg(args, "events", steps)?;
    step_arg(args, "strace", steps)?;
    if !string_arg(args, "syscall")?.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err("syscall is a syscall's name, as strace prints it".into());
    }
    columns(args)?;
    returns(args)?;
    at_least(args)?;
    Ok(())
}

/// One call as strace printed it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Call {
    pid: u32,
    path: String,
    /// 0 (or more), or minus the errno.
    ret: i64,
}

/// The calls of `syscall` in `strace -f -o` output: `PID name("path", …) =
/// RET [ERRNO (text)]`. Lines of other syscalls, signals and unfinished
/// calls are skipped.
fn calls(text: &str, syscall: &str) -> Vec<Call> {
    static LINE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"^\s*(?:\[pid\s+)?(\d+)\]?\s+(\w+)\((.*)\)\s+=\s+(-?\d+)(?:\s+(E[A-Z0-9]+))?"#).expect("a regex")
    });
    static PATH: LazyLock<Regex> = LazyLock::new(|| Regex::new(r#""((?:[^"\\]|\\.)*)""#).expect("a regex"));
    text.lines()
        .filter_map(|line| {
            let c = LINE.captures(line)?;
            if &c[2] != syscall {
                return None;
            }
            let path = PATH.captures(&c[3])?[1].to_string();
            let ret = match c.get(5) {
                Some(name) => -errno(name.as_str())?,
                None => c[4].parse().ok()?,
            };
            Some(Call { pid: c[1].parse().ok()?, path, ret })
        })
        .collect()
}

/// What is wrong with the report of one call; None when it is reported
/// once, right.
fn fault(call: &Call, times: usize, events: &[Vec<&str>], cols: Columns) -> Option<String> {
    let pid = call.pid.to_string();
    let about: Vec<&Vec<&str>> = events
        .iter()
        .filter(|w| w.get(cols.pid) == Some(&pid.as_str()) && w.get(cols.path) == Some(&call.path.as_str()))
        .collect();
    let right = about.iter().filter(|w| w.get(cols.ret).and_then(|r| r.parse::<i64>().ok()) == Some(call.ret)).count();
    let what = format!("pid {pid} {} (returned {})", call.path, call.ret);
    if about.is_empty() {
        let by_pid: Vec<String> =
            events.iter().filter(|w| w.get(cols.pid) == Some(&pid.as_str())).map(|w| w.join(" ")).collect();
        return Some(match by_pid.first() {
            None => format!("{what}: no event"),
            Some(line) => format!("{what}: no event with that name; pid {pid} has: {line}"),
        });
    }
    if right == times && about.len() == times {
        return None;
    }
    if right == 0 {
        return Some(format!("{what}: reported as {}", about[0].join(" ")));
    }
    Some(format!("{what}: reported {} times", about.len()))
}

fn evaluate(args: &toml::Table, obs: &Observations) -> Outcome {
    let bad = |m: String| (Status::Bad, m);
    let events_name = string_arg(args, "events").map_err(bad)?;
    let strace_name = string_arg(args, "strace").map_err(bad)?;
    let syscall = string_arg(args, "syscall").map_err(bad)?;
    let cols = columns(args).map_err(bad)?;
    let which = returns(args).map_err(bad)?;
    let need = at_least(args).map_err(bad)?;

    let truth = step(obs, strace_name)?;
    let all = calls(&truth.stdout, syscall);
    let covered: Vec<&Call> = all.iter().filter(|c| which.covers(c.ret)).collect();
    let kind = format!("{syscall} calls{}", which.describe());
    if covered.len() < need {
        return Err(bad(format!(
            "`{strace_name}` ({}) shows {} {kind}, expected at least {need}: the workload did not run as planned\n{}",
            ending(truth),
            covered.len(),
            excerpt(if truth.stdout.trim().is_empty() { &truth.stderr } else { &truth.stdout }, 4)
        )));
    }
    // The same call twice in the truth (same process, same path) must be
    // reported twice.
    let mut times: BTreeMap<(u32, &str, i64), usize> = BTreeMap::new();
    for c in &covered {
        *times.entry((c.pid, c.path.as_str(), c.ret)).or_default() += 1;
    }

    let events = step(obs, events_name)?;
    let lines: Vec<Vec<&str>> = events.stdout.lines().map(|l| l.split_whitespace().collect()).collect();
    let mut faults = Vec::new();
    let mut seen = HashSet::new();
    for c in &covered {
        if !seen.insert((c.pid, c.path.as_str(), c.ret)) {
            continue;
        }
        if let Some(f) = fault(c, times[&(c.pid, c.path.as_str(), c.ret)], &lines, cols) {
            faults.push(f);
        }
    }
    if faults.is_empty() {
        return Ok(format!(
            "`{events_name}` reports each of the {} {kind} once, with its PID, path and result",
            covered.len()
        ));
    }
    let mut detail = format!(
        "{} of the {} {kind} are not in `{events_name}` once, with the PID, path and result that strace saw:",
        faults.len(),
        covered.len()
    );
    for f in faults.iter().take(SHOWN) {
        detail.push_str(&format!("\n    {f}"));
    }
    if faults.len() > SHOWN {
        detail.push_str(&format!("\n    … and {} more", faults.len() - SHOWN));
    }
    detail.push_str(&format!(
        "\n  the stdout of `{events_name}` ({} lines) ended with:\n{}",
        lines.len(),
        excerpt(&events.stdout, 4)
    ));
    Err(bad(detail))
}

#[cfg(test)]
mod tests {
    use super::*;
    use workbook_agent::StepResult;

    const TRACE: &str = r#"88    unlink("/tmp/d/a")                = 0
87    --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=88, si_uid=0} ---
89    unlink("/tmp/d/b")                = -1 ENOENT (No such file or directory)
90    unlink("/tmp/d/sub")              = -1 EISDIR (Is a directory)
91    unlinkat(AT_FDCWD, "/tmp/d/c", 0) = 0
"#;

    const EVENTS: &str = "    PID   RET ERRNO    FILE
     88     0 -        /tmp/d/a
     89    -2 ENOENT   /tmp/d/b
     90   -21 EISDIR   /tmp/d/sub
";

    fn judge(events: &str, extra: &str) -> Outcome {
        let mut o = Observations::default();
        for (name, out) in [("unlinks", TRACE), ("snoop", events)] {
            o.steps.insert(name.into(), StepResult { name: name.into(), stdout: out.into(), ..Default::default() });
        }
        let text = format!(
            "events = \"snoop\"\nstrace = \"unlinks\"\nsyscall = \"unlink\"\ncolumns = [\"pid\", \"ret\", \"\", \"path\"]\n{extra}"
        );
        let args: toml::Table = toml::from_str(&text).unwrap();
        validate(&args, &HashSet::from(["snoop", "unlinks"])).unwrap();
        evaluate(&args, &o)
    }

    #[test]
    fn strace_lines_become_calls() {
        let got = calls(TRACE, "unlink");
        let want = [("/tmp/d/a", 88, 0), ("/tmp/d/b", 89, -2), ("/tmp/d/sub", 90, -21)];
        assert_eq!(got.len(), 3, "{got:?}");
        for (c, (path, pid, ret)) in got.iter().zip(want) {
            assert_eq!((c.path.as_str(), c.pid, c.ret), (path, pid, ret));
        }
        assert_eq!(calls(TRACE, "unlinkat")[0].path, "/tmp/d/c");
        assert_eq!(calls("[pid  7] unlink(\"/x\") = -1 EACCES (Permission denied)", "unlink")[0].ret, -13);
    }

    #[test]
    fn every_call_once_with_its_result() {
        assert!(judge(EVENTS, "").is_ok());
        let ok = judge(EVENTS, "returns = \"ENOENT\"").unwrap();
        assert!(ok.contains("each of the 1 unlink calls that failed with ENOENT (-2)"), "{ok}");
        assert!(judge(EVENTS, "returns = \"error\"\nat_least = 2").is_ok());
    }

    #[test]
    fn wrong_missing_and_doubled_reports_fail() {
        // The errno's sign lost.
        let err = judge(&EVENTS.replace("    -2 ENOENT", "     2 ENOENT"), "returns = \"ENOENT\"").unwrap_err().1;
        assert!(err.contains("pid 89 /tmp/d/b (returned -2): reported as 89 2 ENOENT /tmp/d/b"), "{err}");
        // Failures never reported.
        let err = judge(&EVENTS.replace("     90   -21 EISDIR   /tmp/d/sub\n", ""), "").unwrap_err().1;
        assert!(err.contains("pid 90 /tmp/d/sub (returned -21): no event"), "{err}");
        // A report on entry (ret 0) and one on return.
        let twice = format!("{EVENTS}     89     0 -        /tmp/d/b\n");
        let err = judge(&twice, "returns = \"ENOENT\"").unwrap_err().1;
        assert!(err.contains("reported 2 times"), "{err}");
        // A garbled name.
        let err = judge(&EVENTS.replace("/tmp/d/a", "\u{1}\u{2}"), "returns = \"0\"").unwrap_err().1;
        assert!(err.contains("no event with that name; pid 88 has"), "{err}");
    }

    #[test]
    fn a_workload_that_did_nothing_does_not_pass() {
        let err = judge(EVENTS, "returns = \"EACCES\"").unwrap_err().1;
        assert!(err.contains("shows 0 unlink calls that failed with EACCES (-13), expected at least 1"), "{err}");
    }

    #[test]
    fn arguments_are_validated() {
        let steps = HashSet::from(["snoop", "unlinks"]);
        let base = "events = \"snoop\"\nstrace = \"unlinks\"\nsyscall = \"unlink\"\n";
        let v = |t: &str| validate(&toml::from_str(&format!("{base}{t}")).unwrap(), &steps);
        assert!(v("columns = [\"pid\", \"ret\", \"path\"]").is_ok());
        assert!(v("columns = [\"pid\", \"path\"]").unwrap_err().contains("ret"));
        assert!(v("columns = [\"pid\", \"ret\", \"path\"]\nreturns = \"ENOPE\"").unwrap_err().contains("errno"));
        assert!(v("columns = [\"pid\", \"ret\", \"path\"]\nat_least = 0").unwrap_err().contains("positive"));
        assert!(v("columns = [\"pid\", \"ret\", \"path\"]\nretruns = \"0\"").unwrap_err().contains("retruns"));
    }
}

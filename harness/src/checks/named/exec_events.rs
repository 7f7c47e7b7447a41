//! `exec_events`: a step started commands and printed their process IDs,
//! one per line; the events step must show each of them, with its PID and
//! the program's path on one line.
//!
//! ```toml
//! check = "exec_events"
//! args = { events = "hello-buffer", started = "burst", command = "/bin/true", count = 200 }
//! # optional: uid = 1000 (the line must also show that user ID)
//! #           caller = "sh" (the line must also show the caller's name)
//! #           pid_regex = 'tgid=(\d+)' (how the started step prints each
//! #           PID: a regex whose one group is the number; default: a line
//! #           that is only a number)
//! #           columns = ["pid", "uid", "caller", "command"] (the events are a
//! #           table: each of these must be in its own column, counted in
//! #           words from the left; "" skips a column)
//! #           message = "Hello World" (with columns: what follows the last
//! #           column must be exactly these words, on every line)
//! ```
//!
//! The `started` step is a shell that knows the PIDs without asking the
//! student's program: `echo $$; exec CMD` (the PID survives the execve) or
//! `CMD & echo $!`. Lines of its stdout that are not a number are ignored;
//! `count` says how many PIDs it must print, so that a step that printed
//! nothing cannot pass. An event line matches when its whitespace-separated
//! words include the PID and the command's path (or its last component).
//! `wb-workload thread-exec` prints `tgid=X tid=Y` and execs from a thread
//! whose ID is Y: an event must show X, the process ID.

use std::collections::HashSet;

use regex::Regex;

use super::args::{only, step_arg, string_arg};
use super::{NamedCheck, Observations, Outcome, Status};
use crate::checks::{ending, excerpt, step};

pub const CHECK: NamedCheck = NamedCheck { name: "exec_events", validate, evaluate };

const KEYS: &[&str] = &["events", "started", "command", "count", "uid", "caller", "pid_regex", "columns", "message"];

/// How many missing PIDs a failure lists.
const SHOWN: usize = 8;

fn validate(args: &toml::Table, steps: &HashSet<&str>) -> Result<(), String> {
    only(args, KEYS)?;
    step_arg(args, "events", steps)?;
    step_arg(args, "started", steps)?;
    if string_arg(args, "command")?.trim().is_empty() {
        return Err("command must name the program the step starts".into());
    }
    count(args)?;
    uid(args)?;
    if args.contains_key("caller") && string_arg(args, "caller")?.trim().is_empty() {
        return Err("caller must name the program that calls execve".into());
    }
    pid_regex(args)?;
    let cols = columns(args)?;
    if args.contains_key("message") {
        string_arg(args, "message")?;
        if cols == Columns::default() {
            return Err("message needs columns: it is what follows the last one".into());
        }
    }
    Ok(())
}

/// Where each field sits on an event line, as a word index, when the
/// events are a table; `None`: anywhere on the line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Columns {
    pub pid: Option<usize>,
    pub uid: Option<usize>,
    pub caller: Option<usize>,
    pub command: Option<usize>,
}

fn columns(args: &toml::Table) -> Result<Columns, String> {
    let mut cols = Columns::default();
    let Some(v) = args.get("columns") else { return Ok(cols) };
    let names = v.as_array().ok_or_else(|| format!("columns must be a list of field names, not {v}"))?;
    for (i, name) in names.iter().enumerate() {
        let slot = match name.as_str() {
            Some("pid") => &mut cols.pid,
            Some("uid") => &mut cols.uid,
            Some("caller") => &mut cols.caller,
            Some("command") => &mut cols.command,
            Some("") => continue,
            _ => return Err(format!("columns: {name} is not one of \"pid\", \"uid\", \"caller\", \"command\", \"\"")),
        };
        if slot.replace(i).is_some() {
            return Err(format!("columns: {name} is given twice"));
        }
    }
    if cols.pid.is_none() {
        return Err("columns must say where the pid is".into());
    }
    Ok(cols)
}

impl Columns {
    /// The index of the first word after every named column.
    fn end(&self) -> usize {
        [self.pid, self.uid, self.caller, self.command].into_iter().flatten().max().map_or(0, |i| i + 1)
    }
}

/// Whether the word at `column` (or, without one, any word) fits.
fn has(words: &[&str], column: Option<usize>, fits: impl Fn(&str) -> bool) -> bool {
    match column {
        Some(i) => words.get(i).is_some_and(|w| fits(w)),
        None => words.iter().any(|w| fits(w)),
    }
}

fn pid_regex(args: &toml::Table) -> Result<Option<Regex>, String> {
    if !args.contains_key("pid_regex") {
        return Ok(None);
    }
    let text = string_arg(args, "pid_regex")?;
    let re = Regex::new(text).map_err(|e| format!("pid_regex {text:?} is not a valid regex: {e}"))?;
    if re.captures_len() != 2 {
        return Err(format!("pid_regex {text:?} needs exactly one group, around the number"));
    }
    Ok(Some(re))
}

fn count(args: &toml::Table) -> Result<usize, String> {
    match args.get("count") {
        Some(toml::Value::Integer(n)) if *n > 0 => Ok(*n as usize),
        Some(other) => Err(format!("count must be a positive integer, not {other}")),
        None => Err("count is required: how many PIDs the started step prints".into()),
    }
}

fn uid(args: &toml::Table) -> Result<Option<u32>, String> {
    match args.get("uid") {
        None => Ok(None),
        Some(toml::Value::Integer(n)) => u32::try_from(*n).map(Some).map_err(|_| format!("uid = {n} is not a user ID")),
        Some(other) => Err(format!("uid must be an integer, not {other}")),
    }
}

/// The PIDs a step printed, one per line.
pub fn pids(stdout: &str) -> Vec<u32> {
    stdout.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// The PIDs a step printed in the form `re` matches (its group is the number).
fn pids_by(stdout: &str, re: Option<&Regex>) -> Vec<u32> {
    match re {
        None => pids(stdout),
        Some(re) => re.captures_iter(stdout).filter_map(|c| c[1].parse().ok()).collect(),
    }
}

/// What the events show about one started process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// A line with the PID, the command and (if asked) the user ID.
    Yes,
    /// Lines with the PID, none of them right; the first one.
    Wrong(String),
    No,
}

/// What one started process's event must show.
#[derive(Debug, Clone, Copy)]
pub struct Want<'a> {
    pub pid: u32,
    pub command: &'a str,
    pub uid: Option<u32>,
    pub caller: Option<&'a str>,
    pub columns: Columns,
    /// The words after the last column, exactly (a stray byte after a
    /// string that lost its NUL shows here).
    pub message: Option<&'a str>,
}

/// Looks for the process `want` describes in the event lines. A line that
/// holds the PID anywhere but does not fit is `Wrong`, to be shown.
pub fn seen(events: &[Vec<&str>], want: &Want<'_>) -> Seen {
    let pid = want.pid.to_string();
    let command = want.command;
    let base = command.rsplit('/').next().unwrap_or(command);
    let uid = want.uid.map(|u| u.to_string());
    let cols = want.columns;
    let mut wrong = None;
    for words in events.iter().filter(|w| w.contains(&pid.as_str())) {
        let right_pid = has(words, cols.pid, |w| w == pid);
        let names_it = has(words, cols.command, |w| w == command || w == base);
        let right_user = uid.as_ref().is_none_or(|u| has(words, cols.uid, |w| w == u));
        let right_caller = want.caller.is_none_or(|c| has(words, cols.caller, |w| w == c));
        let right_message = want.message.is_none_or(|m| {
            let rest = words.get(cols.end()..).unwrap_or_default();
            rest.iter().copied().eq(m.split_whitespace())
        });
        if right_pid && names_it && right_user && right_caller && right_message {
            return Seen::Yes;
        }
        wrong.get_or_insert_with(|| words.join(" "));
    }
    wrong.map_or(Seen::No, Seen::Wrong)
}

fn evaluate(args: &toml::Table, obs: &Observations) -> Outcome {
    let bad = |m: String| (Status::Bad, m);
    let events_name = string_arg(args, "events").map_err(bad)?;
    let started_name = string_arg(args, "started").map_err(bad)?;
    let command = string_arg(args, "command").map_err(bad)?;
    let want = count(args).map_err(bad)?;
    let uid = uid(args).map_err(bad)?;
    let caller = args.get("caller").and_then(|c| c.as_str());
    let pid_re = pid_regex(args).map_err(bad)?;
    let columns = columns(args).map_err(bad)?;
    let message = args.get("message").and_then(|m| m.as_str());

    let started = step(obs, started_name)?;
    if started.exit_code != Some(0) || started.timed_out {
        return Err(bad(format!(
            "`{started_name}`, which starts {command}, {}: it cannot say which processes to look for\n{}",
            ending(started),
            excerpt(&started.stderr, 4)
        )));
    }
    let pids = pids_by(&started.stdout, pid_re.as_ref());
    if pids.len() != want {
        return Err(bad(format!(
            "`{started_name}` printed {} PIDs, expected {want}\n{}",
            pids.len(),
            excerpt(&started.stdout, 4)
        )));
    }

    let events = step(obs, events_name)?;
    let lines: Vec<Vec<&str>> = events.stdout.lines().map(|l| l.split_whitespace().collect()).collect();
    let mut missing = Vec::new();
    let mut wrong = Vec::new();
    for pid in &pids {
        match seen(&lines, &Want { pid: *pid, command, uid, caller, columns, message }) {
            Seen::Yes => {}
            Seen::Wrong(line) => wrong.push(format!("{pid}: {line}")),
            Seen::No => missing.push(pid.to_string()),
        }
    }
    let mut as_user = uid.map(|u| format!(" as user {u}")).unwrap_or_default();
    if let Some(c) = caller {
        as_user.push_str(&format!(" called by {c}"));
    }
    if let Some(m) = message {
        as_user.push_str(&format!(" with the message {m:?}"));
    }
    if missing.is_empty() && wrong.is_empty() {
        return Ok(format!("`{events_name}` shows all {want} {command} processes{as_user}, each with its PID"));
    }
    let mut detail = format!(
        "`{events_name}` shows {} of the {want} {command} processes{as_user} that `{started_name}` started",
        want - missing.len() - wrong.len()
    );
    if !missing.is_empty() {
        let more = if missing.len() > SHOWN { ", …" } else { "" };
        let shown: Vec<&str> = missing.iter().take(SHOWN).map(String::as_str).collect();
        detail.push_str(&format!(
            "\n    no event line at all for {} of them, PIDs {}{more}",
            missing.len(),
            shown.join(", ")
        ));
    }
    for line in wrong.iter().take(SHOWN) {
        detail.push_str(&format!("\n    a line with the PID, but not {command}{as_user}: {line}"));
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

    fn words(text: &str) -> Vec<Vec<&str>> {
        text.lines().map(|l| l.split_whitespace().collect()).collect()
    }

    const EVENTS: &str = "    PID   UID COMMAND          PATH                     MESSAGE
    301     0 sh               /bin/true                Hello World
    302  1000 sh               /bin/hostname            Hello World
    303     0 sh               /bin/uname               Hello World
";

    #[test]
    fn pids_are_the_numeric_lines() {
        assert_eq!(pids("301\n6.1.0-56-cloud-amd64\n 302 \n"), vec![301, 302]);
        assert!(pids("").is_empty());
    }

    #[test]
    fn a_process_is_seen_by_pid_and_path() {
        let events = words(EVENTS);
        let want =
            |pid, command, uid, caller| Want { pid, command, uid, caller, columns: Columns::default(), message: None };
        assert_eq!(seen(&events, &want(301, "/bin/true", None, None)), Seen::Yes);
        assert_eq!(seen(&words("301 0 true"), &want(301, "/bin/true", None, None)), Seen::Yes);
        assert_eq!(seen(&events, &want(302, "/bin/hostname", Some(1000), Some("sh"))), Seen::Yes);
        assert_eq!(seen(&events, &want(304, "/bin/true", None, None)), Seen::No);
        assert!(matches!(seen(&events, &want(303, "/bin/true", None, None)), Seen::Wrong(l) if l.contains("uname")));
        assert!(matches!(seen(&events, &want(301, "/bin/true", Some(1000), None)), Seen::Wrong(_)));
        assert!(matches!(seen(&events, &want(301, "/bin/true", None, Some("bash"))), Seen::Wrong(_)));
    }

    #[test]
    fn columns_pin_each_field_to_its_place() {
        let cols = columns(&toml::from_str("columns = [\"pid\", \"uid\", \"caller\", \"command\"]").unwrap()).unwrap();
        let want = Want {
            pid: 302,
            command: "/bin/hostname",
            uid: Some(1000),
            caller: Some("sh"),
            columns: cols,
            message: None,
        };
        assert_eq!(seen(&words(EVENTS), &want), Seen::Yes);
        // The same words in other columns: the PID where the user ID goes.
        let swapped = words("1000 302 sh /bin/hostname Hello World");
        assert!(matches!(seen(&swapped, &want), Seen::Wrong(_)));
        assert!(columns(&toml::from_str("columns = [\"uid\"]").unwrap()).unwrap_err().contains("pid"));
        assert!(columns(&toml::from_str("columns = [\"pid\", \"pid\"]").unwrap()).unwrap_err().contains("twice"));
    }

    #[test]
    fn the_message_is_what_follows_the_columns_exactly() {
        let cols = columns(&toml::from_str("columns = [\"pid\", \"uid\", \"caller\", \"command\"]").unwrap()).unwrap();
        let want = Want {
            pid: 302,
            command: "/bin/hostname",
            uid: None,
            caller: None,
            columns: cols,
            message: Some("Hello World"),
        };
        assert_eq!(seen(&words(EVENTS), &want), Seen::Yes);
        // One stray byte after the text, as when the NUL was not copied.
        let stray = words("302 0 sh /bin/hostname Hello Worldq");
        assert!(matches!(seen(&stray, &want), Seen::Wrong(_)));
        assert!(matches!(seen(&words("302 0 sh /bin/hostname Hello World again"), &want), Seen::Wrong(_)));
        assert!(matches!(seen(&words("302 0 sh /bin/hostname"), &want), Seen::Wrong(_)));
        let steps = HashSet::from(["events", "burst"]);
        let base = "events = \"events\"\nstarted = \"burst\"\ncommand = \"/bin/true\"\ncount = 2\nmessage = \"Hi\"";
        let t: toml::Table = toml::from_str(base).unwrap();
        assert!(validate(&t, &steps).unwrap_err().contains("columns"));
        let t: toml::Table = toml::from_str(&format!("{base}\ncolumns = [\"pid\"]")).unwrap();
        assert!(validate(&t, &steps).is_ok());
    }

    #[test]
    fn pids_may_come_in_the_workloads_own_words() {
        let re = Regex::new(r"tgid=(\d+)").unwrap();
        assert_eq!(pids_by("tgid=88 tid=89\n", Some(&re)), vec![88]);
        assert_eq!(pids_by("tgid=88 tid=89\n", None), Vec::<u32>::new());
    }

    #[test]
    fn arguments_are_validated() {
        let steps = HashSet::from(["events", "burst"]);
        let args = |t: &str| -> toml::Table { toml::from_str(t).unwrap() };
        let good = "events = \"events\"\nstarted = \"burst\"\ncommand = \"/bin/true\"\ncount = 200";
        assert!(validate(&args(good), &steps).is_ok());
        assert!(validate(&args(&format!("{good}\nuid = 1000")), &steps).is_ok());
        assert!(validate(&args(&good.replace("200", "0")), &steps).unwrap_err().contains("count"));
        assert!(validate(&args(&good.replace("\"burst\"", "\"nope\"")), &steps).is_err());
        assert!(validate(&args(&format!("{good}\nuids = 1")), &steps).unwrap_err().contains("uids"));
        assert!(validate(&args(&format!("{good}\npid_regex = 'tgid=(\\d+)'")), &steps).is_ok());
        assert!(validate(&args(&format!("{good}\npid_regex = 'tgid=\\d+'")), &steps).unwrap_err().contains("group"));
    }
}

//! `exec_parents`: the workload printed a record of each exec it caused;
//! the events step must show, for each, one line with the new process's
//! PID and program, and the field under test must match the record.
//!
//! ```toml
//! check = "exec_parents"
//! args = { events = "core-snoop", started = ["workload", "traced"], field = "ppid" }
//! ```
//!
//! A record is a line of a `started` step's stdout:
//! `exec pid=C program=NAME parent_tgid=P parent_tid=T parent_comm=X parent_state=S`
//! (lab 09's workload prints them; the parent's state is the `ps` letter
//! the child read from /proc just before its exec). An event line is
//! `PID PPID STATE PSTATE COMM PARENT_COMM`, a state being its number,
//! optionally followed by `/letter`. `field` is one of:
//!
//! - `pid`: exactly one line shows the PID with the program as COMM;
//! - `ppid`: PPID is the parent's tgid (not the forking thread's tid);
//! - `parent_comm`: PARENT_COMM is the parent's comm;
//! - `state`: STATE reads as R (running: the task is in exec) and PSTATE as
//!   the letter the record holds. A number reads as the kernel's
//!   task_state_index() reads it, whatever the kernel's own values.

use std::collections::HashSet;

use super::args::{only, step_arg, string_arg};
use super::{NamedCheck, Observations, Outcome, Status};
use crate::checks::{ending, excerpt, step};

pub const CHECK: NamedCheck = NamedCheck { name: "exec_parents", validate, evaluate };

const KEYS: &[&str] = &["events", "started", "field"];
const FIELDS: &[&str] = &["pid", "ppid", "parent_comm", "state"];
/// How many wrong records a failure lists.
const SHOWN: usize = 6;
/// A comm holds at most 15 bytes and its NUL.
const COMM_MAX: usize = 15;

fn validate(args: &toml::Table, steps: &HashSet<&str>) -> Result<(), String> {
    only(args, KEYS)?;
    step_arg(args, "events", steps)?;
    for s in started(args)? {
        if !steps.contains(s) {
            return Err(format!("started: {s:?} is not a step of this lab"));
        }
    }
    let field = string_arg(args, "field")?;
    if !FIELDS.contains(&field) {
        return Err(format!("field = {field:?} is not one of {}", FIELDS.join(", ")));
    }
    Ok(())
}

fn started(args: &toml::Table) -> Result<Vec<&str>, String> {
    let list = args.get("started").and_then(|v| v.as_array()).ok_or("started must be a list of step names")?;
    let names: Vec<&str> = list.iter().filter_map(|v| v.as_str()).collect();
    if names.is_empty() || names.len() != list.len() {
        return Err("started must be a non-empty list of step names".into());
    }
    Ok(names)
}

/// One exec, as the workload recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub pid: u32,
    pub program: String,
    pub parent_tgid: u32,
    pub parent_tid: u32,
    pub parent_comm: String,
    pub parent_state: char,
}

/// The records in a workload's stdout; other lines are ignored.
pub fn records(stdout: &str) -> Vec<Record> {
    stdout
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("exec ")?;
            let get =
                |key: &str| rest.split_whitespace().find_map(|w| w.strip_prefix(key).and_then(|w| w.strip_prefix('=')));
            Some(Record {
                pid: get("pid")?.parse().ok()?,
                program: get("program")?.to_string(),
                parent_tgid: get("parent_tgid")?.parse().ok()?,
                parent_tid: get("parent_tid")?.parse().ok()?,
                parent_comm: get("parent_comm")?.to_string(),
                parent_state: get("parent_state")?.chars().next()?,
            })
        })
        .collect()
}

/// One event line as the student's program printed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub pid: u32,
    pub ppid: u32,
    pub state: u32,
    pub parent_state: u32,
    pub comm: String,
    pub parent_comm: String,
}

/// `1`, or `1/S`: the number.
fn state_number(word: &str) -> Option<u32> {
    word.split('/').next()?.parse().ok()
}

/// The event lines of the student's output; a header or a line of another
/// shape is not an event.
pub fn events(stdout: &str) -> Vec<Event> {
    stdout
        .lines()
        .filter_map(|line| {
            let w: Vec<&str> = line.split_whitespace().collect();
            // An empty PARENT (a program that never read it) leaves five words.
            if !(5..=6).contains(&w.len()) {
                return None;
            }
            Some(Event {
                pid: w[0].parse().ok()?,
                ppid: w[1].parse().ok()?,
                state: state_number(w[2])?,
                parent_state: state_number(w[3])?,
                comm: w[4].to_string(),
                parent_comm: w.get(5).map_or(String::new(), |c| c.to_string()),
            })
        })
        .collect()
}

/// The letter `ps` shows for a state, as the kernel's task_state_index()
/// picks it: the highest of the reported bits (TASK_REPORT, 0x7f), and I
/// for TASK_IDLE (0x402). The bits are the same from 5.10 to 7.x; the
/// values of the combinations (TASK_TRACED, TASK_KILLABLE) are not.
pub fn state_letter(state: u32) -> char {
    const TASK_IDLE: u32 = 0x402;
    if state == TASK_IDLE {
        return 'I';
    }
    let reported = state & 0x7f;
    let index = (u32::BITS - reported.leading_zeros()) as usize;
    "RSDTtXZP".chars().nth(index).unwrap_or('?')
}

/// A program's name as a comm holds it.
fn comm_of(name: &str) -> &str {
    let mut end = name.len().min(COMM_MAX);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// What is wrong with `field` of the event for `r`, if anything.
fn judge(field: &str, r: &Record, e: &Event) -> Option<String> {
    let who = format!("pid {} ({})", r.pid, r.program);
    match field {
        "ppid" if e.ppid != r.parent_tgid => Some(if e.ppid == r.parent_tid {
            format!(
                "{who}: PPID {} is the tid of the thread that forked; the parent's tgid is {}",
                e.ppid, r.parent_tgid
            )
        } else {
            format!("{who}: PPID {}, expected {} (the parent's tgid)", e.ppid, r.parent_tgid)
        }),
        "parent_comm" if e.parent_comm != comm_of(&r.parent_comm) => {
            Some(format!("{who}: PARENT {:?}, expected {:?}", e.parent_comm, r.parent_comm))
        }
        "state" => {
            let (own, parent) = (state_letter(e.state), state_letter(e.parent_state));
            if own != 'R' {
                Some(format!("{who}: STATE {} reads as {own}; a task in exec is running (0, R)", e.state))
            } else if parent != r.parent_state {
                Some(format!(
                    "{who}: PSTATE {} reads as {parent}; the parent was {} when the child looked",
                    e.parent_state, r.parent_state
                ))
            } else {
                None
            }
        }
        _ => None,
    }
}

fn evaluate(args: &toml::Table, obs: &Observations) -> Outcome {
    let field = string_arg(args, "field").map_err(|e| (Status::Bad, e))?;
    let events_step = step(obs, string_arg(args, "events").map_err(|e| (Status::Bad, e))?)?;
    let mut all = Vec::new();
    for name in started(args).map_err(|e| (Status::Bad, e))? {
        let s = step(obs, name)?;
        let found = records(&s.stdout);
        if s.exit_code != Some(0) || s.timed_out || found.is_empty() {
            return Err((
                Status::Missing,
                format!(
                    "the workload step `{name}` {} with {} records; its stderr:\n{}",
                    ending(s),
                    found.len(),
                    excerpt(&s.stderr, 5)
                ),
            ));
        }
        // A child that never saw its parent asleep or stopped cannot say
        // what the parent's state was: the workload failed, not the student.
        if field == "state"
            && let Some(r) = found.iter().find(|r| r.parent_state == '?')
        {
            return Err((
                Status::Missing,
                format!("the workload's child {} never saw its parent in the expected state", r.pid),
            ));
        }
        all.extend(found);
    }
    let seen = events(&events_step.stdout);
    let mut wrong = Vec::new();
    for r in &all {
        let matching: Vec<&Event> = seen.iter().filter(|e| e.pid == r.pid && e.comm == comm_of(&r.program)).collect();
        match matching.as_slice() {
            [e] => wrong.extend(judge(field, r, e)),
            [] => wrong.push(format!("pid {} ({}): no event line with this PID and program", r.pid, r.program)),
            many => wrong.push(format!("pid {} ({}): {} event lines, expected one", r.pid, r.program, many.len())),
        }
    }
    if wrong.is_empty() {
        return Ok(format!("all {} execs of the workload, as it recorded them", all.len()));
    }
    let count = wrong.len();
    let mut detail = format!("{count} of {} execs are not shown as the workload recorded them:", all.len());
    for w in wrong.iter().take(SHOWN) {
        detail.push_str(&format!("\n  {w}"));
    }
    if count > SHOWN {
        detail.push_str(&format!("\n  … and {} more", count - SHOWN));
    }
    detail.push_str(&format!(
        "\n  the output of `{}` ({} event lines) ended with:\n{}",
        events_step.name,
        seen.len(),
        excerpt(&events_step.stdout, 6)
    ));
    Err((Status::Bad, detail))
}

#[cfg(test)]
mod tests {
    use super::*;
    use workbook_agent::StepResult;

    const WORKLOAD: &str = "\
thread-exec tgid=300 tid=301
exec pid=200 program=waiter parent_tgid=100 parent_tid=100 parent_comm=papa parent_state=S
exec pid=201 program=threaded parent_tgid=100 parent_tid=102 parent_comm=papa parent_state=S
exec pid=203 program=stopperprogramname parent_tgid=100 parent_tid=100 parent_comm=papa parent_state=T
";
    const RIGHT: &str = "\
    PID    PPID STATE PSTATE COMM             PARENT
    200     100   0/R    1/S waiter           papa
    201     100   0/R    1/S threaded         papa
    203     100   0/R  260/T stopperprogramn  papa
    200      50   0/R    1/S sh               init
";

    fn obs(events: &str, workload: &str) -> Observations {
        let mut o = Observations::default();
        for (name, stdout) in [("snoop", events), ("workload", workload)] {
            let r = StepResult { name: name.into(), stdout: stdout.into(), exit_code: Some(0), ..Default::default() };
            o.steps.insert(name.into(), r);
        }
        o
    }

    fn args(field: &str) -> toml::Table {
        toml::from_str(&format!("events = \"snoop\"\nstarted = [\"workload\"]\nfield = \"{field}\"")).unwrap()
    }

    fn check(field: &str, events: &str) -> Outcome {
        evaluate(&args(field), &obs(events, WORKLOAD))
    }

    #[test]
    fn the_right_events_pass_every_field() {
        for field in FIELDS {
            assert!(check(field, RIGHT).is_ok(), "{field}: {:?}", check(field, RIGHT));
        }
    }

    #[test]
    fn the_forking_threads_tid_is_not_the_parents_process_id() {
        let events = RIGHT.replace("    201     100", "    201     102");
        let (status, detail) = check("ppid", &events).unwrap_err();
        assert_eq!(status, Status::Bad);
        assert!(detail.contains("PPID 102 is the tid of the thread that forked"), "{detail}");
        assert!(check("parent_comm", &events).is_ok(), "other fields are other checks");
    }

    #[test]
    fn the_childs_comm_is_not_the_parents() {
        let events = RIGHT.replace("waiter           papa", "waiter           waiter");
        assert!(check("parent_comm", &events).unwrap_err().1.contains("PARENT \"waiter\", expected \"papa\""));
    }

    #[test]
    fn a_constant_state_cannot_match_both_a_sleeping_and_a_stopped_parent() {
        let asleep = RIGHT.replace("260/T", "  1/S");
        assert!(check("state", &asleep).unwrap_err().1.contains("PSTATE 1 reads as S; the parent was T"));
        let running = RIGHT.replace("1/S", "0/R");
        assert!(check("state", &running).is_err());
        let own = RIGHT.replace("  0/R    1/S waiter", "  1/S    1/S waiter");
        assert!(check("state", &own).unwrap_err().1.contains("a task in exec is running"));
        // The number decides, not the letter the student's program printed.
        assert!(check("state", &RIGHT.replace("260/T", "260/S")).is_ok());
    }

    #[test]
    fn every_exec_needs_exactly_one_line() {
        let lost = RIGHT.replace("    201     100   0/R    1/S threaded         papa\n", "");
        assert!(check("pid", &lost).unwrap_err().1.contains("pid 201 (threaded): no event line"));
        let twice = format!("{RIGHT}    203     100   0/R  260/T stopperprogramn  papa\n");
        assert!(check("pid", &twice).unwrap_err().1.contains("2 event lines, expected one"));
    }

    #[test]
    fn a_line_without_the_parents_name_is_still_an_event() {
        let unfinished = "    200       0   0/R    0/R waiter           \n";
        let seen = events(unfinished);
        assert_eq!(seen.len(), 1);
        assert_eq!((seen[0].pid, seen[0].parent_comm.as_str()), (200, ""));
        assert!(events("    PID    PPID STATE PSTATE COMM             PARENT\n").is_empty(), "the header is no event");
    }

    #[test]
    fn a_workload_that_failed_is_missing_not_bad() {
        let mut o = obs(RIGHT, WORKLOAD);
        o.steps.get_mut("workload").unwrap().exit_code = Some(2);
        assert_eq!(evaluate(&args("pid"), &o).unwrap_err().0, Status::Missing);
        let blind = WORKLOAD.replace("parent_state=T", "parent_state=?");
        assert_eq!(evaluate(&args("state"), &obs(RIGHT, &blind)).unwrap_err().0, Status::Missing);
    }

    #[test]
    fn states_read_as_ps_shows_them() {
        // 260 is TASK_STOPPED; 264 and 8 are TASK_TRACED before and after
        // 5.19; 0x102 is TASK_KILLABLE; 0x402 TASK_IDLE.
        let letters: String = [0, 1, 2, 260, 264, 8, 0x102, 0x402].map(state_letter).iter().collect();
        assert_eq!(letters, "RSDTttDI");
    }

    #[test]
    fn arguments_are_validated() {
        let steps: HashSet<&str> = ["snoop", "workload"].into();
        assert!(validate(&args("ppid"), &steps).is_ok());
        assert!(validate(&args("tid"), &steps).unwrap_err().contains("not one of"));
        let bad: toml::Table = toml::from_str("events = \"snoop\"\nstarted = [\"nope\"]\nfield = \"pid\"").unwrap();
        assert!(validate(&bad, &steps).unwrap_err().contains("\"nope\" is not a step"));
    }
}

//! `lsm_denials`: a policy that refuses one file to every user but root,
//! judged by what the kernel answered the grader's probe, and the refusals
//! a BPF LSM program reported, held against the probe's own record.
//!
//! ```toml
//! check = "lsm_denials"
//! args = { probes = ["probe-root", "probe-user"], events = "vault",
//!          protected = "/tmp/dir/name", judge = "refused", at_least = 3 }
//! # judge: "refused"  every open of `protected` by a user other than root
//! #                   failed with EPERM (and there were at least `at_least`)
//! #        "others"   every open of another file by such a user succeeded
//! #        "root"     every open by root succeeded
//! #        "reports"  `events` printed exactly one line per refused open,
//! #                   with the probe's PID, its user and the file's name
//! #                   (and at least `at_least` opens were refused)
//! ```
//!
//! A probe prints a line per open, kept by the grader's code from what
//! open(2) returned: `open pid=P tid=T uid=U gid=G path=PATH errno=N`
//! (errno 0: it opened). The probe opens each file from a thread of its
//! own, so a report that names the thread instead of the process shows.
//! An event line reads `DENIED pid=P uid=U file=NAME`.

use std::collections::{BTreeMap, HashSet};

use super::args::{only, step_arg, string_arg};
use super::{NamedCheck, Observations, Outcome, Status};
use crate::checks::{ending, excerpt, step};

pub const CHECK: NamedCheck = NamedCheck { name: "lsm_denials", validate, evaluate };

const KEYS: &[&str] = &["probes", "events", "protected", "judge", "at_least"];
const JUDGES: &[&str] = &["refused", "others", "root", "reports"];

const EPERM: i32 = 1;
const EACCES: i32 = 13;

/// How many wrong opens a failure lists.
const SHOWN: usize = 6;

fn probes(args: &toml::Table) -> Result<Vec<&str>, String> {
    let v = args.get("probes").ok_or("probes is required: the steps that ran the probe")?;
    let list = v.as_array().ok_or_else(|| format!("probes must be a list of step names, not {v}"))?;
    let names: Option<Vec<&str>> = list.iter().map(|s| s.as_str()).collect();
    match names {
        Some(n) if !n.is_empty() => Ok(n),
        _ => Err(format!("probes must be a non-empty list of step names, not {v}")),
    }
}

fn at_least(args: &toml::Table) -> Result<usize, String> {
    match args.get("at_least") {
        None => Ok(1),
        Some(toml::Value::Integer(n)) if *n > 0 => Ok(*n as usize),
        Some(other) => Err(format!("at_least must be a positive integer, not {other}")),
    }
}

fn validate(args: &toml::Table, steps: &HashSet<&str>) -> Result<(), String> {
    only(args, KEYS)?;
    for p in probes(args)? {
        if !steps.contains(p) {
            return Err(format!("probes: {p:?} is not a step of this lab"));
        }
    }
    step_arg(args, "events", steps)?;
    if !string_arg(args, "protected")?.starts_with('/') {
        return Err("protected must be an absolute path".into());
    }
    let judge = string_arg(args, "judge")?;
    if !JUDGES.contains(&judge) {
        return Err(format!("judge = {judge:?} is not one of {}", JUDGES.join(", ")));
    }
    at_least(args)?;
    Ok(())
}

/// `key=value` words of a line that starts with `tag`.
fn fields<'a>(line: &'a str, tag: &str) -> Option<BTreeMap<&'a str, &'a str>> {
    let mut words = line.split_whitespace();
    if words.next() != Some(tag) {
        return None;
    }
    words.map(|w| w.split_once('=')).collect()
}

/// One open the probe made, and what the kernel answered.
#[derive(Debug, Clone, PartialEq)]
struct Open {
    pid: u32,
    uid: u32,
    path: String,
    errno: i32,
    line: String,
}

fn opens(text: &str) -> Vec<Open> {
    text.lines()
        .filter_map(|line| {
            let f = fields(line, "open")?;
            Some(Open {
                pid: f.get("pid")?.parse().ok()?,
                uid: f.get("uid")?.parse().ok()?,
                path: f.get("path")?.to_string(),
                errno: f.get("errno")?.parse().ok()?,
                line: line.trim().to_string(),
            })
        })
        .collect()
}

/// A reported refusal: process, user, file name.
type Report = (u32, u32, String);

fn reports(text: &str) -> Vec<Report> {
    text.lines()
        .filter_map(|line| {
            let f = fields(line, "DENIED")?;
            Some((f.get("pid")?.parse().ok()?, f.get("uid")?.parse().ok()?, f.get("file")?.to_string()))
        })
        .collect()
}

fn answer(errno: i32) -> String {
    match errno {
        0 => "it opened".into(),
        EPERM => "EPERM (1)".into(),
        EACCES => "EACCES (13)".into(),
        n => format!("errno {n}"),
    }
}

fn listing(head: String, bad: &[&Open], say: impl Fn(&Open) -> String) -> String {
    let mut detail = head;
    for o in bad.iter().take(SHOWN) {
        detail.push_str(&format!("\n    {}: {}", o.line, say(o)));
    }
    if bad.len() > SHOWN {
        detail.push_str(&format!("\n    … and {} more", bad.len() - SHOWN));
    }
    detail
}

fn evaluate(args: &toml::Table, obs: &Observations) -> Outcome {
    let bad = |m: String| (Status::Bad, m);
    let names = probes(args).map_err(bad)?;
    let events_name = args.get("events").and_then(|v| v.as_str()).unwrap_or_default();
    let protected = args.get("protected").and_then(|v| v.as_str()).unwrap_or_default();
    let judge = args.get("judge").and_then(|v| v.as_str()).unwrap_or_default();
    let need = at_least(args).map_err(bad)?;

    let mut all = Vec::new();
    for name in &names {
        let s = step(obs, name)?;
        let found = opens(&s.stdout);
        if found.is_empty() {
            return Err(bad(format!(
                "the probe `{name}` ({}) recorded no open at all: it could not run (a policy that refuses \
                 more than one file can keep a program from starting)\n{}",
                ending(s),
                excerpt(if s.stdout.trim().is_empty() { &s.stderr } else { &s.stdout }, 4)
            )));
        }
        all.extend(found);
    }
    let users: Vec<&Open> = all.iter().filter(|o| o.uid != 0).collect();
    let of_protected: Vec<&Open> = users.iter().copied().filter(|o| o.path == protected).collect();
    match judge {
        "refused" => {
            if of_protected.len() < need {
                return Err(bad(format!(
                    "the probe opened {protected} {} times as a user other than root, expected at least {need}",
                    of_protected.len()
                )));
            }
            let wrong: Vec<&Open> = of_protected.iter().copied().filter(|o| o.errno != EPERM).collect();
            if wrong.is_empty() {
                let mut uids: Vec<u32> = of_protected.iter().map(|o| o.uid).collect();
                uids.sort_unstable();
                uids.dedup();
                let uids: Vec<String> = uids.iter().map(u32::to_string).collect();
                return Ok(format!(
                    "each of the {} opens of {protected} by user {} failed with EPERM",
                    of_protected.len(),
                    uids.join(", ")
                ));
            }
            Err(bad(listing(
                format!(
                    "{} of the {} opens of {protected} by a user other than root did not fail with EPERM:",
                    wrong.len(),
                    of_protected.len()
                ),
                &wrong,
                |o| format!("the kernel answered {}", answer(o.errno)),
            )))
        }
        "others" => {
            let others: Vec<&Open> = users.iter().copied().filter(|o| o.path != protected).collect();
            if others.is_empty() {
                return Err(bad("the probe opened no file but the protected one as a user other than root".into()));
            }
            let wrong: Vec<&Open> = others.iter().copied().filter(|o| o.errno != 0).collect();
            if wrong.is_empty() {
                return Ok(format!(
                    "every one of the {} opens of other files by a user other than root succeeded",
                    others.len()
                ));
            }
            Err(bad(listing(
                format!("{} of the {} opens of files other than {protected} failed:", wrong.len(), others.len()),
                &wrong,
                |o| format!("refused with {}", answer(o.errno)),
            )))
        }
        "root" => {
            let root: Vec<&Open> = all.iter().filter(|o| o.uid == 0).collect();
            if root.is_empty() {
                return Err(bad("no probe ran as root".into()));
            }
            let wrong: Vec<&Open> = root.iter().copied().filter(|o| o.errno != 0).collect();
            if wrong.is_empty() {
                return Ok(format!("every one of root's {} opens succeeded, {protected} included", root.len()));
            }
            Err(bad(listing(format!("{} of root's {} opens failed:", wrong.len(), root.len()), &wrong, |o| {
                format!("refused with {}", answer(o.errno))
            })))
        }
        _ => judge_reports(obs, events_name, &all, need),
    }
}

/// Every refused open once in the events, with the probe's PID and user
/// and the file's name; no event for anything else.
fn judge_reports(obs: &Observations, events_name: &str, all: &[Open], need: usize) -> Outcome {
    let bad = |m: String| (Status::Bad, m);
    let refused: Vec<&Open> = all.iter().filter(|o| o.errno != 0).collect();
    if refused.len() < need {
        return Err(bad(format!(
            "only {} of the probe's opens were refused, expected at least {need}: there is nothing to report yet",
            refused.len()
        )));
    }
    let events_step = step(obs, events_name)?;
    let events = reports(&events_step.stdout);
    let mut expected: BTreeMap<Report, usize> = BTreeMap::new();
    for o in &refused {
        let name = o.path.rsplit('/').next().unwrap_or_default().to_string();
        *expected.entry((o.pid, o.uid, name)).or_default() += 1;
    }
    let mut got: BTreeMap<Report, usize> = BTreeMap::new();
    for e in &events {
        *got.entry(e.clone()).or_default() += 1;
    }
    if got == expected {
        return Ok(format!(
            "`{events_name}` reports each of the {} refused opens once, with its process, user and file",
            refused.len()
        ));
    }
    let tids: HashSet<u32> = all
        .iter()
        .filter_map(|o| o.line.split_whitespace().find_map(|w| w.strip_prefix("tid=")?.parse().ok()))
        .collect();
    let mut detail = format!("the {} refused opens are not each reported once by `{events_name}`:", refused.len());
    for ((pid, uid, name), n) in &expected {
        let have = got.get(&(*pid, *uid, name.clone())).copied().unwrap_or(0);
        if have != *n {
            detail.push_str(&format!(
                "\n    process {pid}, user {uid}, file {name}: refused {n} times, reported {have} times"
            ));
        }
    }
    for ((pid, uid, name), n) in &got {
        if !expected.contains_key(&(*pid, *uid, name.clone())) {
            let why = if tids.contains(pid) {
                " (that is a thread ID of the probe, not its process ID)"
            } else if expected.keys().any(|(p, u, f)| p == pid && f == name && u != uid) {
                " (the wrong user ID)"
            } else {
                ""
            };
            detail.push_str(&format!(
                "\n    reported {n} times: process {pid}, user {uid}, file {name}{why}: no such refusal"
            ));
        }
    }
    detail.push_str(&format!(
        "\n  the stdout of `{events_name}` ({} reports) ended with:\n{}",
        events.len(),
        excerpt(&events_step.stdout, 4)
    ));
    Err(bad(detail))
}

#[cfg(test)]
mod tests {
    use super::*;
    use workbook_agent::StepResult;

    const PROTECTED: &str = "/tmp/qwerty/secretxx";

    fn probe_text(pid: u32, uid: u32, gid: u32, errnos: [i32; 3]) -> String {
        let paths = [PROTECTED, "/tmp/qwerty/otherfil", "/tmp/secretxx"];
        let mut text = String::new();
        for (i, (path, errno)) in paths.iter().zip(errnos).enumerate() {
            for t in 0..2 {
                let tid = pid + 1 + (i * 2 + t) as u32;
                text.push_str(&format!("open pid={pid} tid={tid} uid={uid} gid={gid} path={path} errno={errno}\n"));
            }
        }
        text
    }

    fn obs(root: [i32; 3], user: [i32; 3], events: &str) -> Observations {
        let mut obs = Observations::default();
        let mut add = |name: &str, stdout: String| {
            obs.steps.insert(
                name.into(),
                StepResult { name: name.into(), exit_code: Some(0), stdout, ..Default::default() },
            );
        };
        add("probe-root", probe_text(200, 0, 4242, root));
        add("probe-user", probe_text(300, 1234, 4242, user));
        add("vault", events.into());
        obs
    }

    fn args(judge: &str) -> toml::Table {
        toml::from_str(&format!(
            "probes = [\"probe-root\", \"probe-user\"]\nevents = \"vault\"\nprotected = \"{PROTECTED}\"\n\
             judge = \"{judge}\"\nat_least = 2"
        ))
        .unwrap()
    }

    const GOOD_EVENTS: &str = "DENIED pid=300 uid=1234 file=secretxx\nDENIED pid=300 uid=1234 file=secretxx\n";

    #[test]
    fn the_right_policy_passes_every_judge() {
        let o = obs([0, 0, 0], [EPERM, 0, 0], GOOD_EVENTS);
        for judge in JUDGES {
            let v = evaluate(&args(judge), &o);
            assert!(v.is_ok(), "{judge}: {v:?}");
        }
    }

    #[test]
    fn a_starter_that_allows_everything_fails_refused_and_reports() {
        let o = obs([0, 0, 0], [0, 0, 0], "");
        assert!(evaluate(&args("refused"), &o).unwrap_err().1.contains("the kernel answered it opened"));
        assert!(evaluate(&args("reports"), &o).unwrap_err().1.contains("only 0 of the probe's opens were refused"));
        assert!(evaluate(&args("others"), &o).is_ok());
        assert!(evaluate(&args("root"), &o).is_ok());
    }

    #[test]
    fn eacces_is_not_eperm() {
        let o = obs([0, 0, 0], [EACCES, 0, 0], GOOD_EVENTS);
        assert!(evaluate(&args("refused"), &o).unwrap_err().1.contains("EACCES (13)"));
    }

    #[test]
    fn refusing_root_or_other_files_fails() {
        let o = obs([EPERM, 0, 0], [EPERM, 0, 0], GOOD_EVENTS);
        assert!(evaluate(&args("root"), &o).unwrap_err().1.contains("2 of root's 6 opens failed"));
        let o = obs([0, 0, 0], [EPERM, EPERM, 0], GOOD_EVENTS);
        assert!(evaluate(&args("others"), &o).unwrap_err().1.contains("2 of the 4 opens"));
    }

    #[test]
    fn reports_must_name_the_process_once_per_refusal() {
        let o = obs(
            [0, 0, 0],
            [EPERM, 0, 0],
            "DENIED pid=301 uid=1234 file=secretxx\nDENIED pid=302 uid=1234 file=secretxx\n",
        );
        let why = evaluate(&args("reports"), &o).unwrap_err().1;
        assert!(why.contains("refused 2 times, reported 0 times"), "{why}");
        assert!(why.contains("thread ID of the probe"), "{why}");
        let o = obs([0, 0, 0], [EPERM, 0, 0], "DENIED pid=300 uid=1234 file=secretxx\n");
        assert!(evaluate(&args("reports"), &o).unwrap_err().1.contains("reported 1 times"));
        let o = obs(
            [0, 0, 0],
            [EPERM, 0, 0],
            "DENIED pid=300 uid=4242 file=secretxx\nDENIED pid=300 uid=4242 file=secretxx\n",
        );
        assert!(evaluate(&args("reports"), &o).unwrap_err().1.contains("the wrong user ID"));
        let extra = format!("{GOOD_EVENTS}DENIED pid=200 uid=0 file=secretxx\n");
        assert!(evaluate(&args("reports"), &obs([0, 0, 0], [EPERM, 0, 0], &extra)).is_err());
    }

    #[test]
    fn a_probe_that_could_not_run_is_named() {
        let mut o = obs([0, 0, 0], [EPERM, 0, 0], GOOD_EVENTS);
        let s = o.steps.get_mut("probe-user").unwrap();
        s.stdout.clear();
        s.exit_code = None;
        s.spawn_error = None;
        let why = evaluate(&args("refused"), &o).unwrap_err().1;
        assert!(why.contains("`probe-user`"), "{why}");
    }

    #[test]
    fn arguments_are_validated() {
        let steps: HashSet<&str> = ["probe-root", "probe-user", "vault"].into();
        assert!(validate(&args("refused"), &steps).is_ok());
        assert!(validate(&args("everything"), &steps).unwrap_err().contains("judge"));
        let mut a = args("root");
        a.insert("probes".into(), toml::Value::Array(vec!["nope".into()]));
        assert!(validate(&a, &steps).unwrap_err().contains("nope"));
        let mut a = args("root");
        a.insert("protected".into(), "relative".into());
        assert!(validate(&a, &steps).is_err());
    }
}

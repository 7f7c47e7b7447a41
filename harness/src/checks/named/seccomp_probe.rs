//! `seccomp_probe`: a probe of the grader's, run under the student's
//! seccomp filter, tried each syscall of a catalogue through the 64-bit
//! door (`syscall`) and the 32-bit door (`int 0x80`) and recorded what the
//! kernel answered; the kernel's answers must be the filter's policy.
//!
//! ```toml
//! check = "seccomp_probe"
//! args = { record = "probe", part = "denied", calls = 12, denied = 3 }
//! # part: "denied"   every x86_64 call the deny list names failed with EPERM
//! #       "allowed"  every other x86_64 call ran
//! #       "foreign"  every i386 call was killed by SIGSYS
//! #       "all"      the three above at once
//! #       "status"   the probe's /proc/self/status said `Seccomp: 2`
//! # pid_of = "probe"  (optional) the status line is of the process the
//! #                   agent started for this step (after its exec)
//! ```
//!
//! `filter-dump` writes the same lines with `filter` for `probe`: the
//! answers of the filter the kernel holds on the probe, read with
//! `PTRACE_SECCOMP_GET_FILTER` and run on each call by the grader.
//!
//! The record is a line per call, `probe call abi=x86_64 name=mkdir nr=83
//! expect=deny got=errno:1`, and one `probe status seccomp=2 filters=1
//! no_new_privs=1` line. `got` is the kernel's answer as the probe's
//! parent saw it: `ok`, `errno:N` (the call returned -N), `signal:N` (the
//! child that made the call died of signal N). The student's code runs in
//! the same process before it execs the probe and could print lines that
//! look like these: every call must be in the record exactly once, the
//! record must hold `calls` calls per door and `denied` denied ones, so
//! that a forged record next to the real one shows as a duplicate.

use std::collections::{BTreeMap, HashSet};

use super::args::{only, step_arg, string_arg};
use super::{NamedCheck, Observations, Outcome, Status};
use crate::checks::{ending, step};

pub const CHECK: NamedCheck = NamedCheck { name: "seccomp_probe", validate, evaluate };

const KEYS: &[&str] = &["record", "part", "calls", "denied", "pid_of"];
const PARTS: &[&str] = &["denied", "allowed", "foreign", "all", "status"];
const EPERM: &str = "errno:1";
const SIGSYS: &str = "signal:31";

/// One `probe call` line.
#[derive(Debug, Clone, PartialEq)]
struct Call {
    abi: String,
    name: String,
    nr: String,
    expect: String,
    got: String,
}

/// The whole record: calls by (abi, name), and the status line's fields.
#[derive(Debug, Default)]
struct Record {
    calls: BTreeMap<(String, String), Call>,
    status: Option<BTreeMap<String, String>>,
}

fn fields(rest: &str) -> BTreeMap<String, String> {
    rest.split(" # ")
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn parse(stdout: &str) -> Result<Record, String> {
    let mut r = Record::default();
    for line in stdout.lines() {
        let line = line.strip_prefix("probe ").or_else(|| line.strip_prefix("filter ")).unwrap_or_default();
        if let Some(rest) = line.strip_prefix("call ") {
            let f = fields(rest);
            let get = |k: &str| f.get(k).cloned().ok_or_else(|| format!("a record line has no {k}=: {line:?}"));
            let call =
                Call { abi: get("abi")?, name: get("name")?, nr: get("nr")?, expect: get("expect")?, got: get("got")? };
            let key = (call.abi.clone(), call.name.clone());
            if r.calls.insert(key, call.clone()).is_some() {
                return Err(format!(
                    "the record shows the {} call of {} twice: lines that look like the probe's came from somewhere else",
                    call.abi, call.name
                ));
            }
        } else if let Some(rest) = line.strip_prefix("status ") {
            if r.status.replace(fields(rest)).is_some() {
                return Err("the record has two status lines: one did not come from the probe".into());
            }
        }
    }
    Ok(r)
}

fn count(args: &toml::Table, key: &str) -> Result<usize, String> {
    match args.get(key) {
        Some(toml::Value::Integer(n)) if *n > 0 => Ok(*n as usize),
        Some(other) => Err(format!("{key} must be a positive integer, not {other}")),
        None => Err(format!("{key} is required")),
    }
}

fn validate(args: &toml::Table, steps: &HashSet<&str>) -> Result<(), String> {
    only(args, KEYS)?;
    step_arg(args, "record", steps)?;
    let part = string_arg(args, "part")?;
    if !PARTS.contains(&part) {
        return Err(format!("part = {part:?} is not one of {}", PARTS.join(", ")));
    }
    count(args, "calls")?;
    count(args, "denied")?;
    if args.contains_key("pid_of") {
        step_arg(args, "pid_of", steps)?;
    }
    Ok(())
}

/// "mkdir (83): ok" for each call whose answer is not `want`.
fn wrong<'a>(calls: impl Iterator<Item = &'a Call>, want: &str) -> Vec<String> {
    calls.filter(|c| c.got != want).map(|c| format!("{} ({}): {}", c.name, c.nr, say(&c.got))).collect()
}

fn say(got: &str) -> String {
    match got {
        "ok" => "it ran".into(),
        EPERM => "EPERM".into(),
        SIGSYS => "killed by SIGSYS".into(),
        other => other.replace(':', " "),
    }
}

fn evaluate(args: &toml::Table, obs: &Observations) -> Outcome {
    let bad = |e: String| (Status::Bad, e);
    let s = step(obs, string_arg(args, "record").map_err(bad)?)?;
    let part = string_arg(args, "part").map_err(bad)?;
    let calls = count(args, "calls").map_err(bad)?;
    let denied = count(args, "denied").map_err(bad)?;
    let record = parse(&s.stdout).map_err(bad)?;
    if record.calls.is_empty() && record.status.is_none() {
        return Err((Status::Missing, format!("`{}` {} and the probe recorded nothing", s.name, ending(s))));
    }
    let door = |abi: &'static str| record.calls.values().filter(move |c| c.abi == abi);
    for abi in ["x86_64", "i386"] {
        if door(abi).count() != calls {
            return Err(bad(format!("the record has {} {abi} calls, not {calls}", door(abi).count())));
        }
    }
    let deny = || door("x86_64").filter(|c| c.expect == "deny");
    let allow = || door("x86_64").filter(|c| c.expect == "allow");
    if deny().count() != denied || allow().count() != calls - denied {
        return Err(bad(format!("the record denies {} calls, not {denied}", deny().count())));
    }
    let list = |v: Vec<&Call>| v.iter().map(|c| format!("{} ({})", c.name, c.nr)).collect::<Vec<_>>().join(", ");
    let (failures, good) = match part {
        "all" => {
            let mut all = wrong(deny(), EPERM);
            all.extend(wrong(allow(), "ok"));
            all.extend(wrong(door("i386"), SIGSYS));
            (
                all,
                format!(
                    "EPERM for the {denied} denied x86_64 calls, ALLOW for the other {}, SIGSYS for all {calls} i386 calls",
                    calls - denied
                ),
            )
        }
        "denied" => {
            (wrong(deny(), EPERM), format!("every denied x86_64 call failed with EPERM: {}", list(deny().collect())))
        }
        "allowed" => (wrong(allow(), "ok"), format!("the {} other x86_64 calls ran", calls - denied)),
        "foreign" => (wrong(door("i386"), SIGSYS), format!("all {calls} i386 calls (int 0x80) were killed by SIGSYS")),
        _ => {
            let status = record.status.as_ref().ok_or_else(|| bad("the probe printed no status line".into()))?;
            let mode = status.get("seccomp").map_or("none", String::as_str);
            let filters = status.get("filters").map_or("none", String::as_str);
            if mode != "2" {
                return Err(bad(format!("the probe's status says Seccomp: {mode}, not 2 (a filter)")));
            }
            let pid = status.get("pid").map_or("none", String::as_str);
            if let Some(other) = args.get("pid_of").and_then(|v| v.as_str()) {
                let started = step(obs, other)?.pid;
                if started.map(|p| p.to_string()).as_deref() != Some(pid) {
                    return Err(bad(format!(
                        "the status is of process {pid}, but the process the agent started for `{other}` is {}",
                        started.map_or("unknown".into(), |p| p.to_string())
                    )));
                }
            }
            return Ok(format!("process {pid}'s status: Seccomp: 2 (filter mode), Seccomp_filters: {filters}"));
        }
    };
    if failures.is_empty() {
        Ok(good)
    } else {
        let want = match part {
            "denied" => "expected EPERM, but ",
            "allowed" => "expected to run, but ",
            "foreign" => "expected SIGSYS, but ",
            _ => "",
        };
        Err(bad(format!("{want}{}", failures.join("; "))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use workbook_agent::StepResult;

    /// What the probe printed in the VM (6.1) under the reference filter,
    /// deny list "0 7 10", as a user.
    const GOOD: &str = "\
probe call abi=x86_64 name=mkdir nr=83 expect=deny got=errno:1 # Operation not permitted
probe call abi=i386 name=mkdir nr=39 expect=kill got=signal:31 # killed by SIGSYS
probe call abi=x86_64 name=sync nr=162 expect=allow got=ok
probe call abi=i386 name=sync nr=36 expect=kill got=signal:31 # killed by SIGSYS
probe call abi=x86_64 name=getitimer nr=36 expect=deny got=errno:1 # Operation not permitted
probe call abi=i386 name=getitimer nr=105 expect=kill got=signal:31 # killed by SIGSYS
probe status pid=123 seccomp=2 filters=1 no_new_privs=1
";

    fn obs(stdout: &str) -> Observations {
        let mut o = Observations::default();
        let r = StepResult { name: "probe".into(), stdout: stdout.into(), exit_code: Some(0), ..Default::default() };
        o.steps.insert("probe".into(), r);
        o
    }

    fn args(part: &str) -> toml::Table {
        toml::from_str(&format!("record = \"probe\"\npart = \"{part}\"\ncalls = 3\ndenied = 2")).unwrap()
    }

    #[test]
    fn the_reference_passes_every_part() {
        for part in PARTS {
            assert!(evaluate(&args(part), &obs(GOOD)).is_ok(), "{part}: {:?}", evaluate(&args(part), &obs(GOOD)));
            validate(&args(part), &HashSet::from(["probe"])).unwrap();
        }
    }

    #[test]
    fn each_part_sees_its_own_mistake() {
        let cases = [
            ("denied", "nr=83 expect=deny got=errno:1", "nr=83 expect=deny got=ok", "mkdir (83): it ran"),
            ("denied", "nr=36 expect=deny got=errno:1", "nr=36 expect=deny got=signal:31", "killed by SIGSYS"),
            ("denied", "nr=83 expect=deny got=errno:1", "nr=83 expect=deny got=errno:13", "errno 13"),
            ("allowed", "nr=162 expect=allow got=ok", "nr=162 expect=allow got=errno:1", "sync (162): EPERM"),
            ("foreign", "nr=39 expect=kill got=signal:31", "nr=39 expect=kill got=ok", "mkdir (39): it ran"),
            ("foreign", "nr=105 expect=kill got=signal:31", "nr=105 expect=kill got=errno:1", "getitimer (105): EPERM"),
            ("status", "seccomp=2", "seccomp=0", "Seccomp: 0"),
        ];
        for (part, from, to, says) in cases {
            let (status, detail) = evaluate(&args(part), &obs(&GOOD.replace(from, to))).unwrap_err();
            assert_eq!(status, Status::Bad, "{part}");
            assert!(detail.contains(says), "{part}: {detail}");
        }
    }

    #[test]
    fn a_forged_record_beside_the_real_one_is_caught() {
        let forged = format!("{GOOD}{GOOD}");
        let (_, detail) = evaluate(&args("denied"), &obs(&forged)).unwrap_err();
        assert!(detail.contains("twice"), "{detail}");
        let short: String = GOOD.lines().skip(1).map(|l| format!("{l}\n")).collect();
        let (_, detail) = evaluate(&args("foreign"), &obs(&short)).unwrap_err();
        assert!(detail.contains("x86_64 calls, not 3"), "{detail}");
    }

    #[test]
    fn the_dump_is_read_like_the_record_and_its_pid_is_the_agents() {
        let dump = GOOD.replace("probe ", "filter ");
        let mut o = obs(&dump);
        o.steps.get_mut("probe").unwrap().pid = Some(123);
        let with_pid = |part: &str| {
            let mut a = args(part);
            a.insert("pid_of".into(), "probe".into());
            a
        };
        assert!(evaluate(&with_pid("all"), &o).is_ok());
        assert!(evaluate(&with_pid("status"), &o).is_ok());
        o.steps.get_mut("probe").unwrap().pid = Some(124);
        let (_, detail) = evaluate(&with_pid("status"), &o).unwrap_err();
        assert!(detail.contains("process 123") && detail.contains("is 124"), "{detail}");
        let wrong = obs(&dump.replace("nr=162 expect=allow got=ok", "nr=162 expect=allow got=errno:0"));
        let (_, detail) = evaluate(&args("all"), &wrong).unwrap_err();
        assert!(detail.contains("sync (162): errno 0"), "{detail}");
    }

    #[test]
    fn no_record_is_missing() {
        let (status, _) = evaluate(&args("status"), &obs("seccomp-run: TODO\n")).unwrap_err();
        assert_eq!(status, Status::Missing);
        assert!(validate(&args("nope"), &HashSet::from(["probe"])).is_err());
    }
}

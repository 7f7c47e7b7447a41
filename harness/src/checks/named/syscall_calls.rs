//! `syscall_calls`: two steps printed `strace -c` style tables; they must
//! agree on the number of calls of every syscall. Errors are not compared:
//! a counter that sees only syscall entries cannot know which calls failed.
//!
//! ```toml
//! check = "syscall_calls"
//! args = { expected = "strace", actual = "ebpf", ignore = ["exit_group"] }
//! # optional: expected_stream / actual_stream = "stdout" | "stderr"
//! # (default "stderr", where strace prints), only = ["openat", ...],
//! # at_least = { futex = 4 }: the actual table shows at least this many
//! # calls of a syscall that `only` leaves out (the workload made them for
//! # sure, besides others that vary from run to run)
//! ```
//!
//! `ignore` names syscalls that one counter sees and the other cannot (a
//! call that never returns, such as exit_group, has no exit to count).
//! `only` compares just the syscalls it names: for a multi-threaded
//! workload whose memory and futex calls depend on how the threads happen
//! to interleave, the calls it makes a known number of times.
//!
//! `misses = { step = "progs", name = "count_syscall" }` lets the actual
//! table fall short by at most the runs the kernel itself says it skipped:
//! the `recursion_misses` of that program in `bpftool prog show -j`. On a
//! preemptible kernel (7.x's lazy preemption) a thread preempted inside
//! the program blocks it on that CPU, and the calls of every other thread
//! scheduled there meanwhile are not seen; the kernel counts them. A count
//! above the expected one is never forgiven, and neither is a shortfall the
//! kernel does not account for.

use std::collections::{BTreeSet, HashSet};

use super::strace_table::{Table, ignored, read_table, validate_pair};
use super::{NamedCheck, Observations, Outcome, Status};

pub const CHECK: NamedCheck = NamedCheck { name: "syscall_calls", validate, evaluate };

fn validate(args: &toml::Table, steps: &HashSet<&str>) -> Result<(), String> {
    let mut pair = args.clone();
    if pair.remove("only").is_some() && only(args)?.is_empty() {
        return Err("only must name at least one syscall".into());
    }
    if pair.remove("at_least").is_some() {
        at_least(args)?;
    }
    if let Some(m) = pair.remove("misses") {
        let t = m.as_table().ok_or("misses must be a table { step, name }")?;
        super::args::step_arg(t, "step", steps).map_err(|e| format!("misses.{e}"))?;
        super::args::string_arg(t, "name").map_err(|e| format!("misses.{e}"))?;
        if let Some(k) = t.keys().find(|k| *k != "step" && *k != "name") {
            return Err(format!("misses: unknown key {k:?} (it takes step and name)"));
        }
    }
    validate_pair(&pair, steps)
}

/// The runs the kernel skipped of the program `misses` names, or 0 when
/// the check takes none into account.
fn kernel_misses(args: &toml::Table, obs: &Observations) -> Result<u64, (Status, String)> {
    let Some(t) = args.get("misses").and_then(|m| m.as_table()) else { return Ok(0) };
    let bad = |m: String| (Status::Bad, m);
    let step = super::args::string_arg(t, "step").map_err(bad)?;
    let name = super::args::string_arg(t, "name").map_err(bad)?;
    let out = &crate::checks::step(obs, step)?.stdout;
    let progs: Vec<serde_json::Value> = serde_json::from_str(out.trim())
        .map_err(|e| bad(format!("`{step}` did not print bpftool's JSON list of programs: {e}")))?;
    let prog = progs
        .iter()
        .find(|p| p["name"] == name)
        .ok_or_else(|| bad(format!("`{step}` does not list a program named {name}")))?;
    Ok(prog["recursion_misses"].as_u64().unwrap_or(0))
}

/// Whether `actual` falls short of `expected` only, on compared syscalls,
/// by no more than `misses` calls in all.
fn short_by_at_most(expected: &Table, actual: &Table, compared: &Compared, misses: u64) -> bool {
    let calls = |t: &Table, name: &str| t.rows.get(name).map_or(0, |c| c.calls);
    let names: BTreeSet<&String> = expected.rows.keys().chain(actual.rows.keys()).collect();
    let mut short = 0;
    for n in names.into_iter().filter(|n| compared.contains(n)) {
        let (e, a) = (calls(expected, n), calls(actual, n));
        if a > e {
            return false;
        }
        short += e - a;
    }
    short <= misses
}

/// `at_least = { syscall = calls, … }`.
fn at_least(args: &toml::Table) -> Result<Vec<(String, u64)>, String> {
    let Some(v) = args.get("at_least") else { return Ok(Vec::new()) };
    let t = v.as_table().ok_or_else(|| format!("at_least must be a table of syscall = calls, not {v}"))?;
    t.iter()
        .map(|(name, n)| match n {
            toml::Value::Integer(n) if *n >= 0 => Ok((name.clone(), *n as u64)),
            other => Err(format!("at_least.{name} must be a number of calls, not {other}")),
        })
        .collect()
}

/// The syscalls `only` names; empty when it is absent (compare them all).
fn only(args: &toml::Table) -> Result<BTreeSet<String>, String> {
    match args.get("only") {
        None => Ok(BTreeSet::new()),
        Some(toml::Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string).ok_or_else(|| format!("only: {v} is not a string")))
            .collect(),
        Some(other) => Err(format!("only must be a list of syscall names, not {other}")),
    }
}

/// Which syscalls are compared: none that `ignore` names, and only those
/// that `only` names when it names any.
pub struct Compared {
    pub ignore: BTreeSet<String>,
    pub only: BTreeSet<String>,
}

impl Compared {
    fn contains(&self, name: &str) -> bool {
        !self.ignore.contains(name) && (self.only.is_empty() || self.only.contains(name))
    }
}

/// One line per syscall whose calls differ, the biggest counts first.
pub fn compare(expected: &Table, actual: &Table, compared: &Compared) -> Vec<String> {
    let calls = |t: &Table, name: &str| t.rows.get(name).map_or(0, |c| c.calls);
    let names: BTreeSet<&String> = expected.rows.keys().chain(actual.rows.keys()).chain(compared.only.iter()).collect();
    let mut differ: Vec<(&String, u64, u64)> = names
        .into_iter()
        .filter(|n| compared.contains(n))
        .map(|n| (n, calls(expected, n), calls(actual, n)))
        .filter(|(_, e, a)| e != a)
        .collect();
    differ.sort_by(|x, y| y.1.max(y.2).cmp(&x.1.max(x.2)).then(x.0.cmp(y.0)));
    differ.into_iter().map(|(n, e, a)| format!("{n:<18} expected {e:<8} got {a}")).collect()
}

/// Calls in the table of the compared syscalls.
fn counted(t: &Table, compared: &Compared) -> u64 {
    t.rows.iter().filter(|(n, _)| compared.contains(n)).map(|(_, c)| c.calls).sum()
}

fn evaluate(args: &toml::Table, obs: &Observations) -> Outcome {
    let bad = |m: String| (Status::Bad, m);
    let (exp_name, expected) = read_table(args, obs, "expected")?;
    let (act_name, actual) = read_table(args, obs, "actual")?;
    let compared = Compared { ignore: ignored(args).map_err(bad)?, only: only(args).map_err(bad)? };
    let mut diffs = compare(&expected, &actual, &compared);
    let mut floors = Vec::new();
    for (name, floor) in at_least(args).map_err(bad)? {
        let got = actual.rows.get(&name).map_or(0, |c| c.calls);
        if got < floor {
            floors.push(format!("{name:<18} expected at least {floor:<3} got {got}"));
        }
    }
    let join = |set: &BTreeSet<String>| set.iter().map(String::as_str).collect::<Vec<_>>().join(", ");
    let leaving_out = match (join(&compared.only), join(&compared.ignore)) {
        (only, _) if !only.is_empty() => format!(" (comparing only {only})"),
        (_, ignore) if !ignore.is_empty() => format!(" (leaving out {ignore})"),
        _ => String::new(),
    };
    let misses = kernel_misses(args, obs)?;
    if floors.is_empty() && !diffs.is_empty() && misses > 0 && short_by_at_most(&expected, &actual, &compared, misses) {
        return Ok(format!(
            "`{act_name}` counted {} calls, `{exp_name}` {}{leaving_out}: the kernel skipped {misses} runs of the \
             program (recursion_misses) and the difference is within them",
            counted(&actual, &compared),
            counted(&expected, &compared)
        ));
    }
    diffs.extend(floors);
    if diffs.is_empty() {
        return Ok(format!(
            "`{act_name}` counted the same {} calls of {} syscalls as `{exp_name}`{leaving_out}",
            counted(&expected, &compared),
            expected.rows.keys().filter(|n| compared.contains(n)).count()
        ));
    }
    let mut detail = format!(
        "`{act_name}` counted {} calls, `{exp_name}` {}{leaving_out}; the syscalls that differ:",
        counted(&actual, &compared),
        counted(&expected, &compared)
    );
    for d in diffs.iter().take(12) {
        detail.push_str("\n    ");
        detail.push_str(d);
    }
    if diffs.len() > 12 {
        detail.push_str(&format!("\n    … and {} more", diffs.len() - 12));
    }
    Err(bad(detail))
}

#[cfg(test)]
mod tests {
    use super::super::strace_table::parse_table;
    use super::*;

    const STRACE: &str = "% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 50.77    0.738375          36     10000           read
 49.05    0.713279          35     10001           write
  0.00    0.000021          21         1         1 getrandom
------ ----------- ----------- --------- --------- ----------------
100.00    1.454254          36     20002         1 total
";

    const EBPF: &str = "% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
  0.00    0.000000           0     10001           write
  0.00    0.000000           0     10000           read
  0.00    0.000000           0         1           getrandom
  0.00    0.000000           0         1           exit_group
------ ----------- ----------- --------- --------- ----------------
  0.00    0.000000           0     20003           total
";

    #[test]
    fn calls_agree_whatever_the_errors_and_order() {
        let (e, a) = (parse_table(STRACE).unwrap(), parse_table(EBPF).unwrap());
        let ignore = Compared { ignore: BTreeSet::from(["exit_group".to_string()]), only: BTreeSet::new() };
        assert!(compare(&e, &a, &ignore).is_empty());
        assert_eq!(counted(&a, &ignore), 20002);
        let diffs = compare(&e, &a, &all());
        assert_eq!(diffs.len(), 1);
        assert!(diffs[0].starts_with("exit_group") && diffs[0].contains("expected 0") && diffs[0].ends_with("got 1"));
    }

    #[test]
    fn at_least_catches_a_syscall_left_out_of_the_comparison() {
        let table = |futex: u64| {
            format!(
                "% time     seconds  usecs/call     calls    errors syscall\n\
                 ------ ----------- ----------- --------- --------- ----------------\n\
                 0.00    0.000000           0        12           openat\n\
                 0.00    0.000000           0        {futex}           futex\n\
                 ------ ----------- ----------- --------- --------- ----------------\n\
                 100.00    0.000000           0        {}           total\n",
                12 + futex
            )
        };
        let args: toml::Table =
            toml::from_str("expected = \"s\"\nactual = \"e\"\nonly = [\"openat\"]\nat_least = { futex = 3 }").unwrap();
        validate(&args, &HashSet::from(["s", "e"])).unwrap();
        let judge = |futex: u64| {
            let mut o = Observations::default();
            for (name, n) in [("s", 9), ("e", futex)] {
                let r = workbook_agent::StepResult { name: name.into(), stderr: table(n), ..Default::default() };
                o.steps.insert(name.into(), r);
            }
            evaluate(&args, &o)
        };
        assert!(judge(4).is_ok(), "{:?}", judge(4));
        let err = judge(1).unwrap_err().1;
        assert!(err.contains("futex") && err.contains("expected at least 3"), "{err}");
        let bad: toml::Table =
            toml::from_str("expected = \"s\"\nactual = \"e\"\nat_least = { futex = \"x\" }").unwrap();
        assert!(validate(&bad, &HashSet::from(["s", "e"])).unwrap_err().contains("at_least.futex"));
    }

    #[test]
    fn a_missing_syscall_is_a_difference() {
        let e = parse_table(STRACE).unwrap();
        let mut a = e.clone();
        a.rows.remove("read");
        let diffs = compare(&e, &a, &all());
        assert!(diffs[0].starts_with("read") && diffs[0].contains("expected 10000") && diffs[0].ends_with("got 0"));
    }

    fn all() -> Compared {
        Compared { ignore: BTreeSet::new(), only: BTreeSet::new() }
    }

    #[test]
    fn only_compares_the_named_syscalls_even_when_both_lack_them() {
        let (e, mut a) = (parse_table(STRACE).unwrap(), parse_table(EBPF).unwrap());
        a.rows.get_mut("getrandom").unwrap().calls = 7;
        let only =
            |names: &[&str]| Compared { ignore: BTreeSet::new(), only: names.iter().map(|n| n.to_string()).collect() };
        assert!(compare(&e, &a, &only(&["read", "write"])).is_empty());
        assert_eq!(counted(&a, &only(&["read", "write"])), 20001);
        assert_eq!(compare(&e, &a, &only(&["read", "getrandom"])).len(), 1);
        // A syscall that `only` names and neither table has is no difference.
        assert!(compare(&e, &a, &only(&["openat"])).is_empty());
        let steps = HashSet::from(["strace", "ebpf"]);
        let args = |t: &str| -> toml::Table { toml::from_str(t).unwrap() };
        let good = "expected = \"strace\"\nactual = \"ebpf\"";
        assert!(validate(&args(&format!("{good}\nonly = [\"openat\"]")), &steps).is_ok());
        assert!(validate(&args(&format!("{good}\nonly = []")), &steps).is_err());
        assert!(validate(&args(&format!("{good}\nonly = \"openat\"")), &steps).is_err());
        assert!(validate(&args(&format!("{good}\nonlyy = [\"openat\"]")), &steps).is_err());
    }

    fn obs_with(progs: &str) -> Observations {
        use crate::checks::StepResult;
        let mut o = Observations::default();
        let mut put = |name: &str, stdout: &str, stderr: &str| {
            let r =
                StepResult { name: name.into(), stdout: stdout.into(), stderr: stderr.into(), ..Default::default() };
            o.steps.insert(name.into(), r);
        };
        put("strace", "", STRACE);
        let short = EBPF.replace("10000           read", "9990           read");
        put("ebpf", "", &short);
        put("progs", progs, "");
        o
    }

    #[test]
    fn a_shortfall_the_kernel_counted_as_skipped_runs_is_forgiven_and_no_other() {
        let args = |extra: &str| -> toml::Table {
            toml::from_str(&format!("expected = \"strace\"\nactual = \"ebpf\"\nignore = [\"exit_group\"]\n{extra}"))
                .unwrap()
        };
        let misses = "misses = { step = \"progs\", name = \"count_syscall\" }";
        let progs = |n: u64| format!("[{{\"name\": \"count_syscall\", \"recursion_misses\": {n}}}]");
        // 10 reads short: forgiven with 10 or more skipped runs.
        assert!(evaluate(&args(misses), &obs_with(&progs(10))).is_ok());
        assert!(evaluate(&args(misses), &obs_with(&progs(9))).is_err());
        // Without misses, or without the kernel's word, it is a difference.
        assert!(evaluate(&args(""), &obs_with(&progs(1000))).is_err());
        assert!(evaluate(&args(misses), &obs_with("[{\"name\": \"count_syscall\"}]")).is_err());
        // Too many calls are never forgiven.
        let mut o = obs_with(&progs(1000));
        o.steps.get_mut("ebpf").unwrap().stderr = EBPF.replace("10000           read", "10010           read");
        assert!(evaluate(&args(misses), &o).is_err());
        let steps = HashSet::from(["strace", "ebpf", "progs"]);
        assert!(validate(&args(misses), &steps).is_ok());
        assert!(validate(&args("misses = { step = \"nope\", name = \"x\" }"), &steps).is_err());
        assert!(validate(&args("misses = { step = \"progs\" }"), &steps).is_err());
    }
}

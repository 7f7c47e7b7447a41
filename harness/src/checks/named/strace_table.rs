//! `strace_table`: two steps printed `strace -c` style tables; they must
//! agree syscall by syscall (calls and errors) and in total.
//!
//! ```toml
//! check = "strace_table"
//! args = { expected = "strace", actual = "census" }
//! # optional: expected_stream / actual_stream = "stdout" | "stderr" (default
//! # "stderr", where strace prints), ignore = ["syscall", ...],
//! # slept = { clock_nanosleep = 0.1 }: the actual table's seconds for that
//! # syscall are at least this many (the command slept that long in it;
//! # strace -c counts CPU time, so the expected table cannot say)
//! ```

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::args::{only, step_arg, string_arg};
use super::{NamedCheck, Observations, Outcome, Status};
use crate::checks::{ending, excerpt, step, text_of};
use crate::manifest::StreamSel;

pub const CHECK: NamedCheck = NamedCheck { name: "strace_table", validate, evaluate };

const KEYS: &[&str] = &["expected", "actual", "expected_stream", "actual_stream", "ignore", "slept"];

fn validate(args: &toml::Table, steps: &HashSet<&str>) -> Result<(), String> {
    validate_pair(args, steps)?;
    slept(args)?;
    Ok(())
}

/// `slept = { syscall = seconds, … }`.
fn slept(args: &toml::Table) -> Result<BTreeMap<String, f64>, String> {
    let Some(v) = args.get("slept") else { return Ok(BTreeMap::new()) };
    let table = v.as_table().ok_or_else(|| format!("slept must be a table of syscall = seconds, not {v}"))?;
    table
        .iter()
        .map(|(name, secs)| match secs {
            toml::Value::Float(f) if *f >= 0.0 => Ok((name.clone(), *f)),
            toml::Value::Integer(i) if *i >= 0 => Ok((name.clone(), *i as f64)),
            other => Err(format!("slept.{name} must be a number of seconds, not {other}")),
        })
        .collect()
}

/// The arguments every check that compares two tables takes.
pub(super) fn validate_pair(args: &toml::Table, steps: &HashSet<&str>) -> Result<(), String> {
    only(args, KEYS)?;
    step_arg(args, "expected", steps)?;
    step_arg(args, "actual", steps)?;
    stream(args, "expected_stream")?;
    stream(args, "actual_stream")?;
    ignored(args)?;
    Ok(())
}

fn stream(args: &toml::Table, key: &str) -> Result<StreamSel, String> {
    if !args.contains_key(key) {
        return Ok(StreamSel::Stderr);
    }
    match string_arg(args, key)? {
        "stdout" => Ok(StreamSel::Stdout),
        "stderr" => Ok(StreamSel::Stderr),
        other => Err(format!("{key} = {other:?}: use \"stdout\" or \"stderr\"")),
    }
}

pub(super) fn ignored(args: &toml::Table) -> Result<BTreeSet<String>, String> {
    match args.get("ignore") {
        None => Ok(BTreeSet::new()),
        Some(toml::Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string).ok_or_else(|| format!("ignore: {v} is not a string")))
            .collect(),
        Some(other) => Err(format!("ignore must be a list of syscall names, not {other}")),
    }
}

/// Calls and errors of one syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub calls: u64,
    pub errors: u64,
}

/// A parsed `strace -c` table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Table {
    pub rows: BTreeMap<String, Counts>,
    pub total: Counts,
    /// The seconds column, in microseconds (so that the table stays `Eq`).
    pub micros: BTreeMap<String, u64>,
}

/// Parses the table `strace -c` prints: a header starting `% time`, a rule
/// of dashes, rows, a rule, and the total row.
pub fn parse_table(text: &str) -> Result<Table, String> {
    let mut lines = text.lines().skip_while(|l| !l.trim_start().starts_with("% time"));
    if lines.next().is_none() {
        return Err("no `% time … syscall` header line".into());
    }
    let is_rule = |l: &str| !l.trim().is_empty() && l.trim().chars().all(|c| c == '-' || c == ' ');
    if !lines.next().is_some_and(is_rule) {
        return Err("no rule of dashes under the header".into());
    }
    let mut table = Table::default();
    for line in lines.by_ref() {
        if is_rule(line) {
            break;
        }
        let (name, counts) = parse_row(line)?;
        let seconds = line.split_whitespace().nth(1).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
        table.micros.insert(name.clone(), (seconds * 1e6).round() as u64);
        *table.rows.entry(name).or_default() = counts;
    }
    let total_line = lines.next().ok_or("no total row after the closing rule")?;
    let (name, total) = parse_row(total_line)?;
    if name != "total" {
        return Err(format!("the last row is {name:?}, not total"));
    }
    table.total = total;
    Ok(table)
}

/// `% time seconds usecs/call calls [errors] syscall`: errors is blank
/// when there were none.
fn parse_row(line: &str) -> Result<(String, Counts), String> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let number = |s: &str| s.parse::<u64>().map_err(|_| format!("{s:?} is not a count in row {line:?}"));
    match fields.as_slice() {
        [_, _, _, calls, name] => Ok((name.to_string(), Counts { calls: number(calls)?, errors: 0 })),
        [_, _, _, calls, errors, name] => {
            Ok((name.to_string(), Counts { calls: number(calls)?, errors: number(errors)? }))
        }
        _ => Err(format!("row {line:?} does not have the columns of strace -c")),
    }
}

/// The table the step named by `args[key]` printed, with the step's name.
pub(super) fn read_table(
    args: &toml::Table,
    obs: &Observations,
    key: &str,
) -> Result<(String, Table), (Status, String)> {
    let bad = |m: String| (Status::Bad, m);
    let name = string_arg(args, key).map_err(bad)?;
    let s = step(obs, name)?;
    let text = text_of(s, stream(args, &format!("{key}_stream")).map_err(bad)?);
    let table = parse_table(&text)
        .map_err(|e| bad(format!("`{name}` ({}) printed no strace -c table: {e}\n{}", ending(s), excerpt(&text, 6))))?;
    Ok((name.to_string(), table))
}

fn evaluate(args: &toml::Table, obs: &Observations) -> Outcome {
    let bad = |m: String| (Status::Bad, m);
    let (exp_name, expected) = read_table(args, obs, "expected")?;
    let (act_name, actual) = read_table(args, obs, "actual")?;
    let ignore = ignored(args).map_err(bad)?;
    let mut diffs = compare(&expected, &actual, &ignore);
    for (name, at_least) in slept(args).map_err(bad)? {
        let took = actual.micros.get(&name).copied().unwrap_or(0) as f64 / 1e6;
        if took < at_least {
            diffs.push(format!(
                "{name:<18} took {took:.6} s in all, but the command slept {at_least} s in it: time each call \
                 from its entry to its exit"
            ));
        }
    }
    if diffs.is_empty() {
        return Ok(format!(
            "{} syscalls, {} calls and {} errors in both `{exp_name}` and `{act_name}`",
            expected.rows.len(),
            expected.total.calls,
            expected.total.errors
        ));
    }
    let mut detail = format!("`{act_name}` differs from `{exp_name}` (calls/errors):");
    for d in &diffs {
        detail.push_str("\n    ");
        detail.push_str(d);
    }
    Err(bad(detail))
}

/// One line per difference, syscalls in name order, then the total.
pub fn compare(expected: &Table, actual: &Table, ignore: &BTreeSet<String>) -> Vec<String> {
    let show = |c: Option<&Counts>| match c {
        Some(c) => format!("{}/{}", c.calls, c.errors),
        None => "missing".into(),
    };
    let names: BTreeSet<&String> = expected.rows.keys().chain(actual.rows.keys()).collect();
    let mut diffs = Vec::new();
    for name in names.into_iter().filter(|n| !ignore.contains(*n)) {
        let (e, a) = (expected.rows.get(name), actual.rows.get(name));
        if e != a {
            diffs.push(format!("{name:<18} expected {:<10} got {}", show(e), show(a)));
        }
    }
    if ignore.is_empty() && expected.total != actual.total {
        diffs.push(format!(
            "{:<18} expected {:<10} got {}",
            "total",
            show(Some(&expected.total)),
            show(Some(&actual.total))
        ));
    }
    diffs
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRACE: &str = "hello\n% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 49.55    0.002829        2829         1           execve
 18.43    0.001052          35        30        12 openat
------ ----------- ----------- --------- --------- ----------------
100.00    0.005709          51        31        12 total
";

    #[test]
    fn parses_rows_errors_and_total() {
        let t = parse_table(STRACE).unwrap();
        assert_eq!(t.rows["execve"], Counts { calls: 1, errors: 0 });
        assert_eq!(t.rows["openat"], Counts { calls: 30, errors: 12 });
        assert_eq!(t.total, Counts { calls: 31, errors: 12 });
    }

    #[test]
    fn a_syscall_the_command_slept_in_must_show_the_time() {
        let census = |secs: &str| {
            format!(
                "% time     seconds  usecs/call     calls    errors syscall\n\
                 ------ ----------- ----------- --------- --------- ----------------\n\
                 100.00    {secs}      100000         1           clock_nanosleep\n\
                 ------ ----------- ----------- --------- --------- ----------------\n\
                 100.00    {secs}      100000         1           total\n"
            )
        };
        let args: toml::Table =
            toml::from_str("expected = \"strace\"\nactual = \"census\"\nslept = { clock_nanosleep = 0.1 }").unwrap();
        validate(&args, &HashSet::from(["strace", "census"])).unwrap();
        let judge = |secs: &str| {
            let mut o = Observations::default();
            for (name, text) in [("strace", census("0.000012")), ("census", census(secs))] {
                let r = workbook_agent::StepResult { name: name.into(), stderr: text, ..Default::default() };
                o.steps.insert(name.into(), r);
            }
            evaluate(&args, &o)
        };
        assert!(judge("0.100213").is_ok(), "{:?}", judge("0.100213"));
        let err = judge("0.000000").unwrap_err().1;
        assert!(err.contains("clock_nanosleep") && err.contains("slept 0.1 s"), "{err}");
        let bad: toml::Table =
            toml::from_str("expected = \"strace\"\nactual = \"census\"\nslept = { x = \"a\" }").unwrap();
        assert!(validate(&bad, &HashSet::from(["strace", "census"])).unwrap_err().contains("slept.x"));
    }

    #[test]
    fn an_empty_output_is_an_error_not_an_empty_table() {
        assert!(parse_table("").unwrap_err().contains("header"));
        let no_total = STRACE.lines().take(5).collect::<Vec<_>>().join("\n");
        assert!(parse_table(&no_total).unwrap_err().contains("total"));
    }

    #[test]
    fn differences_name_the_syscall_and_both_counts() {
        let expected = parse_table(STRACE).unwrap();
        let mut actual = expected.clone();
        actual.rows.get_mut("openat").unwrap().errors = 11;
        actual.total.errors = 11;
        let diffs = compare(&expected, &actual, &BTreeSet::new());
        assert_eq!(diffs.len(), 2, "{diffs:?}");
        assert!(diffs[0].starts_with("openat") && diffs[0].contains("30/12") && diffs[0].contains("30/11"));
        assert!(compare(&expected, &expected, &BTreeSet::new()).is_empty());
        let ignore = BTreeSet::from(["openat".to_string()]);
        assert!(compare(&expected, &actual, &ignore).is_empty());
    }
}

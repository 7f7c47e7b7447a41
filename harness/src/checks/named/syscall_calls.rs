//! `syscall_calls`: two steps printed `strace -c` style tables; they must
//! agree on the number of calls of every syscall. Errors are not compared:
//! a counter that sees only syscall entries cannot know which calls failed.
//!
//! ```toml
//! check = "syscall_calls"
//! args = { expected = "strace", actual = "ebpf", ignore = ["exit_group"] }
//! # optional: expected_stream / actual_stream = "stdout" | "stderr"
//! # (default "stderr", where strace prints)
//! ```
//!
//! `ignore` names syscalls that one counter sees and the other cannot (a
//! call that never returns, such as exit_group, has no exit to count).

use std::collections::BTreeSet;

use super::strace_table::{Table, ignored, read_table, validate_pair};
use super::{NamedCheck, Observations, Outcome, Status};

pub const CHECK: NamedCheck = NamedCheck { name: "syscall_calls", validate: validate_pair, evaluate };

/// One line per syscall whose calls differ, the biggest counts first.
pub fn compare(expected: &Table, actual: &Table, ignore: &BTreeSet<String>) -> Vec<String> {
    let calls = |t: &Table, name: &str| t.rows.get(name).map_or(0, |c| c.calls);
    let names: BTreeSet<&String> = expected.rows.keys().chain(actual.rows.keys()).collect();
    let mut differ: Vec<(&String, u64, u64)> = names
        .into_iter()
        .filter(|n| !ignore.contains(*n))
        .map(|n| (n, calls(expected, n), calls(actual, n)))
        .filter(|(_, e, a)| e != a)
        .collect();
    differ.sort_by(|x, y| y.1.max(y.2).cmp(&x.1.max(x.2)).then(x.0.cmp(y.0)));
    differ.into_iter().map(|(n, e, a)| format!("{n:<18} expected {e:<8} got {a}")).collect()
}

/// Calls in the table, leaving out the ignored syscalls.
fn counted(t: &Table, ignore: &BTreeSet<String>) -> u64 {
    t.rows.iter().filter(|(n, _)| !ignore.contains(*n)).map(|(_, c)| c.calls).sum()
}

fn evaluate(args: &toml::Table, obs: &Observations) -> Outcome {
    let bad = |m: String| (Status::Bad, m);
    let (exp_name, expected) = read_table(args, obs, "expected")?;
    let (act_name, actual) = read_table(args, obs, "actual")?;
    let ignore = ignored(args).map_err(bad)?;
    let diffs = compare(&expected, &actual, &ignore);
    let leaving_out = match ignore.iter().map(String::as_str).collect::<Vec<_>>().join(", ") {
        names if names.is_empty() => String::new(),
        names => format!(" (leaving out {names})"),
    };
    if diffs.is_empty() {
        return Ok(format!(
            "`{act_name}` counted the same {} calls of {} syscalls as `{exp_name}`{leaving_out}",
            counted(&expected, &ignore),
            expected.rows.keys().filter(|n| !ignore.contains(*n)).count()
        ));
    }
    let mut detail = format!(
        "`{act_name}` counted {} calls, `{exp_name}` {}{leaving_out}; the syscalls that differ:",
        counted(&actual, &ignore),
        counted(&expected, &ignore)
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
        let ignore = BTreeSet::from(["exit_group".to_string()]);
        assert!(compare(&e, &a, &ignore).is_empty());
        assert_eq!(counted(&a, &ignore), 20002);
        let diffs = compare(&e, &a, &BTreeSet::new());
        assert_eq!(diffs.len(), 1);
        assert!(diffs[0].starts_with("exit_group") && diffs[0].contains("expected 0") && diffs[0].ends_with("got 1"));
    }

    #[test]
    fn a_missing_syscall_is_a_difference() {
        let e = parse_table(STRACE).unwrap();
        let mut a = e.clone();
        a.rows.remove("read");
        let diffs = compare(&e, &a, &BTreeSet::new());
        assert!(diffs[0].starts_with("read") && diffs[0].contains("expected 10000") && diffs[0].ends_with("got 0"));
    }
}

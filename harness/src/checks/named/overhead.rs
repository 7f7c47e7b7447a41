//! `overhead`: what watching a command costs, from the agent's own clock.
//! The time a fast step adds over a bare run of the same command must be at
//! most `max_ratio` of the time the slow steps add.
//!
//! ```toml
//! check = "overhead"
//! args = { bare = "bare", fast = "ebpf", slow = ["ptrace", "strace"], max_ratio = 0.1 }
//! ```
//!
//! Durations are the agent's `duration_ms` (from spawn to exit), which the
//! program under test cannot change. With several slow steps the bound is
//! taken from the one that added least, so that slowing one of them down on
//! purpose gains nothing. The detail ends with a `durations:` line,
//! `bare=45ms ebpf=131ms …`, that scripts read from the JSON report.

use std::collections::HashSet;

use super::args::{only, step_arg, string_arg};
use super::{NamedCheck, Observations, Outcome, Status};
use crate::checks::{ending, step};

pub const CHECK: NamedCheck = NamedCheck { name: "overhead", validate, evaluate };

const KEYS: &[&str] = &["bare", "fast", "slow", "max_ratio"];

fn validate(args: &toml::Table, steps: &HashSet<&str>) -> Result<(), String> {
    only(args, KEYS)?;
    step_arg(args, "bare", steps)?;
    step_arg(args, "fast", steps)?;
    for name in slow(args)? {
        if !steps.contains(name) {
            return Err(format!("slow: {name:?} is not a step of this lab"));
        }
    }
    max_ratio(args)?;
    Ok(())
}

fn slow(args: &toml::Table) -> Result<Vec<&str>, String> {
    let items = match args.get("slow") {
        Some(toml::Value::Array(items)) if !items.is_empty() => items,
        Some(other) => return Err(format!("slow must be a non-empty list of step names, not {other}")),
        None => return Err("slow is required: the steps to compare with".into()),
    };
    items.iter().map(|v| v.as_str().ok_or_else(|| format!("slow: {v} is not a step name"))).collect()
}

fn max_ratio(args: &toml::Table) -> Result<f64, String> {
    let ratio = match args.get("max_ratio") {
        Some(toml::Value::Float(f)) => *f,
        Some(toml::Value::Integer(i)) => *i as f64,
        Some(other) => return Err(format!("max_ratio must be a number, not {other}")),
        None => return Err("max_ratio is required, e.g. 0.1".into()),
    };
    if ratio > 0.0 && ratio <= 1.0 { Ok(ratio) } else { Err(format!("max_ratio = {ratio} is not in (0, 1]")) }
}

/// How a comparison came out, all times in milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// What the fast step added over the bare run (may be below zero).
    pub fast_added: i64,
    /// The slow step that added least, and what it added.
    pub slow_step: String,
    pub slow_added: i64,
    /// `fast_added / slow_added`, with a negative addition counted as 0.
    pub ratio: f64,
}

/// Compares durations: `bare` and `fast` in ms, `slow` as (step, ms).
pub fn compare(bare: u64, fast: u64, slow: &[(String, u64)]) -> Option<Comparison> {
    let added = |ms: u64| ms as i64 - bare as i64;
    let (slow_step, slow_ms) = slow.iter().min_by_key(|(_, ms)| *ms)?;
    let slow_added = added(*slow_ms);
    let fast_added = added(fast);
    let ratio = if slow_added > 0 { fast_added.max(0) as f64 / slow_added as f64 } else { f64::INFINITY };
    Some(Comparison { fast_added, slow_step: slow_step.clone(), slow_added, ratio })
}

fn evaluate(args: &toml::Table, obs: &Observations) -> Outcome {
    let bad = |m: String| (Status::Bad, m);
    let limit = max_ratio(args).map_err(bad)?;
    let duration = |name: &str| -> Result<u64, (Status, String)> {
        let s = step(obs, name)?;
        if s.exit_code != Some(0) || s.timed_out {
            return Err(bad(format!("`{name}` {}, so its time says nothing about the cost of watching it", ending(s))));
        }
        Ok(s.duration_ms)
    };
    let bare_name = string_arg(args, "bare").map_err(bad)?;
    let fast_name = string_arg(args, "fast").map_err(bad)?;
    let bare = duration(bare_name)?;
    let fast = duration(fast_name)?;
    let mut slow_runs = Vec::new();
    for name in slow(args).map_err(bad)? {
        slow_runs.push((name.to_string(), duration(name)?));
    }
    let mut durations = vec![format!("{bare_name}={bare}ms"), format!("{fast_name}={fast}ms")];
    durations.extend(slow_runs.iter().map(|(n, ms)| format!("{n}={ms}ms")));
    let durations = format!("durations: {}", durations.join(" "));

    let c = compare(bare, fast, &slow_runs).ok_or_else(|| bad("no slow step to compare with".into()))?;
    if c.slow_added <= 0 {
        return Err(bad(format!(
            "`{}` took no longer than the bare run ({} ms against {bare} ms): it cannot have stopped the command at \
             every system call\n    {durations}",
            c.slow_step,
            c.slow_added + bare as i64
        )));
    }
    let summary = format!(
        "`{fast_name}` added {} ms to the bare run's {bare} ms, {:.1}% of the {} ms that `{}` added (the bound is {:.0}%)",
        c.fast_added,
        c.ratio * 100.0,
        c.slow_added,
        c.slow_step,
        limit * 100.0
    );
    if c.ratio <= limit {
        Ok(format!("{summary}\n    {durations}"))
    } else {
        Err(bad(format!("{summary}\n    {durations}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(list: &[(&str, u64)]) -> Vec<(String, u64)> {
        list.iter().map(|(n, ms)| (n.to_string(), *ms)).collect()
    }

    #[test]
    fn the_bound_comes_from_the_cheapest_slow_step() {
        let c = compare(50, 150, &runs(&[("strace", 3050), ("ptrace", 2050)])).unwrap();
        assert_eq!((c.fast_added, c.slow_step.as_str(), c.slow_added), (100, "ptrace", 2000));
        assert!((c.ratio - 0.05).abs() < 1e-9);
    }

    #[test]
    fn a_fast_step_quicker_than_bare_costs_nothing() {
        let c = compare(50, 40, &runs(&[("ptrace", 1050)])).unwrap();
        assert_eq!((c.fast_added, c.ratio), (-10, 0.0));
    }

    #[test]
    fn a_slow_step_that_added_nothing_cannot_be_compared_with() {
        let c = compare(50, 60, &runs(&[("ptrace", 50)])).unwrap();
        assert!(c.ratio.is_infinite());
        assert!(compare(50, 60, &[]).is_none());
    }

    #[test]
    fn arguments_are_validated() {
        let steps = HashSet::from(["bare", "ebpf", "ptrace"]);
        let args = |t: &str| -> toml::Table { toml::from_str(t).unwrap() };
        let good = "bare = \"bare\"\nfast = \"ebpf\"\nslow = [\"ptrace\"]\nmax_ratio = 0.1";
        assert!(validate(&args(good), &steps).is_ok());
        assert!(validate(&args(&good.replace("0.1", "1.5")), &steps).unwrap_err().contains("max_ratio"));
        assert!(validate(&args(&good.replace("[\"ptrace\"]", "[]")), &steps).unwrap_err().contains("slow"));
        assert!(validate(&args(&good.replace("[\"ptrace\"]", "[\"nope\"]")), &steps).unwrap_err().contains("nope"));
    }
}

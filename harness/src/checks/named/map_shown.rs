//! `map_shown`: user space shows the whole map, as the kernel holds it.
//!
//! ```toml
//! check = "map_shown"
//! args = { dump = "dump", step = "hello-map", entry = 'uid (\d+): (\d+)' }
//! ```
//!
//! `dump` is a step that printed `bpftool map dump … -j` as the last thing
//! that could change the map; `step` is the student's program, and the last
//! line of its stdout with at least one match of `entry` (two groups: key
//! and value, decimal) must list every entry of the dump and nothing else.
//!
//! A regex on the student's output for the entries the grader seeded
//! cannot see what user space left out: a reader that hides root's entry as
//! noise, or one that stops after the first few keys, still prints the
//! seeded users. Comparing with the whole dump can.

use std::collections::{BTreeMap, HashSet};

use regex::Regex;

use super::args::{only, step_arg, string_arg};
use super::bpf_map::parse_dump;
use super::{NamedCheck, Observations, Outcome, Status};
use crate::checks::{ending, excerpt, step};

pub const CHECK: NamedCheck = NamedCheck { name: "map_shown", validate, evaluate };

fn validate(args: &toml::Table, steps: &HashSet<&str>) -> Result<(), String> {
    only(args, &["dump", "step", "entry"])?;
    step_arg(args, "dump", steps)?;
    step_arg(args, "step", steps)?;
    entry_regex(args)?;
    Ok(())
}

fn entry_regex(args: &toml::Table) -> Result<Regex, String> {
    let text = string_arg(args, "entry")?;
    let re = Regex::new(text).map_err(|e| format!("entry is not a regex: {e}"))?;
    if re.captures_len() != 3 {
        return Err(format!("entry = {text:?} must have two groups, the key and the value"));
    }
    Ok(re)
}

/// The entries of the last line of `text` that shows any.
fn last_table(text: &str, re: &Regex) -> Option<(String, BTreeMap<u64, u64>)> {
    text.lines().rev().find(|l| re.is_match(l)).map(|line| {
        let entries = re
            .captures_iter(line)
            .filter_map(|c| Some((c.get(1)?.as_str().parse().ok()?, c.get(2)?.as_str().parse().ok()?)))
            .collect();
        (line.to_string(), entries)
    })
}

fn evaluate(args: &toml::Table, obs: &Observations) -> Outcome {
    let bad = |m: String| (Status::Bad, m);
    let re = entry_regex(args).map_err(bad)?;
    let dump_step = string_arg(args, "dump").map_err(bad)?;
    let shown_step = string_arg(args, "step").map_err(bad)?;
    let dump = step(obs, dump_step)?;
    let kernel = parse_dump(&dump.stdout).map_err(|e| {
        bad(format!("`{dump_step}` ({}) printed no map: {e}\n{}", ending(dump), excerpt(&dump.stderr, 4)))
    })?;
    let shown = step(obs, shown_step)?;
    let Some((line, table)) = last_table(&shown.stdout, &re) else {
        return Err(bad(format!(
            "`{shown_step}` printed no line with the map's entries (looked for {:?}); its output ends:\n{}",
            re.as_str(),
            excerpt(&shown.stdout, 4)
        )));
    };
    let mut problems = Vec::new();
    for (key, value) in &kernel {
        match table.get(key) {
            None => problems.push(format!("key {key} (the kernel holds {value}) is not shown")),
            Some(v) if v != value => problems.push(format!("key {key} is shown as {v}, the kernel holds {value}")),
            Some(_) => {}
        }
    }
    for (key, v) in &table {
        if !kernel.contains_key(key) {
            problems.push(format!("key {key} is shown as {v}, but the map has no such key"));
        }
    }
    if problems.is_empty() {
        Ok(format!("the last table shows all {} entries of the map, as the kernel holds them", kernel.len()))
    } else {
        Err(bad(format!("{}\n    last table shown: {line}", problems.join("\n"))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use workbook_agent::StepResult;

    // uid 0 -> 7, uid 2345 -> 3: keys and values as raw little-endian bytes.
    const DUMP: &str = r#"[{"key":["0x00","0x00","0x00","0x00"],"value":["0x07","0x00","0x00","0x00","0x00","0x00","0x00","0x00"]},
        {"key":["0x29","0x09","0x00","0x00"],"value":["0x03","0x00","0x00","0x00","0x00","0x00","0x00","0x00"]}]"#;

    fn judge(shown: &str) -> Outcome {
        let mut o = Observations::default();
        for (name, out) in [("dump", DUMP), ("hello-map", shown)] {
            o.steps.insert(name.into(), StepResult { name: name.into(), stdout: out.into(), ..Default::default() });
        }
        let args: toml::Table = toml::from_str(
            r#"dump = "dump"
step = "hello-map"
entry = 'uid (\d+): (\d+)'"#,
        )
        .unwrap();
        validate(&args, &HashSet::from(["dump", "hello-map"])).unwrap();
        evaluate(&args, &o)
    }

    #[test]
    fn the_last_table_must_be_the_whole_map() {
        let ok = judge("uid 0: 2\nuid 0: 7  uid 2345: 3\n");
        assert!(ok.as_ref().is_ok_and(|d| d.contains("all 2 entries")), "{ok:?}");
        // Root hidden as noise: the seeded user alone is not the map.
        let err = judge("uid 0: 7  uid 2345: 3\nuid 2345: 3\n").unwrap_err().1;
        assert!(err.contains("key 0 (the kernel holds 7) is not shown"), "{err}");
        let err = judge("uid 0: 7  uid 2345: 4  uid 99: 1").unwrap_err().1;
        assert!(err.contains("key 2345 is shown as 4, the kernel holds 3"), "{err}");
        assert!(err.contains("key 99 is shown as 1, but the map has no such key"), "{err}");
        let err = judge("Attached.\nnothing to see\n").unwrap_err().1;
        assert!(err.contains("printed no line with the map's entries"), "{err}");
    }

    #[test]
    fn the_entry_pattern_needs_a_key_and_a_value() {
        let steps = HashSet::from(["dump", "x"]);
        let v = |entry: &str| {
            let mut t = toml::Table::new();
            t.insert("dump".into(), "dump".into());
            t.insert("step".into(), "x".into());
            t.insert("entry".into(), entry.into());
            validate(&t, &steps)
        };
        assert!(v(r"uid (\d+)").unwrap_err().contains("two groups"));
        assert!(v(r"uid (\d+").unwrap_err().contains("not a regex"));
        assert!(v(r"uid (\d+): (\d+)").is_ok());
    }
}

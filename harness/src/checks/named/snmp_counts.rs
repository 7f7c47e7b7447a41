//! `snmp_counts`: a BPF map of per-protocol packet counts (a step printed
//! `bpftool map dump … -j`; per-CPU values are summed) must hold, for each
//! key, what a network namespace's kernel counted in its `/proc/net/snmp`
//! (printed by another step): the kernel's own record of what it sent.
//!
//! ```toml
//! check = "snmp_counts"
//! args = { map = "counts", snmp = "snmp", expect = { 1 = "Icmp.OutMsgs", 6 = "Tcp.OutSegs + Tcp.RetransSegs" } }
//! ```
//!
//! Each key's expected value is one counter (`Group.Field`) or a sum of
//! them. Keys that are not named may hold anything.

use std::collections::{BTreeMap, HashSet};

use super::args::{only, step_arg, string_arg};
use super::bpf_map::parse_dump;
use super::{NamedCheck, Observations, Outcome, Status};
use crate::checks::{ending, excerpt, step};

pub const CHECK: NamedCheck = NamedCheck { name: "snmp_counts", validate, evaluate };

/// Map key → the counters whose sum it must equal.
type Expect = BTreeMap<u64, Vec<(String, String)>>;

fn validate(args: &toml::Table, steps: &HashSet<&str>) -> Result<(), String> {
    only(args, &["map", "snmp", "expect"])?;
    step_arg(args, "map", steps)?;
    step_arg(args, "snmp", steps)?;
    let expect = expectations(args)?;
    if expect.is_empty() {
        return Err("expect must name at least one key".into());
    }
    Ok(())
}

/// `"Tcp.OutSegs + Tcp.RetransSegs"` → `[("Tcp", "OutSegs"), ("Tcp", "RetransSegs")]`.
fn counters(text: &str) -> Result<Vec<(String, String)>, String> {
    text.split('+')
        .map(|term| match term.trim().split_once('.') {
            Some((group, field)) if !group.is_empty() && !field.is_empty() => Ok((group.into(), field.into())),
            _ => Err(format!("{term:?} is not a counter (Group.Field, as in Udp.OutDatagrams)")),
        })
        .collect()
}

fn expectations(args: &toml::Table) -> Result<Expect, String> {
    let table =
        args.get("expect").and_then(|v| v.as_table()).ok_or("expect must be a table of key = \"Group.Field\"")?;
    table
        .iter()
        .map(|(key, v)| {
            let key = key.parse().map_err(|_| format!("expect: {key:?} is not a map key (an unsigned integer)"))?;
            let text = v.as_str().ok_or_else(|| format!("expect.{key} must be a string"))?;
            Ok((key, counters(text)?))
        })
        .collect()
}

/// Parses `/proc/net/snmp`: each group is a line of field names followed
/// by a line of values, both starting with `Group:`.
pub fn parse_snmp(text: &str) -> Result<BTreeMap<(String, String), u64>, String> {
    let mut counters = BTreeMap::new();
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    while let Some(names) = lines.next() {
        let (group, names) = names.split_once(':').ok_or_else(|| format!("not an snmp line: {names:?}"))?;
        let values = lines.next().ok_or_else(|| format!("no values after the names of {group}"))?;
        let (again, values) = values.split_once(':').ok_or_else(|| format!("not an snmp line: {values:?}"))?;
        if again != group {
            return Err(format!("the names of {group} are followed by the values of {again}"));
        }
        for (name, value) in names.split_whitespace().zip(values.split_whitespace()) {
            // A few fields (Tcp MaxConn) are signed: -1 means no limit.
            if let Ok(value) = value.parse() {
                counters.insert((group.to_string(), name.to_string()), value);
            }
        }
    }
    if counters.is_empty() {
        return Err("no counters".into());
    }
    Ok(counters)
}

/// What is wrong, one line per key; empty when every key matches.
fn compare(
    map: &BTreeMap<u64, u64>,
    snmp: &BTreeMap<(String, String), u64>,
    expect: &Expect,
) -> Result<(Vec<String>, Vec<String>), String> {
    let (mut problems, mut matched) = (Vec::new(), Vec::new());
    for (key, terms) in expect {
        let mut want = 0;
        for (group, field) in terms {
            want += snmp
                .get(&(group.clone(), field.clone()))
                .ok_or_else(|| format!("/proc/net/snmp has no counter {group}.{field}"))?;
        }
        let what = terms.iter().map(|(g, f)| format!("{g}.{f}")).collect::<Vec<_>>().join(" + ");
        let have = map.get(key).copied().unwrap_or(0);
        if have == want {
            matched.push(format!("{key} = {have}"));
        } else {
            problems.push(format!("key {key} holds {have}, but the peer sent {want} ({what})"));
        }
    }
    Ok((problems, matched))
}

fn evaluate(args: &toml::Table, obs: &Observations) -> Outcome {
    let bad = |m: String| (Status::Bad, m);
    let expect = expectations(args).map_err(bad)?;
    let map_step = string_arg(args, "map").map_err(bad)?;
    let snmp_step = string_arg(args, "snmp").map_err(bad)?;
    let m = step(obs, map_step)?;
    let map = parse_dump(&m.stdout).map_err(|e| {
        let said = if m.stderr.trim().is_empty() { &m.stdout } else { &m.stderr };
        bad(format!("`{map_step}` ({}) printed no map dump: {e}\n{}", ending(m), excerpt(said, 4)))
    })?;
    let s = step(obs, snmp_step)?;
    let snmp = parse_snmp(&s.stdout)
        .map_err(|e| bad(format!("`{snmp_step}` ({}) printed no /proc/net/snmp: {e}", ending(s))))?;
    let (problems, matched) = compare(&map, &snmp, &expect).map_err(bad)?;
    if problems.is_empty() {
        Ok(format!("the map holds what the peer sent: {}", matched.join(", ")))
    } else {
        Err(bad(problems.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The peer's /proc/net/snmp after a run of lab 13 (6.1 kernel).
    const SNMP: &str = include_str!("testdata/snmp_counts.snmp");
    /// `bpftool map dump name counts -j` after the same run (one CPU).
    const DUMP: &str = include_str!("testdata/snmp_counts.json");

    fn args(text: &str) -> toml::Table {
        toml::from_str(text).unwrap()
    }

    const ARGS: &str =
        r#"expect = { 1 = "Icmp.OutMsgs", 6 = "Tcp.OutSegs + Tcp.RetransSegs", 17 = "Udp.OutDatagrams" }"#;

    #[test]
    fn a_real_run_matches() {
        let snmp = parse_snmp(SNMP).unwrap();
        let map = parse_dump(DUMP).unwrap();
        let (problems, matched) = compare(&map, &snmp, &expectations(&args(ARGS)).unwrap()).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(matched.len(), 3);
    }

    #[test]
    fn a_missing_count_is_named() {
        let snmp = parse_snmp(SNMP).unwrap();
        let mut map = parse_dump(DUMP).unwrap();
        *map.get_mut(&17).unwrap() -= 1;
        map.remove(&1);
        let (problems, _) = compare(&map, &snmp, &expectations(&args(ARGS)).unwrap()).unwrap();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("key 1 holds 0"), "{problems:?}");
        assert!(problems[1].contains("(Udp.OutDatagrams)"), "{problems:?}");
    }

    #[test]
    fn snmp_and_args_are_parsed_strictly() {
        let snmp = parse_snmp(SNMP).unwrap();
        assert!(snmp.contains_key(&("Udp".into(), "OutDatagrams".into())));
        assert!(parse_snmp("Ip: Forwarding\nIcmp: 1\n").unwrap_err().contains("followed by"));
        assert!(parse_snmp("").is_err());
        assert!(expectations(&args(r#"expect = { 1 = "OutMsgs" }"#)).unwrap_err().contains("Group.Field"));
        assert!(expectations(&args(r#"expect = { x = "Icmp.OutMsgs" }"#)).is_err());
        let unknown =
            compare(&BTreeMap::new(), &snmp, &expectations(&args(r#"expect = { 1 = "Icmp.Nope" }"#)).unwrap());
        assert!(unknown.unwrap_err().contains("Icmp.Nope"));
        let steps = HashSet::from(["counts", "snmp"]);
        assert!(validate(&args(&format!("map = \"counts\"\nsnmp = \"snmp\"\n{ARGS}")), &steps).is_ok());
        assert!(validate(&args(&format!("map = \"nope\"\nsnmp = \"snmp\"\n{ARGS}")), &steps).is_err());
    }
}

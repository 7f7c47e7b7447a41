//! `bpf_map`: a step printed `bpftool map dump … -j`; the map must hold the
//! expected entries and, unless told otherwise, nothing else.
//!
//! ```toml
//! check = "bpf_map"
//! # exact values:
//! args = { step = "dump", equals = { 80 = 6, 443 = 7 } }
//! # counters that must have moved:
//! args = { step = "execve-hits", at_least = { 59 = 1 } }
//! # a program array: each slot holds the program of that name, as listed
//! # by a step that printed `bpftool prog show -j`:
//! args = { step = "prog-array", progs = "progs", prog_names = { 59 = "handle_execve" } }
//! # optional: allow = [35] (keys that may also be there),
//! #           exact = false (any other key may be there)
//! ```
//!
//! Keys are unsigned integers (decimal or 0x-hex). Raw key and value bytes
//! are read as little-endian unsigned integers (the guest is x86-64);
//! per-CPU values are summed.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::args::{only, step_arg, string_arg};
use super::{NamedCheck, Observations, Outcome, Status};
use crate::checks::{ending, excerpt, step};

pub const CHECK: NamedCheck = NamedCheck { name: "bpf_map", validate, evaluate };

const KEYS: &[&str] = &["step", "equals", "at_least", "prog_names", "progs", "allow", "exact"];

/// What the manifest expects of the map.
#[derive(Debug, Clone, Default, PartialEq)]
struct Expect {
    equals: BTreeMap<u64, u64>,
    at_least: BTreeMap<u64, u64>,
    prog_names: BTreeMap<u64, String>,
    allow: BTreeSet<u64>,
    exact: bool,
}

fn validate(args: &toml::Table, steps: &HashSet<&str>) -> Result<(), String> {
    only(args, KEYS)?;
    step_arg(args, "step", steps)?;
    let expect = expectations(args)?;
    if !["equals", "at_least", "prog_names"].iter().any(|k| args.contains_key(*k)) {
        return Err("give at least one of equals, at_least, prog_names (equals = {} means: empty)".into());
    }
    match (expect.prog_names.is_empty(), args.contains_key("progs")) {
        (false, false) => {
            return Err("prog_names needs progs = \"<step printing bpftool prog show -j>\"".into());
        }
        (true, true) => return Err("progs is only used with prog_names".into()),
        (false, true) => {
            step_arg(args, "progs", steps)?;
        }
        (true, false) => {}
    }
    Ok(())
}

fn key_of(text: &str) -> Result<u64, String> {
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|_| format!("{text:?} is not a map key (an unsigned integer)"))
}

fn table_of<T>(
    args: &toml::Table,
    field: &str,
    value: impl Fn(&toml::Value) -> Option<T>,
    what: &str,
) -> Result<BTreeMap<u64, T>, String> {
    let Some(v) = args.get(field) else {
        return Ok(BTreeMap::new());
    };
    let table = v.as_table().ok_or_else(|| format!("{field} must be a table of key = {what}"))?;
    table
        .iter()
        .map(|(k, v)| {
            let key = key_of(k).map_err(|e| format!("{field}: {e}"))?;
            let value = value(v).ok_or_else(|| format!("{field}.{k} = {v} is not {what}"))?;
            Ok((key, value))
        })
        .collect()
}

fn expectations(args: &toml::Table) -> Result<Expect, String> {
    let count = |v: &toml::Value| v.as_integer().and_then(|i| u64::try_from(i).ok());
    let allow = match args.get("allow") {
        None => BTreeSet::new(),
        Some(toml::Value::Array(items)) => items
            .iter()
            .map(|v| count(v).ok_or_else(|| format!("allow: {v} is not a map key")))
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(format!("allow must be a list of keys, not {other}")),
    };
    let exact = match args.get("exact") {
        None => true,
        Some(v) => v.as_bool().ok_or_else(|| format!("exact must be true or false, not {v}"))?,
    };
    Ok(Expect {
        equals: table_of(args, "equals", count, "an unsigned integer")?,
        at_least: table_of(args, "at_least", count, "an unsigned integer")?,
        prog_names: table_of(args, "prog_names", |v| v.as_str().map(str::to_string), "a program name")?,
        allow,
        exact,
    })
}

/// Reads bytes printed as `["0x3b","0x00",…]` as a little-endian integer.
fn le_bytes(v: &serde_json::Value) -> Option<u64> {
    let bytes = v.as_array()?;
    if bytes.is_empty() || bytes.len() > 8 {
        return None;
    }
    let mut n = 0u64;
    for (i, b) in bytes.iter().enumerate() {
        let b = u8::from_str_radix(b.as_str()?.strip_prefix("0x")?, 16).ok()?;
        n |= u64::from(b) << (8 * i);
    }
    Some(n)
}

/// A key or value as bpftool printed it: raw bytes, or a BTF-formatted
/// integer.
fn number(v: &serde_json::Value) -> Option<u64> {
    v.as_u64().or_else(|| le_bytes(v))
}

/// Parses `bpftool map dump -j` output into key → value.
pub fn parse_dump(text: &str) -> Result<BTreeMap<u64, u64>, String> {
    let doc: serde_json::Value = serde_json::from_str(text.trim()).map_err(|e| format!("not JSON ({e})"))?;
    if let Some(err) = doc.get("error").and_then(|e| e.as_str()) {
        return Err(format!("bpftool said: {err}"));
    }
    let entries = doc.as_array().ok_or("not a JSON array of entries")?;
    let mut map = BTreeMap::new();
    for entry in entries {
        // With BTF, bpftool adds a "formatted" copy; the raw bytes are enough.
        let formatted = entry.get("formatted");
        let field = |name: &str| entry.get(name).or_else(|| formatted.and_then(|f| f.get(name)));
        let key = field("key").and_then(number).ok_or_else(|| format!("an entry without an integer key: {entry}"))?;
        let value = match (field("value"), field("values")) {
            (Some(v), _) => number(v),
            // Per-CPU maps: one value per CPU; a counter is their sum.
            (None, Some(per_cpu)) => per_cpu
                .as_array()
                .and_then(|cpus| cpus.iter().map(|c| c.get("value").and_then(number)).sum::<Option<u64>>()),
            (None, None) => None,
        }
        .ok_or_else(|| format!("an entry without an integer value: {entry}"))?;
        map.insert(key, value);
    }
    Ok(map)
}

/// Parses `bpftool prog show -j` into program id → name.
pub fn parse_progs(text: &str) -> Result<BTreeMap<u64, String>, String> {
    let doc: serde_json::Value = serde_json::from_str(text.trim()).map_err(|e| format!("not JSON ({e})"))?;
    let progs = doc.as_array().ok_or("not a JSON array of programs")?;
    Ok(progs
        .iter()
        .filter_map(|p| {
            let id = p.get("id")?.as_u64()?;
            let name = p.get("name").and_then(|n| n.as_str()).unwrap_or("(no name)");
            Some((id, name.to_string()))
        })
        .collect())
}

/// What is wrong with `map`, one line per problem; empty when all is well.
fn compare(map: &BTreeMap<u64, u64>, expect: &Expect, progs: &BTreeMap<u64, String>) -> Vec<String> {
    let mut problems = Vec::new();
    for (key, want) in &expect.equals {
        match map.get(key) {
            None => problems.push(format!("key {key} is missing (expected {want})")),
            Some(have) if have != want => problems.push(format!("key {key} holds {have}, expected {want}")),
            Some(_) => {}
        }
    }
    for (key, min) in &expect.at_least {
        match map.get(key) {
            None => problems.push(format!("key {key} is missing (expected at least {min})")),
            Some(have) if have < min => problems.push(format!("key {key} holds {have}, expected at least {min}")),
            Some(_) => {}
        }
    }
    for (key, name) in &expect.prog_names {
        match map.get(key).map(|id| (id, progs.get(id))) {
            None => problems.push(format!("slot {key} is empty (expected program {name})")),
            Some((id, None)) => {
                problems.push(format!("slot {key} holds program id {id}, which bpftool prog show did not list"))
            }
            Some((id, Some(have))) if have != name => {
                problems.push(format!("slot {key} holds program {have} (id {id}), expected {name}"))
            }
            Some(_) => {}
        }
    }
    if expect.exact {
        let named: BTreeSet<u64> = expect
            .equals
            .keys()
            .chain(expect.at_least.keys())
            .chain(expect.prog_names.keys())
            .chain(expect.allow.iter())
            .copied()
            .collect();
        for key in map.keys().filter(|k| !named.contains(k)) {
            problems.push(format!("key {key} should not be there"));
        }
    }
    problems
}

/// The map's contents in a line: `80 = 6, 443 = 7`.
fn show(map: &BTreeMap<u64, u64>, progs: &BTreeMap<u64, String>) -> String {
    if map.is_empty() {
        return "nothing".into();
    }
    let shown: Vec<String> = map
        .iter()
        .take(12)
        .map(|(k, v)| match progs.get(v) {
            Some(name) => format!("{k} = prog {v} ({name})"),
            None => format!("{k} = {v}"),
        })
        .collect();
    let more = if map.len() > shown.len() { format!(", … ({} entries)", map.len()) } else { String::new() };
    format!("{}{more}", shown.join(", "))
}

fn evaluate(args: &toml::Table, obs: &Observations) -> Outcome {
    let bad = |m: String| (Status::Bad, m);
    let expect = expectations(args).map_err(bad)?;
    let name = string_arg(args, "step").map_err(bad)?;
    let s = step(obs, name)?;
    let map = parse_dump(&s.stdout).map_err(|e| {
        let said = if s.stderr.trim().is_empty() { &s.stdout } else { &s.stderr };
        bad(format!("`{name}` ({}) printed no map dump: {e}\n{}", ending(s), excerpt(said, 4)))
    })?;
    let progs = match args.get("progs").and_then(|v| v.as_str()) {
        None => BTreeMap::new(),
        Some(progs_step) => {
            let p = step(obs, progs_step)?;
            parse_progs(&p.stdout).map_err(|e| bad(format!("`{progs_step}` printed no program list: {e}")))?
        }
    };
    let problems = compare(&map, &expect, &progs);
    if problems.is_empty() {
        Ok(format!("`{name}`: the map holds {}", show(&map, &progs)))
    } else {
        Err(bad(format!("`{name}`: {}\n    the map holds {}", problems.join("; "), show(&map, &progs))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> toml::Table {
        toml::from_str(text).unwrap()
    }

    const RAW: &str = r#"[{"key":["0x50","0x00","0x00","0x00"],"value":["0x06","0x00","0x00","0x00","0x00","0x00","0x00","0x00"]},{"key":["0xbb","0x01","0x00","0x00"],"value":["0x07","0x00","0x00","0x00","0x00","0x00","0x00","0x00"]}]"#;

    #[test]
    fn raw_bytes_are_little_endian() {
        let map = parse_dump(RAW).unwrap();
        assert_eq!(map, BTreeMap::from([(80, 6), (443, 7)]));
    }

    #[test]
    fn formatted_and_per_cpu_entries_are_read() {
        let btf = r#"[{"key":59,"value":3},{"formatted":{"key":230,"value":2},"key":["0xe6"]}]"#;
        assert_eq!(parse_dump(btf).unwrap(), BTreeMap::from([(59, 3), (230, 2)]));
        let per_cpu = r#"[{"key":["0x01","0x00","0x00","0x00"],"values":[{"cpu":0,"value":["0x02"]},{"cpu":1,"value":["0x03"]}]}]"#;
        assert_eq!(parse_dump(per_cpu).unwrap(), BTreeMap::from([(1, 5)]));
        assert!(
            parse_dump(r#"{"error":"bpf obj get (/sys/fs/bpf): No such file or directory"}"#)
                .unwrap_err()
                .contains("No such file")
        );
        assert!(parse_dump("").is_err());
    }

    #[test]
    fn exact_contents() {
        let map = parse_dump(RAW).unwrap();
        let none = BTreeMap::new();
        let e = expectations(&args("equals = { 80 = 6, 443 = 7 }")).unwrap();
        assert!(compare(&map, &e, &none).is_empty());
        let e = expectations(&args("equals = { 80 = 5, 22 = 3 }")).unwrap();
        let problems = compare(&map, &e, &none);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("22 is missing") && problems[1].contains("80 holds 6"));
        assert!(problems[2].contains("443 should not be there"));
        let e = expectations(&args("equals = { 80 = 6 }\nallow = [443]")).unwrap();
        assert!(compare(&map, &e, &none).is_empty());
        let e = expectations(&args("equals = { 80 = 6 }\nexact = false")).unwrap();
        assert!(compare(&map, &e, &none).is_empty());
    }

    #[test]
    fn counters_and_program_slots() {
        let map = BTreeMap::from([(59, 12), (230, 0x1f)]);
        let e = expectations(&args("at_least = { 59 = 1, 0xe6 = 1 }")).unwrap();
        assert!(compare(&map, &e, &BTreeMap::new()).is_empty());
        let progs = parse_progs(r#"[{"id":12,"name":"handle_execve"},{"id":31,"name":"handle_timer"}]"#).unwrap();
        let e = expectations(&args("prog_names = { 59 = \"handle_execve\", 230 = \"handle_timer\" }")).unwrap();
        assert!(compare(&map, &e, &progs).is_empty());
        let e = expectations(&args("prog_names = { 59 = \"handle_timer\", 35 = \"handle_timer\" }")).unwrap();
        let problems = compare(&map, &e, &progs);
        assert!(problems[0].contains("slot 35 is empty"), "{problems:?}");
        assert!(problems[1].contains("slot 59 holds program handle_execve"), "{problems:?}");
    }

    #[test]
    fn validation_names_the_problem() {
        let steps = HashSet::from(["dump", "progs"]);
        assert!(validate(&args("step = \"dump\"\nequals = {}"), &steps).is_ok());
        assert!(validate(&args("step = \"dump\""), &steps).unwrap_err().contains("at least one"));
        assert!(validate(&args("step = \"nope\"\nequals = {}"), &steps).is_err());
        assert!(validate(&args("step = \"dump\"\nequals = { x = 1 }"), &steps).unwrap_err().contains("\"x\""));
        assert!(validate(&args("step = \"dump\"\nprog_names = { 1 = \"p\" }"), &steps).unwrap_err().contains("progs"));
    }
}

//! Seeded workload parameters: `[params]` in `lab.toml` and the
//! `{{name}}` templates that use them.
//!
//! A grade is only worth something when the right answer cannot be pasted:
//! every run draws its workload (how many times a command runs, the name it
//! runs under, frame lengths, user and group IDs, …) from a seed. The seed
//! is printed with the verdict and stored in the JSON report, and
//! `labctl lab N --seed S` replays the same workload exactly.
//!
//! ```toml
//! [params]
//! execs = { int = [3, 9] }                      # an integer in 3..=9
//! user  = { int = [2000, 29999] }
//! group = { int = [2000, 29999], not = ["user"] }  # never equal to user
//! name  = { name = 8 }                          # 8 random lowercase letters
//! lens  = { ints = [4, 61, 1500] }              # 4 distinct integers in 61..=1500
//! proto = { pick = ["tcp", "udp"] }
//!
//! [[steps]]
//! run = ["/bin/sh", "-c", "for i in $(seq {{execs}}); do /tmp/{{name}}; done"]
//! uid = "{{user}}"          # a whole-string template keeps the value's type
//! ```
//!
//! Templates may add or subtract a constant (`{{execs+1}}`). Every string
//! of the manifest but `[params]` is rendered, table keys included; a list
//! inside a longer string is written space-separated.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use regex::Regex;
use serde::Deserialize;

/// One parameter's generator. Exactly one of `int`, `ints`, `name`, `pick`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    /// `[lo, hi]`: an integer in `lo..=hi`.
    #[serde(default)]
    pub int: Option<[i64; 2]>,
    /// `[count, lo, hi]`: `count` distinct integers in `lo..=hi`, in random order.
    #[serde(default)]
    pub ints: Option<[i64; 3]>,
    /// A name of this many lowercase letters (a file or command name no
    /// one can guess).
    #[serde(default)]
    pub name: Option<usize>,
    /// One of these values.
    #[serde(default)]
    pub pick: Option<Vec<toml::Value>>,
    /// For `int`: other integer parameters this one must differ from (a
    /// group ID that is not the user ID).
    #[serde(default)]
    pub not: Vec<String>,
}

/// A drawn value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    Str(String),
    List(Vec<Value>),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(i) => write!(f, "{i}"),
            Value::Str(s) => f.write_str(s),
            Value::List(items) => {
                let words: Vec<String> = items.iter().map(ToString::to_string).collect();
                f.write_str(&words.join(" "))
            }
        }
    }
}

impl Value {
    fn to_toml(&self) -> toml::Value {
        match self {
            Value::Int(i) => toml::Value::Integer(*i),
            Value::Str(s) => toml::Value::String(s.clone()),
            Value::List(items) => toml::Value::Array(items.iter().map(Value::to_toml).collect()),
        }
    }

    fn from_toml(v: &toml::Value) -> Option<Value> {
        match v {
            toml::Value::Integer(i) => Some(Value::Int(*i)),
            toml::Value::String(s) => Some(Value::Str(s.clone())),
            _ => None,
        }
    }
}

/// Every parameter's value for one seed, plus `seed` itself.
pub type Values = BTreeMap<String, Value>;

/// Checks the generators; the error is (parameter, message).
pub fn validate(specs: &BTreeMap<String, ParamSpec>) -> Result<(), (String, String)> {
    for (name, spec) in specs {
        let err = |m: String| Err((name.clone(), m));
        if !NAME.is_match(name) || name == "seed" {
            return err("a parameter name is lowercase letters, digits and _, and not `seed`".into());
        }
        let kinds = [spec.int.is_some(), spec.ints.is_some(), spec.name.is_some(), spec.pick.is_some()];
        if kinds.iter().filter(|k| **k).count() != 1 {
            return err("give exactly one of int = [lo, hi], ints = [count, lo, hi], name = LEN, pick = [..]".into());
        }
        if let Some([lo, hi]) = spec.int {
            if lo > hi {
                return err(format!("int = [{lo}, {hi}] is an empty range"));
            }
        }
        if let Some([count, lo, hi]) = spec.ints {
            if count < 1 || lo > hi || hi - lo + 1 < count {
                return err(format!("ints = [{count}, {lo}, {hi}] cannot give {count} distinct integers"));
            }
        }
        if let Some(len) = spec.name {
            if !(4..=15).contains(&len) {
                return err(format!("name = {len}: give 4 to 15 letters (15 fits a task's comm)"));
            }
        }
        if let Some(values) = &spec.pick {
            if values.is_empty() || values.iter().any(|v| Value::from_toml(v).is_none()) {
                return err("pick takes a non-empty list of strings or integers".into());
            }
        }
        for other in &spec.not {
            let Some(o) = specs.get(other) else {
                return err(format!("not = [{other:?}]: there is no parameter {other:?}"));
            };
            if spec.int.is_none() || o.int.is_none() {
                return err(format!("not = [{other:?}]: both must be int parameters"));
            }
            if !o.not.is_empty() {
                return err(format!("not = [{other:?}]: {other} has a `not` of its own; keep one side plain"));
            }
            let ([lo, hi], [olo, ohi]) = (spec.int.unwrap_or_default(), o.int.unwrap_or_default());
            if lo == hi && olo == ohi && lo == olo {
                return err(format!("not = [{other:?}]: both ranges hold the single value {lo}"));
            }
        }
    }
    Ok(())
}

static NAME: LazyLock<Regex> = LazyLock::new(|| Regex::new("^[a-z][a-z0-9_]*$").expect("valid"));
static TEMPLATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\{\{\s*([a-z][a-z0-9_]*)\s*(?:([+-])\s*(\d+)\s*)?\}\}").expect("valid template regex")
});

/// Draws every parameter from `seed`. The same seed and specs always give
/// the same values (ChaCha8 is value-stable across versions).
pub fn draw(specs: &BTreeMap<String, ParamSpec>, seed: u64) -> Values {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut values = Values::new();
    values.insert("seed".into(), Value::Int(seed as i64));
    // Plain parameters first, in name order; then those that must differ
    // from them.
    let (plain, constrained): (Vec<_>, Vec<_>) = specs.iter().partition(|(_, s)| s.not.is_empty());
    for (name, spec) in plain.into_iter().chain(constrained) {
        let value = loop {
            let v = draw_one(spec, &mut rng);
            let clashes = spec.not.iter().any(|o| values.get(o) == Some(&v));
            if !clashes {
                break v;
            }
        };
        values.insert(name.clone(), value);
    }
    values
}

fn draw_one(spec: &ParamSpec, rng: &mut ChaCha8Rng) -> Value {
    if let Some([lo, hi]) = spec.int {
        return Value::Int(rng.random_range(lo..=hi));
    }
    if let Some([count, lo, hi]) = spec.ints {
        let mut picked: Vec<i64> = Vec::new();
        while (picked.len() as i64) < count {
            let v = rng.random_range(lo..=hi);
            if !picked.contains(&v) {
                picked.push(v);
            }
        }
        return Value::List(picked.into_iter().map(Value::Int).collect());
    }
    if let Some(len) = spec.name {
        return Value::Str((0..len).map(|_| rng.random_range(b'a'..=b'z') as char).collect());
    }
    let mut choices: Vec<Value> = spec.pick.iter().flatten().filter_map(Value::from_toml).collect();
    choices.shuffle(rng);
    choices.into_iter().next().unwrap_or(Value::Int(0))
}

/// Renders every template in `value`; `at` is the field path for errors.
pub fn render(value: &toml::Value, values: &Values, at: &str) -> Result<toml::Value, (String, String)> {
    Ok(match value {
        toml::Value::String(s) => render_str(s, values).map_err(|m| (at.to_string(), m))?,
        toml::Value::Array(items) => toml::Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| render(v, values, &format!("{at}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        toml::Value::Table(t) => toml::Value::Table(render_table(t, values, at)?),
        other => other.clone(),
    })
}

pub fn render_table(t: &toml::Table, values: &Values, at: &str) -> Result<toml::Table, (String, String)> {
    let mut out = toml::Table::new();
    for (k, v) in t {
        let field = if at.is_empty() { k.clone() } else { format!("{at}.{k}") };
        let key = match render_str(k, values).map_err(|m| (field.clone(), m))? {
            toml::Value::String(s) => s,
            other => other.to_string(),
        };
        out.insert(key, render(v, values, &field)?);
    }
    Ok(out)
}

/// A string that is one template becomes the value itself (an integer
/// stays an integer); templates inside a longer string become text.
fn render_str(s: &str, values: &Values) -> Result<toml::Value, String> {
    if !s.contains("{{") {
        return Ok(toml::Value::String(s.to_string()));
    }
    if let Some(m) = TEMPLATE.captures(s).filter(|c| c.get(0).is_some_and(|m| m.as_str() == s)) {
        return Ok(evaluate(&m, values)?.to_toml());
    }
    let mut error = None;
    let text = TEMPLATE.replace_all(s, |c: &regex::Captures<'_>| match evaluate(c, values) {
        Ok(v) => v.to_string(),
        Err(e) => {
            error.get_or_insert(e);
            String::new()
        }
    });
    if let Some(e) = error {
        return Err(e);
    }
    if text.contains("{{") {
        return Err(format!("{s:?} has a `{{{{` that is not a template like {{{{name}}}} or {{{{name+1}}}}"));
    }
    Ok(toml::Value::String(text.into_owned()))
}

fn evaluate(c: &regex::Captures<'_>, values: &Values) -> Result<Value, String> {
    let name = &c[1];
    let value = values.get(name).ok_or_else(|| {
        let known: Vec<&str> = values.keys().map(String::as_str).collect();
        format!("{{{{{name}}}}} names no parameter (known: {})", known.join(", "))
    })?;
    let Some(op) = c.get(2) else { return Ok(value.clone()) };
    let k: i64 = c[3].parse().map_err(|_| format!("{} is too large", &c[3]))?;
    match value {
        Value::Int(i) => Ok(Value::Int(if op.as_str() == "+" { i + k } else { i - k })),
        _ => Err(format!("{{{{{name}{}{k}}}}}: only an integer parameter takes + or -", op.as_str())),
    }
}

/// A hint to show outside a run (`labctl hint`): each template becomes its
/// parameter's name in angle brackets, since no seed was drawn.
pub fn placeholders(s: &str) -> String {
    TEMPLATE
        .replace_all(s, |c: &regex::Captures<'_>| match (c.get(2), c.get(3)) {
            (Some(op), Some(k)) => format!("<{}{}{}>", &c[1], op.as_str(), k.as_str()),
            _ => format!("<{}>", &c[1]),
        })
        .into_owned()
}

/// A fresh seed for a run that was not given one.
pub fn fresh_seed() -> u64 {
    // Small enough to type back with --seed.
    rand::random::<u64>() % 1_000_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs(text: &str) -> BTreeMap<String, ParamSpec> {
        toml::from_str(text).unwrap()
    }

    const SPECS: &str = r#"
execs = { int = [3, 9] }
user = { int = [2000, 2001] }
group = { int = [2000, 2001], not = ["user"] }
name = { name = 8 }
lens = { ints = [4, 61, 70] }
proto = { pick = ["tcp", "udp"] }
"#;

    #[test]
    fn the_same_seed_draws_the_same_values_and_another_seed_others() {
        let s = specs(SPECS);
        validate(&s).unwrap();
        assert_eq!(draw(&s, 7), draw(&s, 7));
        let differ = (0..20).filter(|seed| draw(&s, *seed) != draw(&s, 7)).count();
        assert!(differ >= 19, "only {differ} of 20 seeds drew other values");
    }

    #[test]
    fn drawn_values_respect_their_generators() {
        let s = specs(SPECS);
        for seed in 0..50 {
            let v = draw(&s, seed);
            let Value::Int(execs) = v["execs"] else { panic!() };
            assert!((3..=9).contains(&execs));
            assert_ne!(v["user"], v["group"], "seed {seed}: gid must differ from uid");
            let Value::Str(name) = &v["name"] else { panic!() };
            assert!(name.len() == 8 && name.chars().all(|c| c.is_ascii_lowercase()));
            let Value::List(lens) = &v["lens"] else { panic!() };
            let mut ints: Vec<_> = lens.iter().map(|l| l.to_string()).collect();
            ints.sort();
            ints.dedup();
            assert_eq!(ints.len(), 4);
            assert!(matches!(&v["proto"], Value::Str(p) if p == "tcp" || p == "udp"));
        }
    }

    #[test]
    fn templates_keep_types_when_whole_and_become_text_inside_strings() {
        let s = specs(SPECS);
        let v = draw(&s, 1);
        let table: toml::Table = toml::from_str(
            r#"uid = "{{user}}"
run = ["/bin/sh", "-c", "for n in {{lens}}; do echo {{name}} $n; done", "{{execs+1}}"]
equals = { "{{user}}" = "{{execs}}" }"#,
        )
        .unwrap();
        let out = render_table(&table, &v, "").unwrap();
        assert_eq!(out["uid"], v["user"].to_toml());
        let run = out["run"].as_array().unwrap();
        assert!(run[2].as_str().unwrap().contains(&v["name"].to_string()));
        assert!(run[2].as_str().unwrap().contains(&v["lens"].to_string()));
        let Value::Int(execs) = v["execs"] else { panic!() };
        assert_eq!(run[3], toml::Value::Integer(execs + 1));
        assert_eq!(out["equals"].as_table().unwrap()[&v["user"].to_string()], toml::Value::Integer(execs));
    }

    #[test]
    fn an_unknown_parameter_names_the_field_and_the_known_ones() {
        let table: toml::Table = toml::from_str(r#"steps = [{ run = ["x", "{{usr}}"] }]"#).unwrap();
        let (field, msg) = render_table(&table, &draw(&specs(SPECS), 0), "").unwrap_err();
        assert_eq!(field, "steps[0].run[1]");
        assert!(msg.contains("usr") && msg.contains("user"), "{msg}");
    }

    #[test]
    fn bad_generators_are_refused_with_the_reason() {
        for (text, needle) in [
            ("a = { int = [5, 1] }", "empty range"),
            ("a = { ints = [5, 1, 3] }", "distinct"),
            ("a = { int = [1, 2], name = 5 }", "exactly one"),
            ("a = { int = [1, 2], not = [\"b\"] }", "no parameter"),
            ("a = { int = [1, 1], not = [\"b\"] }\nb = { int = [1, 1] }", "single value"),
            ("seed = { int = [1, 2] }", "not `seed`"),
        ] {
            let (_, msg) = validate(&specs(text)).unwrap_err();
            assert!(msg.contains(needle), "{text}: {msg}");
        }
    }

    #[test]
    fn hints_show_placeholders_outside_a_run() {
        assert_eq!(placeholders("uid {{user}} ran {{execs+1}} times"), "uid <user> ran <execs+1> times");
    }
}

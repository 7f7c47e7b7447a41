//! Checks decide, from what the guest observed, whether a lab passed.
//!
//! A failed check is a [`Verdict`], not an error: the student's code is
//! expected to fail while it is being written.

pub mod named;

use std::collections::BTreeMap;

use regex::Regex;
use serde::Serialize;
use workbook_agent::StepResult;

use crate::manifest::{CheckKind, CheckSpec, Manifest, StreamSel};

/// Everything the guest reported about one run.
#[derive(Debug, Clone, Default)]
pub struct Observations {
    pub steps: BTreeMap<String, StepResult>,
    /// Collected guest files: path to contents, or the error reading it.
    pub files: BTreeMap<String, Result<String, String>>,
    /// The sha256 (hex) of each lab binary the harness built and shipped
    /// to /lab/bin, by file name.
    pub built: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Good,
    Bad,
    /// What the check needs was never observed (the step did not run).
    Missing,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Good => "GOOD",
            Status::Bad => "BAD",
            Status::Missing => "MISSING",
        }
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub name: String,
    pub status: Status,
    pub passed: bool,
    /// What was seen, in a sentence or a short table.
    pub detail: String,
    /// The first tier of hints, shown when the check did not pass.
    pub hint: Option<String>,
    pub points: u32,
}

/// Evaluates every check of the manifest, in order.
pub fn evaluate(manifest: &Manifest, obs: &Observations) -> Vec<Verdict> {
    manifest.checks.iter().map(|c| evaluate_one(c, obs)).collect()
}

/// The result of one check before the hint and points are attached.
pub type Outcome = Result<String, (Status, String)>;

pub fn evaluate_one(check: &CheckSpec, obs: &Observations) -> Verdict {
    let outcome = match check.kind {
        CheckKind::Named => named::evaluate(check.check.as_deref().unwrap_or(""), &check.args, obs),
        _ => step_for(check, obs).and_then(|step| match check.kind {
            CheckKind::ExitCode => exit_code(check, step),
            CheckKind::Output => output(check, step),
            CheckKind::Json => json(check, step),
            CheckKind::Named => unreachable!(),
        }),
    };
    let (status, detail) = match outcome {
        Ok(detail) => (Status::Good, detail),
        Err((status, detail)) => (status, detail),
    };
    Verdict {
        name: check.name.clone(),
        passed: status == Status::Good,
        hint: (status != Status::Good).then(|| check.hints.first().cloned()).flatten(),
        status,
        detail,
        points: check.points(),
    }
}

/// The named step's result, or MISSING when it never ran.
pub fn step<'a>(obs: &'a Observations, name: &str) -> Result<&'a StepResult, (Status, String)> {
    let s = obs.steps.get(name).ok_or_else(|| (Status::Missing, format!("step `{name}` never reported a result")))?;
    if let Some(e) = &s.spawn_error {
        return Err((Status::Bad, format!("step `{name}` could not start: {e}")));
    }
    Ok(s)
}

fn step_for<'a>(check: &CheckSpec, obs: &'a Observations) -> Result<&'a StepResult, (Status, String)> {
    step(obs, check.step.as_deref().unwrap_or_default())
}

/// How a step ended, in words.
pub fn ending(s: &StepResult) -> String {
    match (s.timed_out, s.exit_code, s.signal) {
        (true, ..) => format!("timed out after {} ms", s.duration_ms),
        (_, Some(code), _) => format!("exited with status {code}"),
        (_, None, Some(sig)) => format!("was killed by signal {sig}"),
        _ => "ended in an unknown way".into(),
    }
}

fn exit_code(check: &CheckSpec, s: &StepResult) -> Outcome {
    let code = s.exit_code.filter(|_| !s.timed_out);
    let want = check.equals.as_ref().and_then(|v| v.as_i64());
    let avoid = check.not_equals.as_ref().and_then(|v| v.as_i64());
    let ok = match (code, want, avoid) {
        (Some(c), Some(w), _) => i64::from(c) == w,
        (Some(c), None, Some(a)) => i64::from(c) != a,
        _ => false,
    };
    let what = format!("`{}` {}", s.name, ending(s));
    let expected = match (want, avoid) {
        (Some(w), _) => format!("expected status {w}"),
        (None, Some(a)) => format!("expected a status other than {a}"),
        _ => String::new(),
    };
    if ok { Ok(what) } else { Err((Status::Bad, format!("{what}; {expected}{}", tail_of(s)))) }
}

/// The last lines of a step's stderr, to show next to a failure.
fn tail_of(s: &StepResult) -> String {
    let lines: Vec<&str> = s.stderr.lines().collect();
    if lines.is_empty() {
        return String::new();
    }
    let start = lines.len().saturating_sub(5);
    format!("\n  stderr (last lines):\n    {}", lines[start..].join("\n    "))
}

/// The text a check reads from a step.
pub fn text_of(s: &StepResult, sel: StreamSel) -> String {
    match sel {
        StreamSel::Stdout => s.stdout.clone(),
        StreamSel::Stderr => s.stderr.clone(),
        StreamSel::Both => format!("{}{}", s.stdout, s.stderr),
    }
}

fn stream_name(sel: StreamSel) -> &'static str {
    match sel {
        StreamSel::Stdout => "stdout",
        StreamSel::Stderr => "stderr",
        StreamSel::Both => "output",
    }
}

fn output(check: &CheckSpec, s: &StepResult) -> Outcome {
    let text = text_of(s, check.stream);
    let where_ = format!("the {} of `{}`", stream_name(check.stream), s.name);
    let mut problems = Vec::new();
    for needle in &check.contains {
        if !text.contains(needle.as_str()) {
            problems.push(format!("{where_} does not contain {needle:?}"));
        }
    }
    for needle in &check.not_contains {
        if text.contains(needle.as_str()) {
            problems.push(format!("{where_} contains {needle:?}"));
        }
    }
    for pattern in &check.regex {
        // Validation compiled every pattern already.
        let re = Regex::new(pattern).expect("validated regex");
        if !re.is_match(&text) {
            problems.push(format!("{where_} has no match for /{pattern}/"));
        }
    }
    if problems.is_empty() {
        return Ok(format!("{where_} is as expected"));
    }
    let shown = excerpt(&text, 8);
    Err((
        Status::Bad,
        format!("{}\n  {} ({} lines) ended with:\n{shown}", problems.join("; "), where_, text.lines().count()),
    ))
}

/// The last `n` lines of `text`, indented, or a note that it is empty.
pub fn excerpt(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return "    (nothing)".into();
    }
    let start = lines.len().saturating_sub(n);
    lines[start..].iter().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
}

fn json(check: &CheckSpec, s: &StepResult) -> Outcome {
    let text = text_of(s, check.stream);
    let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        (Status::Bad, format!("the output of `{}` is not JSON ({e}); `{}` {}", s.name, s.name, ending(s)))
    })?;
    let pointer = check.pointer.as_deref().unwrap_or("");
    let value = doc
        .pointer(pointer)
        .ok_or_else(|| (Status::Bad, format!("the output of `{}` has nothing at {pointer:?}", s.name)))?;
    if let Some(want) = &check.equals {
        return if value == want {
            Ok(format!("{pointer:?} is {want}"))
        } else {
            Err((Status::Bad, format!("{pointer:?} is {value}, expected {want}")))
        };
    }
    let subset = check.any.as_ref().expect("validation requires equals or any");
    let items = value.as_array().ok_or_else(|| (Status::Bad, format!("{pointer:?} is not an array: {value}")))?;
    if items.iter().any(|item| is_subset(subset, item)) {
        Ok(format!("an entry at {pointer:?} matches {subset}"))
    } else {
        Err((Status::Bad, format!("none of the {} entries at {pointer:?} matches {subset}", items.len())))
    }
}

/// Whether every field of `want` is in `have` with the same value (objects
/// recursively; other values compared whole).
pub fn is_subset(want: &serde_json::Value, have: &serde_json::Value) -> bool {
    match (want, have) {
        (serde_json::Value::Object(w), serde_json::Value::Object(h)) => {
            w.iter().all(|(k, v)| h.get(k).is_some_and(|hv| is_subset(v, hv)))
        }
        _ => want == have,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::parse;

    fn manifest(checks: &str) -> Manifest {
        let text = format!(
            "number = 1\nslug = \"x\"\ntitle = \"t\"\nchapter = 1\nkind = \"ptrace\"\ngoal = \"g\"\nstudent_files = [\"x\"]\n\
             [[steps]]\nname = \"s\"\nrun = [\"/bin/true\"]\n{checks}"
        );
        parse(Path::new("lab.toml"), &text).unwrap()
    }

    fn obs(result: StepResult) -> Observations {
        let mut o = Observations::default();
        o.steps.insert("s".into(), StepResult { name: "s".into(), ..result });
        o
    }

    use std::path::Path;

    const HINTS: &str = "hints = [\"first\", \"second\"]\n";

    #[test]
    fn exit_code_checks_compare_and_explain() {
        let m =
            manifest(&format!("[[checks]]\nname = \"ok\"\nkind = \"exit_code\"\nstep = \"s\"\nequals = 0\n{HINTS}"));
        let good = evaluate(&m, &obs(StepResult { exit_code: Some(0), ..Default::default() }));
        assert!(good[0].passed && good[0].hint.is_none());
        let bad = evaluate(&m, &obs(StepResult { exit_code: Some(3), stderr: "boom\n".into(), ..Default::default() }));
        assert_eq!(bad[0].status, Status::Bad);
        assert!(bad[0].detail.contains("status 3") && bad[0].detail.contains("boom"), "{}", bad[0].detail);
        assert_eq!(bad[0].hint.as_deref(), Some("first"));
        let timed_out = evaluate(&m, &obs(StepResult { exit_code: Some(0), timed_out: true, ..Default::default() }));
        assert!(!timed_out[0].passed, "a step that timed out never passes an exit check");
    }

    #[test]
    fn a_step_that_never_ran_is_missing() {
        let m =
            manifest(&format!("[[checks]]\nname = \"ok\"\nkind = \"exit_code\"\nstep = \"s\"\nequals = 0\n{HINTS}"));
        let v = evaluate(&m, &Observations::default());
        assert_eq!(v[0].status, Status::Missing);
    }

    #[test]
    fn output_checks_need_every_pattern() {
        let m = manifest(&format!(
            "[[checks]]\nname = \"o\"\nkind = \"output\"\nstep = \"s\"\ncontains = [\"Hello\"]\nnot_contains = [\"panic\"]\nregex = [\"pid=\\\\d+\"]\n{HINTS}"
        ));
        let good = evaluate(&m, &obs(StepResult { stdout: "Hello pid=42\n".into(), ..Default::default() }));
        assert!(good[0].passed, "{}", good[0].detail);
        let bad = evaluate(&m, &obs(StepResult { stdout: "Hello pid=x panic\n".into(), ..Default::default() }));
        assert!(!bad[0].passed);
        assert!(bad[0].detail.contains("contains \"panic\"") && bad[0].detail.contains("no match for /pid=\\d+/"));
    }

    #[test]
    fn json_any_matches_a_subset_of_one_entry() {
        let m = manifest(&format!(
            "[[checks]]\nname = \"j\"\nkind = \"json\"\nstep = \"s\"\npointer = \"\"\nany = {{ type = \"kprobe\" }}\n{HINTS}"
        ));
        let progs = r#"[{"id":1,"type":"socket_filter"},{"id":7,"type":"kprobe","name":"hello"}]"#;
        assert!(evaluate(&m, &obs(StepResult { stdout: progs.into(), ..Default::default() }))[0].passed);
        let none = r#"[{"id":1,"type":"socket_filter"}]"#;
        let v = evaluate(&m, &obs(StepResult { stdout: none.into(), ..Default::default() }));
        assert!(!v[0].passed && v[0].detail.contains("none of the 1 entries"));
        let garbage = evaluate(&m, &obs(StepResult { stdout: "Error: no BTF".into(), ..Default::default() }));
        assert!(garbage[0].detail.contains("not JSON"));
    }
}

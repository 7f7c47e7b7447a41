//! `strace_bpf`: a step ran a program under `strace -e trace=bpf`; its bpf()
//! calls must include the expected ones, in order, with the expected
//! results.
//!
//! ```toml
//! check = "strace_bpf"
//! args = { step = "strace", calls = [
//!     "BPF_MAP_CREATE map_type=BPF_MAP_TYPE_HASH",
//!     "BPF_MAP_UPDATE_ELEM flags=BPF_NOEXIST",
//!     "BPF_MAP_LOOKUP_ELEM = ENOENT",
//!     "BPF_OBJ_PIN",
//! ] }
//! # optional: stream = "stdout" | "stderr" (default "stderr", where strace
//! # prints)
//! ```
//!
//! Each expected call is the command, then words its line must contain, then
//! optionally `= ERRNO` when the call must fail with that error; without it
//! the call must succeed. The calls are matched in order, each against the
//! next traced call of the same command: calls of other commands in between
//! are skipped, but a call of the same command that does not fit is an
//! error, not something to look past.

use std::collections::HashSet;

use super::args::{only, step_arg, string_arg};
use super::{NamedCheck, Observations, Outcome, Status};
use crate::checks::{ending, excerpt, step, text_of};
use crate::manifest::StreamSel;

pub const CHECK: NamedCheck = NamedCheck { name: "strace_bpf", validate, evaluate };

const KEYS: &[&str] = &["step", "calls", "stream"];

/// One bpf() call as strace printed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// `BPF_MAP_CREATE`, …
    pub command: String,
    /// Everything between the parentheses.
    pub args: String,
    /// The return value.
    pub ret: i64,
    /// `ENOENT`, … when the call failed.
    pub errno: Option<String>,
}

impl Call {
    fn outcome(&self) -> String {
        match &self.errno {
            Some(e) => format!("-1 {e}"),
            None => self.ret.to_string(),
        }
    }
}

/// One expected call, from the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Expected {
    text: String,
    command: String,
    contains: Vec<String>,
    errno: Option<String>,
}

fn parse_expected(text: &str) -> Result<Expected, String> {
    let mut words = text.split_whitespace();
    let command = words.next().ok_or("an expected call is empty")?.to_string();
    if !command.starts_with("BPF_") {
        return Err(format!("{text:?}: start with the command, e.g. BPF_MAP_CREATE"));
    }
    let mut contains = Vec::new();
    let mut errno = None;
    while let Some(w) = words.next() {
        if w == "=" {
            let e = words.next().ok_or_else(|| format!("{text:?}: `=` needs an errno name after it"))?;
            if !(e.starts_with('E') && e.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())) {
                return Err(format!("{text:?}: {e:?} is not an errno name like ENOENT"));
            }
            errno = Some(e.to_string());
            if words.next().is_some() {
                return Err(format!("{text:?}: nothing may follow `= {e}`"));
            }
        } else {
            contains.push(w.to_string());
        }
    }
    Ok(Expected { text: text.to_string(), command, contains, errno })
}

fn expected_calls(args: &toml::Table) -> Result<Vec<Expected>, String> {
    let items = match args.get("calls") {
        Some(toml::Value::Array(items)) if !items.is_empty() => items,
        Some(toml::Value::Array(_)) => return Err("calls must not be empty".into()),
        Some(other) => return Err(format!("calls must be a list of strings, not {other}")),
        None => return Err("calls is required".into()),
    };
    items
        .iter()
        .map(|v| v.as_str().ok_or_else(|| format!("calls: {v} is not a string")).and_then(parse_expected))
        .collect()
}

fn stream(args: &toml::Table) -> Result<StreamSel, String> {
    match args.get("stream").map(|_| string_arg(args, "stream")).transpose()? {
        None | Some("stderr") => Ok(StreamSel::Stderr),
        Some("stdout") => Ok(StreamSel::Stdout),
        Some(other) => Err(format!("stream = {other:?}: use \"stdout\" or \"stderr\"")),
    }
}

fn validate(args: &toml::Table, steps: &HashSet<&str>) -> Result<(), String> {
    only(args, KEYS)?;
    step_arg(args, "step", steps)?;
    expected_calls(args)?;
    stream(args)?;
    Ok(())
}

/// Parses the `bpf(...) = …` lines of strace's output; other lines (the
/// traced program's own output, `+++ exited`, …) are skipped.
pub fn parse_calls(text: &str) -> Vec<Call> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Call> {
    // `strace -f` prefixes `[pid N] `.
    let line = match line.strip_prefix("[pid ") {
        Some(rest) => rest.split_once("] ")?.1,
        None => line,
    };
    let rest = line.strip_prefix("bpf(")?;
    let (call, result) = rest.rsplit_once(") = ")?;
    let command = call.split(',').next()?.trim().to_string();
    let mut result = result.split_whitespace();
    let ret: i64 = result.next()?.parse().ok()?;
    let errno = if ret < 0 { result.next().map(str::to_string) } else { None };
    Some(Call { command, args: call.to_string(), ret, errno })
}

/// Matches `expected` against `calls`; the error says which expected call
/// did not fit and why.
fn compare(calls: &[Call], expected: &[Expected]) -> Result<(), String> {
    let mut next = 0;
    for (n, want) in expected.iter().enumerate() {
        let after = if n == 0 { "at all".to_string() } else { format!("after {:?}", expected[n - 1].text) };
        let found = calls[next..].iter().position(|c| c.command == want.command);
        let Some(offset) = found else {
            return Err(format!(
                "expected {:?} (call {} of {}), but no {} was made {after}",
                want.text,
                n + 1,
                expected.len(),
                want.command
            ));
        };
        let call = &calls[next + offset];
        let missing: Vec<&str> =
            want.contains.iter().filter(|w| !call.args.contains(w.as_str())).map(String::as_str).collect();
        let wrong_result = match (&want.errno, &call.errno) {
            (None, None) => None,
            (None, Some(e)) => Some(format!("it failed with {e}")),
            (Some(w), None) => Some(format!("it succeeded (returned {}) instead of failing with {w}", call.ret)),
            (Some(w), Some(e)) if w != e => Some(format!("it failed with {e}, not {w}")),
            (Some(_), Some(_)) => None,
        };
        if !missing.is_empty() || wrong_result.is_some() {
            let mut why = Vec::new();
            if !missing.is_empty() {
                why.push(format!("its arguments lack {}", missing.join(", ")));
            }
            why.extend(wrong_result);
            return Err(format!(
                "expected {:?} (call {} of {}), but the next {} {after}, bpf({}) = {}, does not fit: {}",
                want.text,
                n + 1,
                expected.len(),
                want.command,
                call.args,
                call.outcome(),
                why.join("; ")
            ));
        }
        next += offset + 1;
    }
    Ok(())
}

/// The traced calls, one short line each.
fn summary(calls: &[Call]) -> String {
    let lines: Vec<String> = calls.iter().map(|c| format!("    {} = {}", c.command, c.outcome())).collect();
    if lines.is_empty() { "    (no bpf() calls)".into() } else { lines.join("\n") }
}

fn evaluate(args: &toml::Table, obs: &Observations) -> Outcome {
    let bad = |m: String| (Status::Bad, m);
    let expected = expected_calls(args).map_err(bad)?;
    let name = string_arg(args, "step").map_err(bad)?;
    let s = step(obs, name)?;
    let text = text_of(s, stream(args).map_err(bad)?);
    let calls = parse_calls(&text);
    if calls.is_empty() {
        return Err(bad(format!("`{name}` ({}) traced no bpf() calls; it printed:\n{}", ending(s), excerpt(&text, 6))));
    }
    match compare(&calls, &expected) {
        Ok(()) => Ok(format!(
            "`{name}`: all {} expected bpf() calls, in order, among the {} traced",
            expected.len(),
            calls.len()
        )),
        Err(why) => Err(bad(format!("`{name}`: {why}\n  the bpf() calls traced:\n{}", summary(&calls)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "created hash map lab08_counts
bpf(BPF_MAP_CREATE, {map_type=BPF_MAP_TYPE_HASH, key_size=4, value_size=8, max_entries=16, map_flags=0, inner_map_fd=0, map_name=\"lab08_counts\"}, 44) = 3
bpf(BPF_MAP_UPDATE_ELEM, {map_fd=3, key=0x7ffe113e4424, value=0x7ffe113e4428, flags=BPF_NOEXIST}, 32) = 0
bpf(BPF_MAP_UPDATE_ELEM, {map_fd=3, key=0x7ffe113e4424, value=0x7ffe113e4428, flags=BPF_NOEXIST}, 32) = -1 EEXIST (File exists)
bpf(BPF_MAP_LOOKUP_ELEM, {map_fd=3, key=0x7ffe113e441c, value=0x7ffe113e4420, flags=BPF_ANY}, 32) = 0
[pid  1234] bpf(BPF_MAP_GET_NEXT_KEY, {map_fd=3, key=NULL, next_key=0x7ffe113e441c}, 32) = 0
bpf(BPF_MAP_GET_NEXT_KEY, {map_fd=3, key=0x7ffe113e4424, next_key=0x7ffe113e441c}, 32) = -1 ENOENT (No such file or directory)
bpf(BPF_OBJ_PIN, {pathname=\"/sys/fs/bpf/lab08_counts\", bpf_fd=3, file_flags=0}, 16) = 0
+++ exited with 0 +++
";

    fn expect(items: &[&str]) -> Vec<Expected> {
        items.iter().map(|t| parse_expected(t).unwrap()).collect()
    }

    #[test]
    fn parses_commands_results_and_errnos() {
        let calls = parse_calls(TRACE);
        assert_eq!(calls.len(), 7);
        assert_eq!(calls[0].command, "BPF_MAP_CREATE");
        assert_eq!(calls[0].ret, 3);
        assert_eq!(calls[2].errno.as_deref(), Some("EEXIST"));
        assert_eq!(calls[4].command, "BPF_MAP_GET_NEXT_KEY");
        assert!(calls[6].args.contains("/sys/fs/bpf/lab08_counts"));
    }

    #[test]
    fn matches_in_order_and_skips_other_commands() {
        let calls = parse_calls(TRACE);
        let ok = expect(&[
            "BPF_MAP_CREATE map_type=BPF_MAP_TYPE_HASH",
            "BPF_MAP_UPDATE_ELEM flags=BPF_NOEXIST",
            "BPF_MAP_UPDATE_ELEM = EEXIST",
            "BPF_MAP_GET_NEXT_KEY key=NULL",
            "BPF_MAP_GET_NEXT_KEY = ENOENT",
            "BPF_OBJ_PIN",
        ]);
        assert_eq!(compare(&calls, &ok), Ok(()));
    }

    #[test]
    fn says_which_call_does_not_fit() {
        let calls = parse_calls(TRACE);
        let err = compare(&calls, &expect(&["BPF_MAP_CREATE", "BPF_MAP_DELETE_ELEM"])).unwrap_err();
        assert!(err.contains("no BPF_MAP_DELETE_ELEM was made after \"BPF_MAP_CREATE\""), "{err}");
        let err = compare(&calls, &expect(&["BPF_MAP_UPDATE_ELEM = EEXIST"])).unwrap_err();
        assert!(err.contains("succeeded (returned 0) instead of failing with EEXIST"), "{err}");
        let err = compare(&calls, &expect(&["BPF_MAP_LOOKUP_ELEM flags=BPF_EXIST"])).unwrap_err();
        assert!(err.contains("lack flags=BPF_EXIST"), "{err}");
        // Order matters: the pin comes last.
        assert!(compare(&calls, &expect(&["BPF_OBJ_PIN", "BPF_MAP_CREATE"])).is_err());
    }

    #[test]
    fn validation_rejects_malformed_expectations() {
        let steps = HashSet::from(["strace"]);
        let args = |t: &str| -> toml::Table { toml::from_str(t).unwrap() };
        assert!(validate(&args("step = \"strace\"\ncalls = [\"BPF_OBJ_PIN\"]"), &steps).is_ok());
        assert!(validate(&args("step = \"strace\"\ncalls = []"), &steps).is_err());
        assert!(validate(&args("step = \"strace\"\ncalls = [\"pin\"]"), &steps).unwrap_err().contains("start with"));
        assert!(validate(&args("step = \"strace\"\ncalls = [\"BPF_OBJ_PIN = nope\"]"), &steps).is_err());
        assert!(validate(&args("step = \"strace\"\ncalls = [\"BPF_OBJ_PIN\"]\nstream = \"x\""), &steps).is_err());
    }
}

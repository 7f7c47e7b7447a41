//! `call_records`: a traced program printed its own record of every call it
//! made of one function, and a tracer printed an event per call; every
//! recorded call must be reported exactly once, by the thread that made it,
//! with the arguments it passed and, as asked, the value it got back and
//! how long it took.
//!
//! ```toml
//! check = "call_records"
//! args = { record = "worker", events = "callwatch", arguments = 2 }
//! # optional: compare = ["ret", "latency"]  also judge these of each call
//! #           at_least = 8       the record must show at least this many
//! #                              calls (default 1), so that a workload
//! #                              that did nothing cannot pass
//! ```
//!
//! The record is the traced program's own, kept by the grader's code: a
//! line per call with the thread ID, the `arguments` arguments, the return
//! value, and two times in microseconds, the function's body timed from
//! inside it and the whole call timed by its caller. An event line has the
//! thread ID, the arguments, the return value and one time, the latency.
//! Other lines (headers) are skipped.
//!
//! A probe at the function's entry fires before the body's first line, and
//! a probe at its return after the body's last; both fire inside the
//! caller's window. So a latency measured between the two probes lies
//! between the body's time and the call's, give or take [`ROUNDING_US`]:
//! the bounds come from the same clock (CLOCK_MONOTONIC) and leave no
//! room for a guess. A call is known by its thread and its arguments; the
//! grader draws the arguments at random, so no two calls share them.

use std::collections::{BTreeMap, HashSet};

use super::args::{only, step_arg};
use super::{NamedCheck, Observations, Outcome, Status};
use crate::checks::{ending, excerpt, step};

pub const CHECK: NamedCheck = NamedCheck { name: "call_records", validate, evaluate };

const KEYS: &[&str] = &["record", "events", "arguments", "compare", "at_least"];

/// How many wrong or missing calls a failure lists.
const SHOWN: usize = 8;

/// How far a latency may stray outside its bounds: all three times are
/// printed rounded to the nanosecond, from clocks read a few instructions
/// apart.
const ROUNDING_US: f64 = 5.0;

/// What a check judges of each call beyond its thread and arguments.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Compare {
    ret: bool,
    latency: bool,
}

fn compare(args: &toml::Table) -> Result<Compare, String> {
    let mut c = Compare::default();
    let Some(v) = args.get("compare") else { return Ok(c) };
    let items = v.as_array().ok_or_else(|| format!("compare must be a list, not {v}"))?;
    for item in items {
        match item.as_str() {
            Some("ret") => c.ret = true,
            Some("latency") => c.latency = true,
            _ => return Err(format!("compare: {item} is not \"ret\" or \"latency\"")),
        }
    }
    Ok(c)
}

fn count_arg(args: &toml::Table, key: &str, default: usize) -> Result<usize, String> {
    match args.get(key) {
        None => Ok(default),
        Some(toml::Value::Integer(n)) if *n > 0 => Ok(*n as usize),
        Some(other) => Err(format!("{key} must be a positive integer, not {other}")),
    }
}

fn validate(args: &toml::Table, steps: &HashSet<&str>) -> Result<(), String> {
    only(args, KEYS)?;
    step_arg(args, "record", steps)?;
    step_arg(args, "events", steps)?;
    if !args.contains_key("arguments") {
        return Err("arguments is required: how many of the function's arguments each line shows".into());
    }
    count_arg(args, "arguments", 1)?;
    compare(args)?;
    count_arg(args, "at_least", 1)?;
    Ok(())
}

/// One call: who made it, with what, what came back, and how long it took.
#[derive(Debug, Clone, PartialEq)]
struct Call {
    tid: u32,
    args: Vec<i64>,
    ret: i64,
    /// Microseconds: the body's and the call's in the record, the latency
    /// in an event.
    micros: Vec<f64>,
    /// The line as printed, for messages.
    line: String,
}

/// The lines of `text` that are calls with `arguments` arguments and
/// `times` times.
fn calls(text: &str, arguments: usize, times: usize) -> Vec<Call> {
    text.lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.len() != 2 + arguments + times {
                return None;
            }
            let args = words[1..=arguments].iter().map(|w| w.parse().ok()).collect::<Option<Vec<i64>>>()?;
            let micros = words[arguments + 2..]
                .iter()
                .map(|w| w.parse::<f64>().ok().filter(|x| x.is_finite()))
                .collect::<Option<Vec<f64>>>()?;
            Some(Call {
                tid: words[0].parse().ok()?,
                args,
                ret: words[arguments + 1].parse().ok()?,
                micros,
                line: words.join(" "),
            })
        })
        .collect()
}

fn show_args(args: &[i64]) -> String {
    args.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
}

/// What is wrong with the report of one recorded call; None when it is
/// reported once, right.
fn fault(call: &Call, times: usize, events: &[Call], cmp: Compare) -> Option<String> {
    let what = format!("thread {} ({})", call.tid, show_args(&call.args));
    let about: Vec<&Call> = events.iter().filter(|e| e.tid == call.tid && e.args == call.args).collect();
    if about.is_empty() {
        // Say what went wrong, when the events show it.
        if let Some(e) = events.iter().find(|e| e.args == call.args) {
            return Some(format!("{what}: reported under thread {}: {}", e.tid, e.line));
        }
        return Some(match events.iter().find(|e| e.tid == call.tid) {
            Some(e) => format!("{what}: no event with these arguments; thread {} has: {}", call.tid, e.line),
            None => format!("{what}: no event"),
        });
    }
    if about.len() != times {
        return Some(format!("{what}: reported {} times", about.len()));
    }
    if cmp.ret {
        if let Some(e) = about.iter().find(|e| e.ret != call.ret) {
            let low_half = if e.ret == i64::from(call.ret as i32) {
                " (its low 32 bits only)"
            } else if e.ret == i64::from(call.ret as u32) {
                " (its low 32 bits, as an unsigned number)"
            } else {
                ""
            };
            return Some(format!("{what}: returned {}, reported as {}{low_half}", call.ret, e.ret));
        }
    }
    if cmp.latency {
        let (body, whole) = (call.micros[0], call.micros[1]);
        let (low, high) = (body - ROUNDING_US, whole + ROUNDING_US);
        if let Some(e) = about.iter().find(|e| e.micros[0] < low || e.micros[0] > high) {
            let reported = e.micros[0];
            let ratio = if reported > 0.0 { body / reported } else { f64::INFINITY };
            let unit =
                if (500.0..2000.0).contains(&ratio) { " (a thousand times too short: microseconds?)" } else { "" };
            return Some(format!(
                "{what}: its body took {body:.3} µs and the whole call {whole:.3} µs, reported as {reported:.3} µs{unit}"
            ));
        }
    }
    None
}

fn evaluate(args: &toml::Table, obs: &Observations) -> Outcome {
    let bad = |m: String| (Status::Bad, m);
    let record_name = args.get("record").and_then(|v| v.as_str()).unwrap_or_default();
    let events_name = args.get("events").and_then(|v| v.as_str()).unwrap_or_default();
    let arguments = count_arg(args, "arguments", 1).map_err(bad)?;
    let cmp = compare(args).map_err(bad)?;
    let need = count_arg(args, "at_least", 1).map_err(bad)?;

    let record = step(obs, record_name)?;
    let truth = calls(&record.stdout, arguments, 2);
    if truth.len() < need {
        return Err(bad(format!(
            "`{record_name}` ({}) recorded {} calls, expected at least {need}: the workload did not run as planned\n{}",
            ending(record),
            truth.len(),
            excerpt(if record.stdout.trim().is_empty() { &record.stderr } else { &record.stdout }, 4)
        )));
    }
    let mut times: BTreeMap<(u32, &[i64]), usize> = BTreeMap::new();
    for c in &truth {
        *times.entry((c.tid, c.args.as_slice())).or_default() += 1;
    }

    let events_step = step(obs, events_name)?;
    let events = calls(&events_step.stdout, arguments, 1);
    let mut faults = Vec::new();
    let mut seen = HashSet::new();
    for c in &truth {
        let key = (c.tid, c.args.as_slice());
        if seen.insert(key) {
            faults.extend(fault(c, times[&key], &events, cmp));
        }
    }
    // An event for a call nobody made is as wrong as a call left out.
    let invented: Vec<&Call> = events.iter().filter(|e| !times.contains_key(&(e.tid, e.args.as_slice()))).collect();
    let judged = match (cmp.ret, cmp.latency) {
        (false, false) => "its thread and arguments",
        (true, false) => "its thread, arguments and return value",
        (false, true) => "its thread, arguments and latency",
        (true, true) => "its thread, arguments, return value and latency",
    };
    if faults.is_empty() && invented.is_empty() {
        return Ok(format!(
            "`{events_name}` reports each of the {} calls `{record_name}` made once, with {judged}",
            truth.len()
        ));
    }
    let mut detail = if faults.is_empty() {
        format!("`{events_name}` reports every call `{record_name}` made, and more:")
    } else {
        format!(
            "{} of the {} calls `{record_name}` made are not in `{events_name}` once, with {judged}:",
            faults.len(),
            truth.len()
        )
    };
    for f in faults.iter().take(SHOWN) {
        detail.push_str(&format!("\n    {f}"));
    }
    if faults.len() > SHOWN {
        detail.push_str(&format!("\n    … and {} more", faults.len() - SHOWN));
    }
    if let Some(first) = invented.first() {
        detail.push_str(&format!(
            "\n    {} events match no call of `{record_name}` (no thread made a call with those arguments), such as: {}",
            invented.len(),
            first.line
        ));
    }
    detail.push_str(&format!(
        "\n  the stdout of `{events_name}` ({} events) ended with:\n{}",
        events.len(),
        excerpt(&events_step.stdout, 4)
    ));
    Err(bad(detail))
}

#[cfg(test)]
mod tests {
    use super::*;
    use workbook_agent::StepResult;

    // Two threads of process 301, their calls interleaved, as the worker
    // prints them: thread, size, key, return value, the body's time and
    // the whole call's, in microseconds.
    const RECORD: &str = "    TID  SIZE                  KEY                  RET      BODY_US      CALL_US
    302    12 -4658108223097327365  7312964511842213990     3381.204     3412.871
    303     7  2291372611083406810 -1170531394727823004     4593.330     4630.115
    302    31  -915612377031209434    98234757523490117     6160.012     6190.404
    303    22  8120075101357720421 -6604381206155409218     2371.925     2398.652
";

    const EVENTS: &str = "    TID  SIZE                  KEY                  RET   LATENCY_US
    302    12 -4658108223097327365  7312964511842213990     3390.117
    303     7  2291372611083406810 -1170531394727823004     4601.904
    302    31  -915612377031209434    98234757523490117     6172.339
    303    22  8120075101357720421 -6604381206155409218     2383.870
";

    fn judge(events: &str, extra: &str) -> Outcome {
        let mut o = Observations::default();
        for (name, out) in [("worker", RECORD), ("callwatch", events)] {
            o.steps.insert(name.into(), StepResult { name: name.into(), stdout: out.into(), ..Default::default() });
        }
        let text = format!("record = \"worker\"\nevents = \"callwatch\"\narguments = 2\n{extra}");
        let args: toml::Table = toml::from_str(&text).unwrap();
        validate(&args, &HashSet::from(["worker", "callwatch"])).unwrap();
        evaluate(&args, &o)
    }

    const ALL: &str = "compare = [\"ret\", \"latency\"]";
    const LATENCY: &str = "compare = [\"latency\"]";

    #[test]
    fn lines_become_calls() {
        let got = calls(RECORD, 2, 2);
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(got[1].tid, 303);
        assert_eq!(got[1].args, [7, 2291372611083406810]);
        assert_eq!(got[1].ret, -1170531394727823004);
        assert_eq!(got[1].micros, [4593.330, 4630.115]);
        assert_eq!(calls(EVENTS, 2, 1)[3].micros, [2383.870]);
        // The record's lines are not events, nor the other way round.
        assert!(calls(RECORD, 2, 1).is_empty() && calls(EVENTS, 2, 2).is_empty());
        // A header, a word that is no number, a time that is no time.
        assert!(calls("TID SIZE KEY RET US\n1 2 x 4 5\n1 2 3 4 NaN\n", 2, 1).is_empty());
    }

    #[test]
    fn every_call_once_and_right() {
        for extra in ["", "compare = [\"ret\"]", LATENCY, ALL, "at_least = 4"] {
            let ok = judge(EVENTS, extra);
            assert!(ok.is_ok(), "{extra}: {ok:?}");
        }
        // Events in another order are the same events.
        let mut lines: Vec<&str> = EVENTS.lines().collect();
        lines[1..].reverse();
        assert!(judge(&lines.join("\n"), ALL).is_ok());
    }

    #[test]
    fn the_process_id_for_the_thread_id_fails() {
        let events = EVENTS.replace("    302 ", "    301 ").replace("    303 ", "    301 ");
        let err = judge(&events, "").unwrap_err().1;
        assert!(err.contains("4 of the 4 calls"), "{err}");
        assert!(err.contains("thread 302 (12, -4658108223097327365): reported under thread 301"), "{err}");
    }

    #[test]
    fn lost_doubled_and_invented_calls_fail() {
        let lost = EVENTS.replace("    303    22  8120075101357720421 -6604381206155409218     2383.870\n", "");
        let err = judge(&lost, "").unwrap_err().1;
        assert!(err.contains("thread 303 (22, 8120075101357720421): no event with these arguments"), "{err}");
        let twice = format!("{EVENTS}    302    12 -4658108223097327365  7312964511842213990     3390.117\n");
        assert!(judge(&twice, "").unwrap_err().1.contains("reported 2 times"));
        // Arguments swapped: every call is missing, and the events match nothing.
        let swapped = "    302 -4658108223097327365 12  7312964511842213990     3390.117\n";
        let err = judge(swapped, "").unwrap_err().1;
        assert!(err.contains("1 events match no call"), "{err}");
        // Nothing at all, as the starter prints.
        let err = judge("    TID  SIZE                  KEY                  RET   LATENCY_US\n", ALL).unwrap_err().1;
        assert!(err.contains("thread 302 (12, -4658108223097327365): no event"), "{err}");
        // Every call reported, one more made up.
        let more = format!("{EVENTS}    302     1 1 1 1.000\n");
        let err = judge(&more, "").unwrap_err().1;
        assert!(err.contains("reports every call `worker` made, and more"), "{err}");
    }

    #[test]
    fn a_return_value_cut_to_32_bits_fails() {
        // 7312964511842213990 is 0x657c_de7a_4f64_a066; its low half, as an int.
        let low = i64::from(7312964511842213990i64 as i32);
        assert_eq!(low, 1331994726);
        let events = EVENTS.replace("7312964511842213990", &low.to_string());
        assert!(judge(&events, "").is_ok(), "the identity check does not judge the value");
        let err = judge(&events, "compare = [\"ret\"]").unwrap_err().1;
        assert!(err.contains("returned 7312964511842213990, reported as 1331994726 (its low 32 bits only)"), "{err}");
        // A negative value read as unsigned 32 bits.
        let low = i64::from(-1170531394727823004i64 as u32);
        let events = EVENTS.replace("-1170531394727823004", &low.to_string());
        let err = judge(&events, "compare = [\"ret\"]").unwrap_err().1;
        assert!(err.contains("(its low 32 bits, as an unsigned number)"), "{err}");
    }

    #[test]
    fn a_latency_outside_the_body_and_the_call_fails() {
        // Microseconds where nanoseconds belong.
        let err = judge(&EVENTS.replace("3390.117", "3.390"), LATENCY).unwrap_err().1;
        assert!(
            err.contains(
                "its body took 3381.204 µs and the whole call 3412.871 µs, reported as 3.390 µs (a thousand times too short"
            ),
            "{err}"
        );
        assert!(judge(&EVENTS.replace("3390.117", "3.390"), "compare = [\"ret\"]").is_ok());
        // Longer than the call itself: timed from an earlier call.
        let err = judge(&EVENTS.replace("2383.870", "8781.205"), LATENCY).unwrap_err().1;
        assert!(err.contains("the whole call 2398.652 µs, reported as 8781.205 µs"), "{err}");
        // Shorter than the body: timed from another thread's entry.
        let err = judge(&EVENTS.replace("6172.339", "6100.000"), LATENCY).unwrap_err().1;
        assert!(err.contains("thread 302 (31, -915612377031209434): its body took 6160.012 µs"), "{err}");
        // Anywhere from the body's time to the call's, give or take the rounding.
        for fine in ["6160.012", "6156.000", "6190.404", "6194.000"] {
            assert!(judge(&EVENTS.replace("6172.339", fine), LATENCY).is_ok(), "{fine}");
        }
    }

    #[test]
    fn a_workload_that_did_nothing_does_not_pass() {
        let err = judge(EVENTS, "at_least = 5").unwrap_err().1;
        assert!(err.contains("recorded 4 calls, expected at least 5"), "{err}");
    }

    #[test]
    fn arguments_are_validated() {
        let steps = HashSet::from(["worker", "callwatch"]);
        let base = "record = \"worker\"\nevents = \"callwatch\"\n";
        let v = |t: &str| validate(&toml::from_str(&format!("{base}{t}")).unwrap(), &steps);
        assert!(v("arguments = 2").is_ok());
        assert!(v("").unwrap_err().contains("arguments is required"));
        assert!(v("arguments = 0").unwrap_err().contains("positive"));
        assert!(v("arguments = 2\ncompare = [\"args\"]").unwrap_err().contains("not \"ret\" or \"latency\""));
        assert!(v("arguments = 2\nat_least = -1").unwrap_err().contains("positive"));
        assert!(v("arguments = 2\nslack_us = 5").unwrap_err().contains("slack_us"));
        let other = "record = \"nope\"\nevents = \"callwatch\"\narguments = 2";
        assert!(validate(&toml::from_str(other).unwrap(), &steps).unwrap_err().contains("not a step"));
    }
}

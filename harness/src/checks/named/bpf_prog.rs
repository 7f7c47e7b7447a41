//! `bpf_prog`: what the kernel says about one loaded program, from
//! `bpftool -j` output that steps printed: its type, how often it ran,
//! where it is attached, which maps it can touch.
//!
//! ```toml
//! check = "bpf_prog"
//! args = { progs = "progs", name = "dispatch", type = "raw_tracepoint" }
//! # optional, each needing the step that prints what it reads:
//! #   runs_at_least = 5, runs_at_most = 0    run_cnt from `bpftool prog show -j`
//! #                                          (needs kernel.bpf_stats_enabled=1)
//! #   links = "links", attach = "sys_enter"  a step printing `bpftool link show -j`
//! #                                          or `bpftool perf show -j`: an entry of
//! #                                          this program names the attach point
//! #   links = "links", detached = true       no entry names this program
//! #   maps = "maps", uses = ["hits"], avoids = ["other"]
//! #                                          a step printing `bpftool map show -j`:
//! #                                          the program's map_ids hold (or not)
//! #                                          the maps of these names
//! #   xlated = "xlated", atomic_add = true   a step printing `bpftool prog dump
//! #                                          xlated … -j` of this program: its
//! #                                          code adds 64 bits to memory
//! #                                          atomically, and never reads, changes
//! #                                          and writes back memory by hand
//! ```
//!
//! Every piece of evidence is the kernel's: a program can print anything,
//! but it cannot change its own run count, its links or the maps the
//! verifier recorded for it. A tail call's target keeps a run count of 0
//! (the kernel counts only the program it entered), so `runs_at_most = 0`
//! with `detached = true` says that a program ran, if at all, only as a
//! tail call. Its translated code is the kernel's too: a counter bumped with
//! a plain load, add and store loses counts when two CPUs run the program
//! at once, a race that a grading VM may never show, while the atomic add
//! that prevents it is there to read in the instructions.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use super::args::{only, step_arg, string_arg};
use super::{NamedCheck, Observations, Outcome, Status};
use crate::checks::{ending, excerpt, step};

pub const CHECK: NamedCheck = NamedCheck { name: "bpf_prog", validate, evaluate };

const KEYS: &[&str] = &[
    "progs",
    "name",
    "type",
    "runs_at_least",
    "runs_at_most",
    "links",
    "attach",
    "detached",
    "maps",
    "uses",
    "avoids",
    "xlated",
    "atomic_add",
];

fn validate(args: &toml::Table, steps: &HashSet<&str>) -> Result<(), String> {
    only(args, KEYS)?;
    step_arg(args, "progs", steps)?;
    if string_arg(args, "name")?.is_empty() {
        return Err("name is the program's name, as bpftool prints it".into());
    }
    if args.contains_key("type") {
        string_arg(args, "type")?;
    }
    for key in ["runs_at_least", "runs_at_most"] {
        count_arg(args, key)?;
    }
    let wants_links = args.contains_key("attach") || args.contains_key("detached");
    match (args.contains_key("links"), wants_links) {
        (true, true) => {
            step_arg(args, "links", steps)?;
        }
        (true, false) => return Err("links is read only for attach = \"…\" or detached = true".into()),
        (false, true) => return Err("attach and detached need links = \"<step printing bpftool link show -j>\"".into()),
        (false, false) => {}
    }
    if args.contains_key("attach") && args.contains_key("detached") {
        return Err("give attach or detached, not both".into());
    }
    if let Some(v) = args.get("detached") {
        if v.as_bool() != Some(true) {
            return Err(format!("detached must be true, not {v}"));
        }
    }
    if args.contains_key("attach") {
        attach_arg(args)?;
    }
    let wants_maps = args.contains_key("uses") || args.contains_key("avoids");
    match (args.contains_key("maps"), wants_maps) {
        (true, true) => {
            step_arg(args, "maps", steps)?;
        }
        (true, false) => return Err("maps is read only for uses = [..] or avoids = [..]".into()),
        (false, true) => return Err("uses and avoids need maps = \"<step printing bpftool map show -j>\"".into()),
        (false, false) => {}
    }
    names_arg(args, "uses")?;
    names_arg(args, "avoids")?;
    match (args.contains_key("xlated"), args.get("atomic_add")) {
        (true, Some(toml::Value::Boolean(true))) => {
            step_arg(args, "xlated", steps)?;
        }
        (_, Some(v)) if v.as_bool() != Some(true) => return Err(format!("atomic_add must be true, not {v}")),
        (false, Some(_)) => {
            return Err("atomic_add needs xlated = \"<step printing bpftool prog dump xlated … -j>\"".into());
        }
        (true, None) => return Err("xlated is read only for atomic_add = true".into()),
        (false, None) => {}
        _ => unreachable!("every combination is matched above"),
    }
    Ok(())
}

/// The instructions of `bpftool prog dump xlated -j`: each an object whose
/// `disasm` is the kernel's own rendering. None when it is not JSON.
fn instructions(text: &str) -> Vec<String> {
    fn collect(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(o) => {
                if let Some(Value::String(d)) = o.get("disasm") {
                    out.push(d.clone());
                }
                o.values().for_each(|v| collect(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| collect(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(doc) = serde_json::from_str::<Value>(text.trim()) {
        collect(&doc, &mut out);
    }
    out
}

/// A 64-bit atomic add to memory, as the kernel's disassembler writes it:
/// `lock *(u64 *)(r0 +0) += r1` when the old value is not used (BPF_XADD,
/// or BPF_ATOMIC | BPF_ADD), `r1 = atomic64_fetch_add((u64 *)(r0 +0), r1)`
/// when it is. A 32-bit add into a 64-bit counter carries nothing into the
/// upper half, so it does not count.
fn is_atomic_add(insn: &str) -> bool {
    static RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"lock \*\(u64 \*\)\(r\d+ *[+-] *\d+\) \+= r\d+|atomic64_fetch_add\(").expect("a valid regex")
    });
    RE.is_match(insn)
}

/// The first map update that may overwrite a count another CPU has just
/// inserted: a call of `…update_elem` whose flags (r4, set last before the
/// call) are BPF_ANY (0). A counter's first insert must be BPF_NOEXIST, and
/// the add done on whatever is there afterwards. Returns its index.
fn blind_insert(insns: &[String]) -> Option<usize> {
    use std::sync::LazyLock;
    static CALL: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"call \w*update_elem").expect("a valid regex"));
    static R4: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"^(?:\([0-9a-f]{2}\)\s*)?[rw]4 = (\S+)$").expect("a valid regex"));
    insns.iter().enumerate().find_map(|(at, insn)| {
        if !CALL.is_match(insn) {
            return None;
        }
        let flags = insns[..at].iter().rev().find_map(|i| R4.captures(i.trim()).map(|c| c[1].to_string()))?;
        (flags == "0").then_some(at)
    })
}

/// The first plain read-modify-write of memory outside the stack: a load
/// from `*(uN *)(rB +off)` and, later, a store to the same place while `rB`
/// still holds the same pointer. That is `*count += 1` (or any update done
/// by hand), which loses updates when two CPUs run it at once; the stack
/// (`r10`) is private to one run and is left alone. Returns the indexes of
/// the load and the store.
fn plain_read_modify_write(insns: &[String]) -> Option<(usize, usize)> {
    use std::sync::LazyLock;
    static LOAD: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"^r\d+ = \*\((u\d+) \*\)\((r\d+) *([+-] *\d+)\)$").expect("a valid regex"));
    static STORE: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"^\*\((u\d+) \*\)\((r\d+) *([+-] *\d+)\) = ").expect("a valid regex"));
    // A register gets a new value from `rB = ...`, `rB += ...` and the like,
    // and r0-r5 from every call.
    fn writes(insn: &str, reg: &str) -> bool {
        let clobbered_by_call = insn.starts_with("call") && matches!(reg, "r0" | "r1" | "r2" | "r3" | "r4" | "r5");
        // `wN` is the lower half of `rN`: writing it changes rN too.
        let half = reg.replacen('r', "w", 1);
        clobbered_by_call
            || [reg, half.as_str()].iter().any(|name| {
                insn.strip_prefix(name).is_some_and(|rest| {
                    let rest = rest.trim_start();
                    !rest.starts_with(|c: char| c.is_ascii_digit())
                        && rest.split(' ').next().is_some_and(|op| op.ends_with('='))
                })
            })
    }
    // bpftool writes the opcode first: `(79) r1 = *(u64 *)(r0 +0)`.
    static OPCODE: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"^\([0-9a-f]{2}\)\s*").expect("a valid regex"));
    let insns: Vec<String> = insns.iter().map(|i| OPCODE.replace(i.trim(), "").into_owned()).collect();
    let norm = |off: &str| off.replace(' ', "");
    for (i, insn) in insns.iter().enumerate() {
        let Some(load) = LOAD.captures(insn.trim()) else { continue };
        let (size, base, off) = (&load[1], &load[2], norm(&load[3]));
        if base == "r10" {
            continue;
        }
        for (j, later) in insns.iter().enumerate().skip(i + 1) {
            let later = later.trim();
            if let Some(store) = STORE.captures(later) {
                if &store[1] == size && &store[2] == base && norm(&store[3]) == off {
                    return Some((i, j));
                }
            }
            if writes(later, base) || later.starts_with("exit") || later.starts_with("goto") {
                break;
            }
        }
    }
    None
}

/// What a link entry must name: `attach = "sys_enter"`, or a list of
/// strings that one entry must all hold (a uprobe's kind and its file).
fn attach_arg(args: &toml::Table) -> Result<Vec<String>, String> {
    let wanted = match args.get("attach") {
        Some(toml::Value::String(s)) => vec![s.clone()],
        Some(toml::Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string).ok_or_else(|| format!("attach: {v} is not a string")))
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(format!("attach must be a string or a list of strings, not {other}")),
        None => Vec::new(),
    };
    if wanted.is_empty() || wanted.iter().any(String::is_empty) {
        return Err("attach names the attach point (a function or tracepoint name)".into());
    }
    Ok(wanted)
}

fn count_arg(args: &toml::Table, key: &str) -> Result<Option<u64>, String> {
    match args.get(key) {
        None => Ok(None),
        Some(toml::Value::Integer(n)) if *n >= 0 => Ok(Some(*n as u64)),
        Some(other) => Err(format!("{key} must be a count (an integer >= 0), not {other}")),
    }
}

fn names_arg(args: &toml::Table, key: &str) -> Result<Vec<String>, String> {
    match args.get(key) {
        None => Ok(Vec::new()),
        Some(toml::Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string).ok_or_else(|| format!("{key}: {v} is not a map name")))
            .collect(),
        Some(other) => Err(format!("{key} must be a list of map names, not {other}")),
    }
}

/// A step's stdout as a JSON array of objects.
fn json_list(obs: &Observations, name: &str, what: &str) -> Result<Vec<Value>, (Status, String)> {
    let s = step(obs, name)?;
    let doc: Value = serde_json::from_str(s.stdout.trim()).map_err(|e| {
        let said = if s.stderr.trim().is_empty() { &s.stdout } else { &s.stderr };
        (Status::Bad, format!("`{name}` ({}) printed no {what} ({e})\n{}", ending(s), excerpt(said, 4)))
    })?;
    match doc {
        Value::Array(items) => Ok(items),
        // bpftool prints `null` when there is nothing to list.
        Value::Null => Ok(Vec::new()),
        other => Err((Status::Bad, format!("`{name}` printed no {what}: {}", excerpt(&other.to_string(), 2)))),
    }
}

fn id_of(v: &Value, field: &str) -> Option<u64> {
    v.get(field).and_then(Value::as_u64)
}

/// What a program is wrong about, one line per problem.
fn problems(args: &toml::Table, prog: &Value, obs: &Observations) -> Result<(Vec<String>, String), (Status, String)> {
    let bad = |m: String| (Status::Bad, m);
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    let id = id_of(prog, "id").unwrap_or_default();
    let ptype = prog.get("type").and_then(Value::as_str).unwrap_or("?");
    seen.push(format!("a {ptype} program (id {id})"));
    if let Ok(want) = string_arg(args, "type") {
        if ptype != want {
            problems.push(format!("it is a {ptype} program, expected {want}"));
        }
    }
    let at_least = count_arg(args, "runs_at_least").map_err(bad)?;
    let at_most = count_arg(args, "runs_at_most").map_err(bad)?;
    if at_least.is_some() || at_most.is_some() {
        // bpftool leaves run_cnt out when it is 0.
        let runs = id_of(prog, "run_cnt").unwrap_or(0);
        seen.push(format!("run {runs} times"));
        if let Some(min) = at_least.filter(|m| runs < *m) {
            problems.push(format!(
                "it ran {runs} times, expected at least {min}{}",
                if runs == 0 { " (a tail call's target, or a program never attached, keeps a count of 0)" } else { "" }
            ));
        }
        if let Some(max) = at_most.filter(|m| runs > *m) {
            problems.push(format!(
                "it ran {runs} times on its own, expected at most {max}{}",
                if max == 0 {
                    ": the kernel counts only programs it entered itself, never a tail call's target"
                } else {
                    ""
                }
            ));
        }
    }
    if let Some(links_step) = args.get("links").and_then(|v| v.as_str()) {
        let links = json_list(obs, links_step, "list of links")?;
        let mine: Vec<&Value> = links.iter().filter(|l| id_of(l, "prog_id") == Some(id)).collect();
        let points: Vec<String> = mine.iter().map(|l| attach_point(l)).collect();
        if let Ok(wanted) = attach_arg(args) {
            let want = wanted.join(" ");
            let found = mine.iter().any(|l| wanted.iter().all(|w| strings(l).iter().any(|s| s.contains(w.as_str()))));
            if found {
                seen.push(format!("attached at {}", points.join(", ")));
            } else if mine.is_empty() {
                problems.push(format!("it is attached nowhere, expected at {want}"));
            } else {
                problems.push(format!("it is attached at {}, expected at {want}", points.join(", ")));
            }
        } else if !mine.is_empty() {
            problems.push(format!("it is attached at {} itself; it must only run as a tail call", points.join(", ")));
        } else {
            seen.push("attached nowhere".into());
        }
    }
    if let Some(maps_step) = args.get("maps").and_then(|v| v.as_str()) {
        let maps = json_list(obs, maps_step, "list of maps")?;
        let names: BTreeMap<u64, String> = maps
            .iter()
            .filter_map(|m| Some((id_of(m, "id")?, m.get("name").and_then(Value::as_str).unwrap_or("").to_string())))
            .collect();
        let used: Vec<&str> = prog
            .get("map_ids")
            .and_then(Value::as_array)
            .map(|ids| ids.iter().filter_map(Value::as_u64).filter_map(|i| names.get(&i).map(String::as_str)).collect())
            .unwrap_or_default();
        let shown = if used.is_empty() { "no map".to_string() } else { used.join(", ") };
        for want in names_arg(args, "uses").map_err(bad)? {
            if !used.contains(&want.as_str()) {
                problems.push(format!("it does not use the map {want} (it uses {shown})"));
            }
        }
        for avoid in names_arg(args, "avoids").map_err(bad)? {
            if used.contains(&avoid.as_str()) {
                problems.push(format!("it uses the map {avoid}, which only other programs may touch"));
            }
        }
        seen.push(format!("using {shown}"));
    }
    if let Some(xlated_step) = args.get("xlated").and_then(|v| v.as_str()) {
        let s = step(obs, xlated_step)?;
        let insns = instructions(&s.stdout);
        if insns.is_empty() {
            let said = if s.stderr.trim().is_empty() { &s.stdout } else { &s.stderr };
            return Err(bad(format!("`{xlated_step}` ({}) printed no instructions\n{}", ending(s), excerpt(said, 4))));
        }
        match insns.iter().find(|i| is_atomic_add(i)) {
            Some(add) => seen.push(format!("adding atomically ({add})")),
            None => problems.push(format!(
                "none of its {} instructions adds 64 bits to memory atomically: a plain load, add and \
                 store (`*count += 1`) loses counts when two CPUs run it at once; use __sync_fetch_and_add() \
                 on the u64 itself",
                insns.len()
            )),
        }
        if let Some(at) = blind_insert(&insns) {
            problems.push(format!(
                "instruction {at} (`{}`) updates a map with BPF_ANY: when two CPUs insert a first count at \
                 once, one overwrites the other's; insert with BPF_NOEXIST, then add to what is there",
                insns[at].trim()
            ));
        }
        if let Some((load, store)) = plain_read_modify_write(&insns) {
            problems.push(format!(
                "instructions {load} to {store} read memory, change the value and write it back \
                 (`{}` … `{}`): another CPU can update it in between, and that update is lost; add with \
                 __sync_fetch_and_add() instead",
                insns[load].trim(),
                insns[store].trim()
            ));
        }
    }
    Ok((problems, seen.join(", ")))
}

/// Every string value of a link entry: its attach point is one of them
/// (`tp_name`, `func`, `tracepoint`, …, depending on the link's kind).
fn strings(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Object(o) => o.values().flat_map(strings).collect(),
        Value::Array(a) => a.iter().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

fn attach_point(link: &Value) -> String {
    let kind = link.get("type").or_else(|| link.get("fd_type")).and_then(Value::as_str).unwrap_or("link");
    let point = ["tp_name", "tracepoint", "func", "filename", "target_name", "attach_type"]
        .iter()
        .find_map(|f| link.get(*f).and_then(Value::as_str))
        .unwrap_or("?");
    format!("{kind} {point}")
}

fn evaluate(args: &toml::Table, obs: &Observations) -> Outcome {
    let bad = |m: String| (Status::Bad, m);
    let progs_step = string_arg(args, "progs").map_err(bad)?;
    let name = string_arg(args, "name").map_err(bad)?;
    let progs = json_list(obs, progs_step, "program list")?;
    let named: Vec<&Value> = progs.iter().filter(|p| p.get("name").and_then(Value::as_str) == Some(name)).collect();
    let prog = match named.as_slice() {
        [one] => *one,
        [] => {
            let listed: Vec<&str> = progs.iter().filter_map(|p| p.get("name").and_then(Value::as_str)).collect();
            let listed = if listed.is_empty() { "none".to_string() } else { listed.join(", ") };
            return Err(bad(format!("`{progs_step}`: no program named {name} was loaded (loaded: {listed})")));
        }
        many => return Err(bad(format!("`{progs_step}`: {} programs are named {name}; expected one", many.len()))),
    };
    let (problems, seen) = problems(args, prog, obs)?;
    if problems.is_empty() {
        Ok(format!("{name}: {seen}"))
    } else {
        Err(bad(format!("{name}: {}\n    the kernel shows {seen}", problems.join("; "))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use workbook_agent::StepResult;

    const PROGS: &str = r#"[{"id":4,"type":"raw_tracepoint","name":"handle_execve","map_ids":[1]},
        {"id":6,"type":"raw_tracepoint","name":"dispatch","run_cnt":2344,"map_ids":[3]}]"#;
    const MAPS: &str =
        r#"[{"id":1,"type":"hash","name":"execve_hits"},{"id":3,"type":"prog_array","name":"syscall_progs"}]"#;
    const LINKS: &str = r#"[{"id":1,"type":"raw_tracepoint","prog_id":6,"tp_name":"sys_enter"}]"#;

    fn obs() -> Observations {
        let mut o = Observations::default();
        for (name, out) in [("progs", PROGS), ("maps", MAPS), ("links", LINKS)] {
            o.steps.insert(name.into(), StepResult { name: name.into(), stdout: out.into(), ..Default::default() });
        }
        o
    }

    fn run(text: &str) -> Outcome {
        let args: toml::Table = toml::from_str(text).unwrap();
        validate(&args, &HashSet::from(["progs", "maps", "links"])).unwrap();
        evaluate(&args, &obs())
    }

    #[test]
    fn an_attached_program_that_ran() {
        let ok = run(r#"progs = "progs"
name = "dispatch"
type = "raw_tracepoint"
runs_at_least = 100
links = "links"
attach = "sys_enter"
maps = "maps"
avoids = ["execve_hits"]"#);
        assert!(ok.as_ref().is_ok_and(|d| d.contains("run 2344 times") && d.contains("sys_enter")), "{ok:?}");
        let err = run(
            "progs = \"progs\"\nname = \"dispatch\"\nruns_at_least = 3000\nlinks = \"links\"\nattach = \"sys_exit\"",
        )
        .unwrap_err()
        .1;
        assert!(
            err.contains("ran 2344 times, expected at least 3000") && err.contains("expected at sys_exit"),
            "{err}"
        );
    }

    #[test]
    fn a_tail_call_target_is_detached_and_never_counted() {
        let ok = run(r#"progs = "progs"
name = "handle_execve"
runs_at_most = 0
links = "links"
detached = true
maps = "maps"
uses = ["execve_hits"]"#);
        assert!(ok.is_ok(), "{ok:?}");
        let err = run("progs = \"progs\"\nname = \"dispatch\"\nruns_at_most = 0\nlinks = \"links\"\ndetached = true")
            .unwrap_err()
            .1;
        assert!(err.contains("on its own") && err.contains("only run as a tail call"), "{err}");
        let err =
            run("progs = \"progs\"\nname = \"dispatch\"\nmaps = \"maps\"\nuses = [\"execve_hits\"]").unwrap_err().1;
        assert!(err.contains("does not use the map execve_hits"), "{err}");
    }

    #[test]
    fn an_atomic_add_is_read_from_the_translated_code() {
        let xlated = |disasm: &[&str]| {
            let insns: Vec<String> = disasm.iter().map(|d| format!("{{\"disasm\":{d:?}}}")).collect();
            format!("[{}]", insns.join(","))
        };
        let args = "progs = \"progs\"\nname = \"dispatch\"\nxlated = \"xlated\"\natomic_add = true";
        let judge = |out: String| {
            let mut o = obs();
            o.steps.insert("xlated".into(), StepResult { name: "xlated".into(), stdout: out, ..Default::default() });
            let args: toml::Table = toml::from_str(args).unwrap();
            validate(&args, &HashSet::from(["progs", "xlated"])).unwrap();
            evaluate(&args, &o)
        };
        for atomic in ["lock *(u64 *)(r0 +0) += r1", "r1 = atomic64_fetch_add((u64 *)(r0 +0), r1)"] {
            let ok = judge(xlated(&["r6 = r1", atomic, "r0 = 0", "exit"]));
            assert!(ok.as_ref().is_ok_and(|d| d.contains("adding atomically")), "{atomic}: {ok:?}");
        }
        let racy = ["r1 = *(u64 *)(r0 +0)", "r1 += 1", "*(u64 *)(r0 +0) = r1", "exit"];
        let err = judge(xlated(&racy)).unwrap_err().1;
        assert!(err.contains("none of its 4 instructions adds 64 bits to memory atomically"), "{err}");
        assert!(err.contains("instructions 0 to 2 read memory, change the value and write it back"), "{err}");
        // An atomic add somewhere does not excuse a counter bumped by hand.
        let decoy = [
            "(79) r1 = *(u64 *)(r0 +0)",
            "(07) r1 += 1",
            "(7b) *(u64 *)(r0 +0) = r1",
            "(db) lock *(u64 *)(r6 +0) += r2",
            "(95) exit",
        ];
        let err = judge(xlated(&decoy)).unwrap_err().1;
        assert!(err.contains("instructions 0 to 2 read memory"), "{err}");
        // A first insert that may overwrite another CPU's.
        let blind = ["(b7) r4 = 0", "(85) call htab_map_update_elem#123", "(db) lock *(u64 *)(r0 +0) += r1"];
        let err = judge(xlated(&blind)).unwrap_err().1;
        assert!(
            err.contains("instruction 1 (`(85) call htab_map_update_elem#123`) updates a map with BPF_ANY"),
            "{err}"
        );
        let careful = ["(b7) r4 = 1", "(85) call bpf_map_update_elem#2", "(db) lock *(u64 *)(r0 +0) += r1"];
        assert!(judge(xlated(&careful)).is_ok());
        // A 32-bit atomic add into a 64-bit counter is not the add asked for.
        let narrow = judge(xlated(&["lock *(u32 *)(r0 +0) += r1", "exit"])).unwrap_err().1;
        assert!(narrow.contains("adds 64 bits"), "{narrow}");
        // The stack is private, and a pointer that changed is another place.
        for fine in [
            vec!["r1 = *(u64 *)(r10 -8)", "r1 += 1", "*(u64 *)(r10 -8) = r1", "lock *(u64 *)(r0 +0) += r1"],
            vec![
                "r1 = *(u64 *)(r0 +0)",
                "call bpf_map_lookup_elem#1",
                "*(u64 *)(r0 +0) = r1",
                "lock *(u64 *)(r0 +0) += r1",
            ],
            vec!["r1 = *(u64 *)(r6 +8)", "r6 += 16", "*(u64 *)(r6 +8) = r1", "lock *(u64 *)(r0 +0) += r1"],
            vec!["r1 = *(u64 *)(r6 +8)", "w6 = w7", "*(u64 *)(r6 +8) = r1", "lock *(u64 *)(r0 +0) += r1"],
            vec!["r1 = *(u32 *)(r6 +0)", "*(u64 *)(r6 +0) = r1", "r1 = atomic64_fetch_add((u64 *)(r0 +0), r1)"],
        ] {
            let ok = judge(xlated(&fine));
            assert!(ok.is_ok(), "{fine:?}: {ok:?}");
        }
        for nothing in ["Error: can't get prog by pinned path", "", "[]"] {
            let err = judge(nothing.into()).unwrap_err().1;
            assert!(err.contains("printed no instructions"), "{nothing:?}: {err}");
        }
    }

    #[test]
    fn a_uprobe_is_known_by_its_kind_and_file() {
        // `bpftool perf show -j`: a uprobe and a uretprobe on one file.
        let perf = r#"[{"pid":210,"fd":9,"prog_id":6,"fd_type":"uprobe","filename":"/tmp/qwerty","offset":127808},
            {"pid":210,"fd":11,"prog_id":4,"fd_type":"uretprobe","filename":"/tmp/qwerty","offset":127808}]"#;
        let mut o = obs();
        o.steps.insert("perf".into(), StepResult { name: "perf".into(), stdout: perf.into(), ..Default::default() });
        let judge = |attach: &str| {
            let args: toml::Table =
                toml::from_str(&format!("progs = \"progs\"\nname = \"dispatch\"\nlinks = \"perf\"\nattach = {attach}"))
                    .unwrap();
            validate(&args, &HashSet::from(["progs", "perf"])).unwrap();
            evaluate(&args, &o)
        };
        let ok = judge(r#"["uprobe", "/tmp/qwerty"]"#);
        assert!(ok.as_ref().is_ok_and(|d| d.contains("attached at uprobe /tmp/qwerty")), "{ok:?}");
        // "uretprobe" does not contain "uprobe"; and the file must be the same entry's.
        let err = judge(r#"["uretprobe", "/tmp/qwerty"]"#).unwrap_err().1;
        assert!(err.contains("attached at uprobe /tmp/qwerty, expected at uretprobe /tmp/qwerty"), "{err}");
        assert!(judge(r#"["uprobe", "/tmp/other"]"#).is_err());
        assert!(judge(r#""uprobe""#).is_ok());
    }

    #[test]
    fn a_missing_program_lists_the_loaded_ones() {
        let err = run("progs = \"progs\"\nname = \"hello\"").unwrap_err().1;
        assert!(err.contains("no program named hello") && err.contains("dispatch"), "{err}");
    }

    #[test]
    fn arguments_are_validated() {
        let steps = HashSet::from(["progs", "links"]);
        let v = |t: &str| validate(&toml::from_str(t).unwrap(), &steps);
        assert!(v("progs = \"progs\"\nname = \"x\"\nattach = \"sys_enter\"").unwrap_err().contains("links"));
        assert!(v("progs = \"progs\"\nname = \"x\"\nuses = [\"m\"]").unwrap_err().contains("maps"));
        assert!(v("progs = \"progs\"\nname = \"x\"\nruns_at_least = -1").unwrap_err().contains("count"));
        assert!(
            v("progs = \"progs\"\nname = \"x\"\nlinks = \"links\"\ndetached = false").unwrap_err().contains("true")
        );
        assert!(v("progs = \"progs\"\nname = \"x\"\nrun_cnt = 1").unwrap_err().contains("run_cnt"));
        assert!(v("progs = \"progs\"\nname = \"x\"\natomic_add = true").unwrap_err().contains("xlated"));
        let attach = |a: &str| v(&format!("progs = \"progs\"\nname = \"x\"\nlinks = \"links\"\nattach = {a}"));
        assert!(attach("[\"uprobe\", \"/tmp/x\"]").is_ok());
        assert!(attach("[]").unwrap_err().contains("attach point"));
        assert!(attach("[\"uprobe\", 3]").unwrap_err().contains("not a string"));
        assert!(attach("3").unwrap_err().contains("a string or a list"));
        assert!(v("progs = \"progs\"\nname = \"x\"\nxlated = \"progs\"").unwrap_err().contains("atomic_add"));
    }
}

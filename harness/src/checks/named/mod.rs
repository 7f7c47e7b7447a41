//! Checks that need logic: each lives in its own file and is registered in
//! [`REGISTRY`] by name, the name a `lab.toml` gives as `check = "…"`.

mod bpf_map;
mod bpf_prog;
mod call_records;
mod exec_events;
mod exec_parents;
mod lsm_denials;
mod map_shown;
mod overhead;
mod same_binary;
mod seccomp_probe;
mod snmp_counts;
mod strace_bpf;
mod strace_table;
mod syscall_calls;
mod syscall_events;
mod trace_printk;

use std::collections::HashSet;

use super::{Observations, Outcome, Status};

/// A check written in Rust.
pub struct NamedCheck {
    pub name: &'static str,
    /// Validates the `args` table of a manifest; `steps` are the lab's step
    /// names. The error says which argument is wrong.
    pub validate: fn(&toml::Table, &HashSet<&str>) -> Result<(), String>,
    pub evaluate: fn(&toml::Table, &Observations) -> Outcome,
}

/// Every named check. Add a line here for a new one.
pub const REGISTRY: &[NamedCheck] = &[
    strace_table::CHECK,
    bpf_map::CHECK,
    strace_bpf::CHECK,
    exec_events::CHECK,
    overhead::CHECK,
    syscall_calls::CHECK,
    bpf_prog::CHECK,
    trace_printk::CHECK,
    map_shown::CHECK,
    syscall_events::CHECK,
    call_records::CHECK,
    exec_parents::CHECK,
    same_binary::CHECK,
    seccomp_probe::CHECK,
    lsm_denials::CHECK,
    snmp_counts::CHECK,
];

/// The registered names, for error messages.
pub fn names() -> Vec<&'static str> {
    REGISTRY.iter().map(|c| c.name).collect()
}

fn find(name: &str) -> Option<&'static NamedCheck> {
    REGISTRY.iter().find(|c| c.name == name)
}

pub fn validate_args(name: &str, args: &toml::Table, steps: &HashSet<&str>) -> Result<(), String> {
    let check =
        find(name).ok_or_else(|| format!("no built-in check named {name:?} (known: {})", names().join(", ")))?;
    (check.validate)(args, steps)
}

pub fn evaluate(name: &str, args: &toml::Table, obs: &Observations) -> Outcome {
    match find(name) {
        Some(check) => (check.evaluate)(args, obs),
        None => Err((Status::Bad, format!("no built-in check named {name:?}"))),
    }
}

/// Helpers for reading `args`.
pub mod args {
    use std::collections::HashSet;

    /// A string argument that must name a step of the lab.
    pub fn step_arg<'a>(args: &'a toml::Table, key: &str, steps: &HashSet<&str>) -> Result<&'a str, String> {
        let name = string_arg(args, key)?;
        if steps.contains(name) { Ok(name) } else { Err(format!("{key} = {name:?} is not a step of this lab")) }
    }

    pub fn string_arg<'a>(args: &'a toml::Table, key: &str) -> Result<&'a str, String> {
        match args.get(key) {
            Some(toml::Value::String(s)) => Ok(s),
            Some(other) => Err(format!("{key} must be a string, not {other}")),
            None => Err(format!("{key} is required")),
        }
    }

    /// Rejects keys the check does not know, so typos do not pass silently.
    pub fn only(args: &toml::Table, known: &[&str]) -> Result<(), String> {
        match args.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => Err(format!("unknown argument {k:?} (known: {})", known.join(", "))),
            None => Ok(()),
        }
    }
}

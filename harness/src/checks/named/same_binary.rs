//! `same_binary`: the lab binary that ran in the guest is, byte for byte,
//! the one the harness built and shipped for this run.
//!
//! ```toml
//! check = "same_binary"
//! args = { step = "hash", binary = "core-snoop" }
//! ```
//!
//! The step runs `sha256sum /lab/bin/BINARY` in the guest; the harness
//! hashed the file it shipped ([`Observations::built`]). A lab graded on
//! every kernel is built once and that hash is given to each kernel's run,
//! so this passing on every kernel means one binary ran everywhere: a
//! binary built per kernel (against each kernel's own headers, as BCC
//! compiles on its target) would differ from the one build's hash.

use std::collections::HashSet;

use super::args::{only, step_arg, string_arg};
use super::{NamedCheck, Observations, Outcome, Status};
use crate::checks::{ending, step};

pub const CHECK: NamedCheck = NamedCheck { name: "same_binary", validate, evaluate };

fn validate(args: &toml::Table, steps: &HashSet<&str>) -> Result<(), String> {
    only(args, &["step", "binary"])?;
    step_arg(args, "step", steps)?;
    let binary = string_arg(args, "binary")?;
    if binary.is_empty() || binary.contains('/') {
        return Err(format!("binary = {binary:?} must be the file name of a lab binary"));
    }
    Ok(())
}

/// The hash sha256sum printed: the first word of its output, when it is
/// 64 hex digits.
pub fn printed_hash(stdout: &str) -> Option<String> {
    let word = stdout.split_whitespace().next()?;
    (word.len() == 64 && word.bytes().all(|b| b.is_ascii_hexdigit())).then(|| word.to_ascii_lowercase())
}

fn evaluate(args: &toml::Table, obs: &Observations) -> Outcome {
    let binary = string_arg(args, "binary").map_err(|e| (Status::Bad, e))?;
    let s = step(obs, string_arg(args, "step").map_err(|e| (Status::Bad, e))?)?;
    let built = obs
        .built
        .get(binary)
        .ok_or_else(|| (Status::Missing, format!("the harness built no binary named {binary}")))?;
    let ran = printed_hash(&s.stdout).ok_or_else(|| {
        (Status::Missing, format!("`{}` {} and printed no sha256: {:?}", s.name, ending(s), s.stdout.trim()))
    })?;
    if &ran == built {
        Ok(format!("/lab/bin/{binary} has sha256 {}…, the hash of the one build", &ran[..16]))
    } else {
        Err((Status::Bad, format!("/lab/bin/{binary} has sha256 {ran}; the harness built and shipped {built}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use workbook_agent::StepResult;

    const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn obs(stdout: &str, built: Option<&str>) -> Observations {
        let mut o = Observations::default();
        let r = StepResult { name: "hash".into(), stdout: stdout.into(), exit_code: Some(0), ..Default::default() };
        o.steps.insert("hash".into(), r);
        if let Some(h) = built {
            o.built.insert("core-snoop".into(), h.into());
        }
        o
    }

    fn args() -> toml::Table {
        toml::from_str("step = \"hash\"\nbinary = \"core-snoop\"").unwrap()
    }

    #[test]
    fn the_guests_hash_must_be_the_builds() {
        let line = format!("{HASH}  /lab/bin/core-snoop\n");
        assert!(evaluate(&args(), &obs(&line, Some(HASH))).is_ok());
        let other = HASH.replace('9', "8");
        let (status, detail) = evaluate(&args(), &obs(&line, Some(&other))).unwrap_err();
        assert_eq!(status, Status::Bad);
        assert!(detail.contains(&other), "{detail}");
    }

    #[test]
    fn no_hash_on_either_side_is_missing() {
        assert_eq!(evaluate(&args(), &obs("sha256sum: can't open\n", Some(HASH))).unwrap_err().0, Status::Missing);
        assert_eq!(evaluate(&args(), &obs(HASH, None)).unwrap_err().0, Status::Missing);
        assert_eq!(printed_hash("abc  /x"), None);
    }
}

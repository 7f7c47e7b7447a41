//! Choosing between KVM and TCG.
//!
//! `/dev/kvm` existing proves little: on nested, paravirtual hosts a stock
//! kernel can hang under it. So KVM is used only after a probe boot under
//! it reached the agent within a few seconds; the answer, and why KVM was
//! refused, is cached per host kernel, QEMU and guest kernel in
//! `vm/cache/accel.json` (delete it to probe again).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::qemu::{Accel, Console, VmSpec};
use crate::vm::{self, Timeouts};

/// What the user asked for (`--accel`, or `WORKBOOK_ACCEL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AccelChoice {
    /// KVM if a probe boot proves it works, else TCG.
    Auto,
    Kvm,
    Tcg,
}

/// The environment variable that sets the default `--accel`.
pub const ACCEL_ENV: &str = "WORKBOOK_ACCEL";

impl AccelChoice {
    /// `WORKBOOK_ACCEL`: None when unset or empty, an error naming the
    /// valid values when it is anything else.
    pub fn from_env() -> Result<Option<Self>> {
        match std::env::var(ACCEL_ENV) {
            Err(std::env::VarError::NotPresent) => Ok(None),
            Ok(v) if v.is_empty() => Ok(None),
            Ok(v) => Self::parse(&v).map(Some),
            Err(std::env::VarError::NotUnicode(v)) => Self::parse(&v.to_string_lossy()).map(Some),
        }
    }

    fn parse(value: &str) -> Result<Self> {
        match value {
            "kvm" => Ok(AccelChoice::Kvm),
            "tcg" => Ok(AccelChoice::Tcg),
            "auto" => Ok(AccelChoice::Auto),
            other => Err(Error::Usage(format!("{ACCEL_ENV}={other:?} is not one of: auto, kvm, tcg"))),
        }
    }
}

/// Bounds on the probe: a working KVM boots this kernel in well under a
/// second; a hung one never does.
pub const PROBE_TIMEOUTS: Timeouts = Timeouts { boot: Duration::from_secs(5), total: Duration::from_secs(8) };

/// Whether this process can open /dev/kvm for reading and writing.
pub fn kvm_device_usable() -> bool {
    fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_ok()
}

/// A probe's answer, as cached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub accel: Accel,
    /// Why KVM was refused: what the probe boot ran into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A cache entry: an [`Answer`], or a bare accelerator as older labctl
/// versions wrote it.
#[derive(Deserialize)]
#[serde(untagged)]
enum Stored {
    Answer(Answer),
    Bare(Accel),
}

/// The accelerator to use, and why (for the user).
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub accel: Accel,
    /// Why KVM is not used, when it is not and a probe said why.
    pub reason: Option<String>,
}

/// Decides the accelerator, probing (and caching) when `choice` is Auto.
/// `probe_spec` is a VM that boots the agent with an empty plan; its
/// console goes to `probe_log`.
pub fn decide(
    choice: AccelChoice,
    cache: &Path,
    probe_spec: &VmSpec,
    probe_log: &Path,
    quiet: bool,
) -> Result<Decision> {
    match choice {
        AccelChoice::Kvm => return Ok(Decision { accel: Accel::Kvm, reason: None }),
        AccelChoice::Tcg => return Ok(Decision { accel: Accel::Tcg, reason: None }),
        AccelChoice::Auto => {}
    }
    if !kvm_device_usable() {
        return Ok(Decision { accel: Accel::Tcg, reason: None });
    }
    decide_with(cache, &cache_key(probe_spec), quiet, || probe(probe_spec, probe_log))
}

/// The cached answer for `key`, or `probe`'s, cached. One process probes
/// at a time; the others wait for its answer.
pub fn decide_with(
    cache: &Path,
    key: &str,
    quiet: bool,
    probe: impl FnOnce() -> std::result::Result<(), String>,
) -> Result<Decision> {
    let path = cache.join("accel.json");
    if let Some(answer) = load(&path).remove(key) {
        return Ok(Decision { accel: answer.accel, reason: answer.reason });
    }
    let _lock = crate::files::lock(
        &cache.join("accel.lock"),
        "another labctl to finish probing KVM",
        quiet,
        &crate::INTERRUPTED,
    )?;
    // It may have answered while this one waited.
    let mut known = load(&path);
    if let Some(answer) = known.get(key) {
        return Ok(Decision { accel: answer.accel, reason: answer.reason.clone() });
    }
    if !quiet {
        eprintln!("Probing KVM with a test boot (at most {} s)...", PROBE_TIMEOUTS.total.as_secs());
    }
    let answer = match probe() {
        Ok(()) => Answer { accel: Accel::Kvm, reason: None },
        Err(reason) => Answer { accel: Accel::Tcg, reason: Some(reason) },
    };
    if !quiet {
        match &answer.reason {
            None => eprintln!("KVM works: using kvm"),
            Some(reason) => eprintln!("KVM does not work here ({reason}): using tcg"),
        }
    }
    known.insert(key.to_string(), answer.clone());
    let json = serde_json::to_string_pretty(&known).expect("answers serialise");
    crate::files::write_atomic(&path, json.as_bytes())?;
    Ok(Decision { accel: answer.accel, reason: answer.reason })
}

/// Every cached answer (for `labctl doctor`); empty when there is no cache.
pub fn load(path: &Path) -> BTreeMap<String, Answer> {
    let stored: BTreeMap<String, Stored> =
        fs::read_to_string(path).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
    stored
        .into_iter()
        .map(|(k, v)| {
            let answer = match v {
                Stored::Answer(a) => a,
                Stored::Bare(accel) => Answer { accel, reason: None },
            };
            (k, answer)
        })
        .collect()
}

/// Boots the probe VM under KVM; the error says how it failed.
fn probe(spec: &VmSpec, log: &Path) -> std::result::Result<(), String> {
    let spec = VmSpec { accel: Accel::Kvm, console: Console::Captured, ..spec.clone() };
    let never = AtomicBool::new(false);
    let first_line = |s: String| s.lines().next().unwrap_or_default().to_string();
    match vm::run(&spec, true, log, PROBE_TIMEOUTS, &never, &mut |_| {}) {
        Ok(run) if run.end.is_completed() => Ok(()),
        Ok(run) => Err(run.end.reason()),
        Err(e) => Err(first_line(e.to_string())),
    }
}

fn cache_key(spec: &VmSpec) -> String {
    let host = nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default();
    let qemu_meta = fs::metadata(&spec.qemu).map(|m| m.len()).unwrap_or(0);
    format!("host={host} qemu={}:{qemu_meta} kernel={}", spec.qemu.display(), spec.kernel.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_probe_is_cached_with_its_reason_and_not_run_again() {
        let dir = tempfile::tempdir().unwrap();
        let first =
            decide_with(dir.path(), "k", true, || Err("the VM did not boot: no output within 5 s".into())).unwrap();
        assert_eq!(first.accel, Accel::Tcg);
        assert_eq!(first.reason.as_deref(), Some("the VM did not boot: no output within 5 s"));
        let again = decide_with(dir.path(), "k", true, || panic!("the answer is cached")).unwrap();
        assert_eq!(again, first);
        let cached = fs::read_to_string(dir.path().join("accel.json")).unwrap();
        assert!(cached.contains("no output within 5 s"), "{cached}");
    }

    #[test]
    fn answers_cached_by_older_versions_still_read() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("accel.json"), r#"{"k": "tcg", "j": {"accel": "kvm"}}"#).unwrap();
        let known = load(&dir.path().join("accel.json"));
        assert_eq!(known["k"], Answer { accel: Accel::Tcg, reason: None });
        assert_eq!(known["j"].accel, Accel::Kvm);
    }

    #[test]
    fn an_invalid_choice_names_the_valid_ones() {
        let err = AccelChoice::parse("kmv").unwrap_err().to_string();
        assert!(err.contains("WORKBOOK_ACCEL=\"kmv\"") && err.contains("auto, kvm, tcg"), "{err}");
        assert_eq!(AccelChoice::parse("tcg").unwrap(), AccelChoice::Tcg);
    }
}

//! Choosing between KVM and TCG.
//!
//! `/dev/kvm` existing proves little: on nested, paravirtual hosts a stock
//! kernel can hang under it. So KVM is used only after a probe boot under
//! it reached the agent within a few seconds; the answer is cached per
//! host kernel, QEMU and guest kernel.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::error::Result;
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

impl AccelChoice {
    pub fn from_env() -> Option<Self> {
        match std::env::var("WORKBOOK_ACCEL").ok()?.as_str() {
            "kvm" => Some(AccelChoice::Kvm),
            "tcg" => Some(AccelChoice::Tcg),
            "auto" => Some(AccelChoice::Auto),
            _ => None,
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

/// Decides the accelerator, probing (and caching) when `choice` is Auto.
/// `probe_spec` is a VM that boots the agent with an empty plan.
pub fn decide(choice: AccelChoice, cache: &Path, probe_spec: &VmSpec, quiet: bool) -> Result<Accel> {
    match choice {
        AccelChoice::Kvm => return Ok(Accel::Kvm),
        AccelChoice::Tcg => return Ok(Accel::Tcg),
        AccelChoice::Auto => {}
    }
    if !kvm_device_usable() {
        return Ok(Accel::Tcg);
    }
    let key = cache_key(probe_spec);
    let path = cache.join("accel.json");
    let mut known: BTreeMap<String, Accel> =
        fs::read_to_string(&path).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
    if let Some(accel) = known.get(&key) {
        return Ok(*accel);
    }
    if !quiet {
        eprintln!("Probing KVM with a test boot (at most {} s)...", PROBE_TIMEOUTS.total.as_secs());
    }
    let accel = if probe(probe_spec, cache) { Accel::Kvm } else { Accel::Tcg };
    if !quiet {
        eprintln!("KVM {}: using {}", if accel == Accel::Kvm { "works" } else { "does not work here" }, accel.name());
    }
    known.insert(key, accel);
    let _ = fs::create_dir_all(cache);
    let _ = fs::write(&path, serde_json::to_string_pretty(&known).unwrap_or_default());
    Ok(accel)
}

fn probe(spec: &VmSpec, cache: &Path) -> bool {
    let spec = VmSpec { accel: Accel::Kvm, console: Console::Captured, ..spec.clone() };
    let log = cache.join("kvm-probe.log");
    let never = AtomicBool::new(false);
    vm::run(&spec, true, &log, PROBE_TIMEOUTS, &never, &mut |_| {}).is_ok()
}

fn cache_key(spec: &VmSpec) -> String {
    let host = nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default();
    let qemu_meta = fs::metadata(&spec.qemu).map(|m| m.len()).unwrap_or(0);
    format!("host={host} qemu={}:{qemu_meta} kernel={}", spec.qemu.display(), spec.kernel.display())
}

//! Restored snapshots in the real VM: what every restored run must get (the
//! host's clock, fresh randomness), and the faults a snapshot can have (a
//! truncated state, a snapshot of another kernel), each of which must still
//! end in the right verdict. Each test keeps its snapshots in a directory
//! of its own.

mod common;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use labctl::builder::Variant;
use labctl::engine::{self, EngineEvent, Env, LabReport, LabRun, Options, RunRequest};
use labctl::qemu::Console;
use labctl::snapshot::{Found, Manifest, Snapshot};
use labctl::workspace::Workspace;
use workbook_agent::Plan;

/// The engine with its snapshots in `dir`.
fn env_in(dir: &Path) -> Env {
    let ws = Workspace::at(common::root()).unwrap();
    let (sink, _rx) = mpsc::channel();
    let mut env = engine::prepare(&ws, &Options { quiet: true, ..Options::default() }, &sink).unwrap();
    env.launcher = Box::new(Snapshot::new(dir.to_path_buf(), &env.kernel));
    env
}

/// Lab 1's solution on `env`; its report and the notes and warnings of the run.
fn lab1(env: &Env) -> (LabReport, Vec<String>, Vec<String>) {
    let lab = env.ws.lab(1).unwrap();
    let (sink, rx) = mpsc::channel();
    let report = engine::run_lab(env, &lab, &LabRun::new(Variant::Solution, None), &sink).unwrap();
    drop(sink);
    let (mut notes, mut warnings) = (Vec::new(), Vec::new());
    for ev in rx {
        match ev {
            EngineEvent::Note(n) => notes.push(n),
            EngineEvent::Warning(w) => warnings.push(w),
            _ => {}
        }
    }
    assert!(report.passed, "lab 1's solution must pass: {report:#?}\nwarnings: {warnings:?}");
    (report, notes, warnings)
}

/// The key of the snapshot that runs on `env` restore.
fn key_of(env: &Env, snapshots: &Snapshot) -> String {
    let spec = env.vm_spec(PathBuf::new(), Console::Captured, Path::new("/unused.sock"));
    snapshots.key_for(&env.ws.cache_dir(), &env.base, &spec).unwrap().expect("snapshots possible").0
}

fn manifest(slot: &Path) -> Manifest {
    serde_json::from_str(&std::fs::read_to_string(slot.join("snapshot.json")).unwrap()).unwrap()
}

fn write_manifest(slot: &Path, m: &Manifest) {
    std::fs::write(slot.join("snapshot.json"), serde_json::to_vec(m).unwrap()).unwrap();
}

fn restored(log: &Path) -> bool {
    let text = std::fs::read_to_string(log).unwrap();
    text.lines().next().is_some_and(|command| command.contains(" -incoming "))
}

#[test]
fn a_truncated_snapshot_is_saved_again_or_falls_back_and_the_verdict_holds() {
    let dir = tempfile::tempdir().unwrap();
    let env = env_in(dir.path());
    let snapshots = Snapshot::new(dir.path().to_path_buf(), &env.kernel);
    let key = key_of(&env, &snapshots);
    let slot = snapshots.slot(&key);

    let (_, notes, _) = lab1(&env);
    assert!(notes.iter().any(|n| n.starts_with("saving a VM snapshot")), "{notes:?}");
    let saved = manifest(&slot);

    // Cut short behind labctl's back: the size no longer matches, so the
    // snapshot is saved again before the run restores it.
    let state = std::fs::OpenOptions::new().write(true).open(slot.join("state")).unwrap();
    state.set_len(saved.state_bytes / 2).unwrap();
    let (report, notes, warnings) = lab1(&env);
    assert!(notes.iter().any(|n| n.contains("unusable") && n.contains("state file has")), "{notes:?}");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(restored(report.console_log.as_ref().unwrap()));
    let resaved = manifest(&slot);
    assert_ne!(resaved.boot_id, saved.boot_id, "a new boot was saved");

    // Cut short with a manifest that agrees (a save that went wrong
    // unnoticed): QEMU refuses the stream, and a cold boot gives the verdict.
    let state = std::fs::OpenOptions::new().write(true).open(slot.join("state")).unwrap();
    state.set_len(resaved.state_bytes / 2).unwrap();
    write_manifest(&slot, &Manifest { state_bytes: resaved.state_bytes / 2, ..resaved });
    let (report, _, warnings) = lab1(&env);
    assert!(warnings.iter().any(|w| w.starts_with("restoring the VM snapshot failed")), "{warnings:?}");
    assert!(!restored(report.console_log.as_ref().unwrap()), "the verdict comes from a cold boot");
    assert_eq!(snapshots.find(&key), Found::Missing, "the broken snapshot is gone, to be saved again");
}

#[test]
fn a_snapshot_of_another_kernel_is_never_restored_as_this_ones() {
    let dir = tempfile::tempdir().unwrap();
    let env = env_in(dir.path());
    let snapshots = Snapshot::new(dir.path().to_path_buf(), &env.kernel);
    let this_key = key_of(&env, &snapshots);
    lab1(&env);
    let this_slot = snapshots.slot(&this_key);

    // Another kernel: the same one with bytes after its end, which boots
    // as well but is another file, so its snapshot has another key.
    let mut other = env_in(dir.path());
    let image = dir.path().join("vmlinuz-other");
    let mut bytes = std::fs::read(&env.kernel.image).unwrap();
    bytes.extend_from_slice(&[0u8; 4096]);
    std::fs::write(&image, bytes).unwrap();
    other.kernel.image = image;
    let other_snapshots = Snapshot::new(dir.path().to_path_buf(), &other.kernel);
    let other_key = key_of(&other, &other_snapshots);
    assert_ne!(other_key, this_key);
    other.launcher = Box::new(other_snapshots);
    let other_slot = snapshots.slot(&other_key);

    // This kernel's snapshot, whole, in the other's place: its manifest
    // says whose it is, and the other kernel saves its own.
    std::fs::create_dir_all(&other_slot).unwrap();
    for file in ["state", "boot.cpio", "snapshot.json"] {
        std::fs::copy(this_slot.join(file), other_slot.join(file)).unwrap();
    }
    let (_, notes, warnings) = lab1(&other);
    assert!(notes.iter().any(|n| n.contains("saved for another machine")), "{notes:?}");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(manifest(&other_slot).key, other_key);

    // Only the state swapped, sizes made to agree: QEMU restores it, and
    // the restored agent's boot gives it away before anything runs.
    let this_state = std::fs::metadata(this_slot.join("state")).unwrap().len();
    std::fs::copy(this_slot.join("state"), other_slot.join("state")).unwrap();
    write_manifest(&other_slot, &Manifest { state_bytes: this_state, ..manifest(&other_slot) });
    let (report, _, warnings) = lab1(&other);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("restoring the VM snapshot failed") && w.contains("not the one that was saved")),
        "{warnings:?}"
    );
    assert!(!restored(report.console_log.as_ref().unwrap()), "the verdict comes from a cold boot");
    // This kernel's own snapshot is untouched by all that.
    assert!(matches!(snapshots.find(&this_key), Found::Usable(_)));
}

#[test]
fn every_restored_run_gets_the_hosts_clock_and_its_own_randomness() {
    let dir = tempfile::tempdir().unwrap();
    let env = env_in(dir.path());
    let step = common::step("probe", &["/bin/sh", "-c", "date +%s; cat /proc/sys/kernel/random/uuid"], 20.0);
    let plan = Plan { steps: vec![step], ..Plan::default() };
    let req = RunRequest {
        plan: &plan,
        binaries: &[],
        files: &[],
        modules: &[],
        console: Console::Captured,
        total: Duration::from_secs(60),
        name: "test-clock",
    };
    let (sink, _rx) = mpsc::channel();
    let probe = |env: &Env| {
        let (run, _) = env.run_plan(&req, &sink).unwrap();
        assert!(restored(&run.log), "a restore, not a cold boot");
        let result = engine::step_results(&run.events).remove("probe").unwrap();
        let mut lines = result.stdout.lines();
        let secs: u64 = lines.next().unwrap().parse().unwrap();
        (secs, lines.next().unwrap().to_string())
    };
    probe(&env);
    // The saved clock now lags the host's by at least this much: a guest
    // that kept it would show a time before the next run began.
    std::thread::sleep(Duration::from_secs(2));
    let now = || SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let before = now();
    let (first_secs, first_uuid) = probe(&env);
    let (second_secs, second_uuid) = probe(&env);
    let after = now();
    for secs in [first_secs, second_secs] {
        assert!(before <= secs && secs <= after, "guest clock {secs}, host {before}..{after}");
    }
    assert_ne!(first_uuid, second_uuid, "two restores of one machine drew the same random numbers");
}

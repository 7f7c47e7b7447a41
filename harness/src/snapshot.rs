//! Snapshots: boot the kernel once, save the machine while its agent waits
//! for work, and restore that machine for every run.
//!
//! Under TCG the kernel's boot is most of a run's time; a restore takes a
//! fraction of it. A snapshot is named by a hash of everything that shapes
//! the saved machine (QEMU's version, the kernel, the boot image, the
//! machine's arguments) and lives in `vm/cache/snapshots/<key>/`:
//!
//! ```text
//! snapshot.json   what was saved, from which boot, and the files' sizes
//! state           QEMU's migration stream of the running machine
//! boot.cpio       the initramfs it booted (a restore passes the same arguments)
//! ```
//!
//! Each run's files reach the restored guest on a virtio-blk disk (a header
//! and a cpio, see [`workbook_agent::work_disk`]), never over the UART;
//! labctl wakes the agent on its events port with the host's clock, and
//! the agent reseeds its RNG from the disk. Every run restores the same
//! saved machine, so nothing carries over from one run to the next.
//!
//! Never worse than a cold boot: a missing, stale or corrupt snapshot is
//! saved again; a restore that fails is followed by a cold boot with a
//! one-line warning; a snapshot that cannot be saved, or fails right after
//! it was saved, is set aside for a day (cold boots meanwhile) rather than
//! tried again at every run.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use workbook_agent::{Event, WAIT_PATH, WaitForWork, work_disk};

use crate::error::{Error, Result};
use crate::image::{self, Archive};
use crate::kernels::Kernel;
use crate::launch::{ColdBoot, Launch, Launcher};
use crate::qemu::{self, Console, VmSpec};
use crate::vm::{self, Msg, Timeouts, VmEvent, VmRun, Waking};

/// Bumped whenever the layout of a snapshot or the agent's waiting changes.
pub const FORMAT: u32 = 1;
/// The work disk's size, fixed: the guest saw this capacity when it was
/// saved, and a restored guest keeps it. Sparse on the host.
pub const WORK_DISK_BYTES: u64 = 128 << 20;
/// The modules a guest needs for the work disk.
const DISK_MODULES: &[&str] = &["virtio_pci", "virtio_blk"];
/// The work disk inside the guest: the only virtio-blk device.
const GUEST_DISK: &str = "/dev/vda";
/// A restore answers in well under a second; a restore that has not within
/// this bound is a failed one, and a cold boot follows.
const RESTORE_BOUND: Duration = Duration::from_secs(20);
/// From the `migrate` command to a saved machine.
const SAVE_BOUND: Duration = Duration::from_secs(60);
/// How long a snapshot that failed right after it was saved is left alone.
const UNUSABLE_FOR: Duration = Duration::from_secs(24 * 3600);
/// Snapshots kept: the most recently used, plus any used within the hour.
const KEEP: usize = 6;
const PRUNE_GRACE: Duration = Duration::from_secs(3600);

/// What a snapshot's directory says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub key: String,
    /// For people: the kernel and QEMU it was saved with.
    pub kernel: String,
    pub qemu: String,
    /// The saved boot's `boot_id`, which every restored agent must report.
    pub boot_id: String,
    pub state_bytes: u64,
    pub boot_image_bytes: u64,
}

/// Whether a snapshot directory can be restored.
#[derive(Debug, Clone, PartialEq)]
pub enum Found {
    Usable(Manifest),
    Missing,
    /// Saved by another format or for another key: save again.
    Stale(String),
    /// Its files are not what it says: save again.
    Corrupt(String),
}

/// Judges a snapshot from its manifest (`Err`: unreadable) and its files'
/// sizes (None: missing), without reading the state itself.
pub fn judge(
    manifest: Option<std::result::Result<Manifest, String>>,
    key: &str,
    state_bytes: Option<u64>,
    boot_image_bytes: Option<u64>,
) -> Found {
    let m = match manifest {
        None => return Found::Missing,
        Some(Err(e)) => return Found::Corrupt(format!("its snapshot.json is unreadable ({e})")),
        Some(Ok(m)) => m,
    };
    if m.format != FORMAT {
        return Found::Stale(format!("saved in format {}, this labctl uses {FORMAT}", m.format));
    }
    if m.key != key {
        return Found::Stale(format!("saved for another machine ({})", short(&m.key)));
    }
    if state_bytes != Some(m.state_bytes) {
        return Found::Corrupt(match state_bytes {
            None => "its state file is missing".into(),
            Some(n) => format!("its state file has {n} bytes, {} were saved", m.state_bytes),
        });
    }
    if boot_image_bytes != Some(m.boot_image_bytes) {
        return Found::Corrupt("its boot image is missing or changed".into());
    }
    Found::Usable(m)
}

fn short(key: &str) -> &str {
    &key[..key.len().min(12)]
}

/// The arguments that shape the saved machine: [`qemu::qemu_args`] of a
/// restore of `spec`, with the files that differ from run to run (and
/// those hashed on their own) replaced by fixed names.
pub fn machine_args(spec: &VmSpec) -> Vec<OsString> {
    let shape = VmSpec {
        qemu: "qemu".into(),
        kernel: "<kernel>".into(),
        initrd: "<boot image>".into(),
        events_socket: "<events>".into(),
        work_disk: Some("<work disk>".into()),
        incoming: None,
        qmp_socket: None,
        ..spec.clone()
    };
    qemu::qemu_args(&shape)
}

/// The snapshot's name: a hash of QEMU's version, the kernel's contents,
/// the boot image's identity and the machine's arguments.
pub fn snapshot_key(qemu_version: &str, kernel_sha256: &str, boot_image: &str, machine: &[OsString]) -> String {
    let mut h = Sha256::new();
    h.update(format!("workbook-snapshot-v{FORMAT}\0").as_bytes());
    for part in [qemu_version, kernel_sha256, boot_image] {
        h.update(part.as_bytes());
        h.update(b"\0");
    }
    for arg in machine {
        h.update(arg.as_encoded_bytes());
        h.update(b"\0");
    }
    hex::encode(&h.finalize()[..16])
}

/// The boot image's extra part: the wait instructions and the disk's
/// modules. None when the kernel cannot have the disk (a kernel given by
/// path has no modules).
pub fn wait_archive(kernel: &Kernel) -> Option<Archive> {
    let dir = kernel.modules_dir.as_ref()?;
    let release = kernel.release.as_deref()?;
    let builtin = fs::read_to_string(dir.join("modules.builtin")).unwrap_or_default();
    let is_builtin = |name: &str| builtin.lines().any(|l| l.rsplit('/').next() == Some(&format!("{name}.ko")));
    let needed: Vec<String> = DISK_MODULES.iter().filter(|m| !is_builtin(m)).map(|m| m.to_string()).collect();
    let order = if needed.is_empty() { Vec::new() } else { image::module_closure(dir, &needed).ok()? };
    let mut a = Archive::default();
    let mut wait = WaitForWork { modules: Vec::new(), disk: GUEST_DISK.into() };
    for rel in order {
        let guest = format!("/lib/modules/{release}/{rel}");
        a.file(&guest, &dir.join(&rel), 0o644);
        wait.modules.push(guest);
    }
    a.bytes(WAIT_PATH, serde_json::to_vec_pretty(&wait).expect("wait instructions serialise"), 0o644);
    Some(a)
}

/// Writes the run's work disk: header, cpio, and a sparse tail up to
/// [`WORK_DISK_BYTES`]. Ok(false) when the files do not fit.
pub fn write_work_disk(path: &Path, extra: &Archive) -> Result<bool> {
    let mut archive = Vec::new();
    extra.write_cpio(&mut archive)?;
    if (work_disk::HEADER_LEN + archive.len()) as u64 > WORK_DISK_BYTES {
        return Ok(false);
    }
    let mut entropy = [0u8; work_disk::ENTROPY_LEN];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut entropy);
    let header = work_disk::Header { archive_len: archive.len() as u64, entropy };
    let context = || format!("writing {}", path.display());
    let mut file = fs::File::create(path).map_err(Error::io(context()))?;
    file.write_all(&header.encode()).map_err(Error::io(context()))?;
    file.write_all(&archive).map_err(Error::io(context()))?;
    file.set_len(WORK_DISK_BYTES).map_err(Error::io(context()))?;
    Ok(true)
}

/// A file next to the console log `<stem>.console.log`: `<stem>.<suffix>`.
fn beside(log: &Path, suffix: &str) -> PathBuf {
    let name = log.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let stem = name.strip_suffix(".console.log").unwrap_or(&name);
    log.with_file_name(format!("{stem}.{suffix}"))
}

/// Removes a file when dropped: a run's work disk, whatever the ending.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// The launcher that restores snapshots; see the module's documentation.
pub struct Snapshot {
    /// `vm/cache/snapshots`.
    dir: PathBuf,
    kernel: Kernel,
    /// None: this kernel cannot have the work disk, so every run boots cold.
    wait: Option<Archive>,
    /// `qemu --version` and kernel hashes, by path: asked once per process.
    identities: Mutex<HashMap<(PathBuf, u64, i64), String>>,
}

impl Snapshot {
    pub fn new(dir: PathBuf, kernel: &Kernel) -> Self {
        Snapshot { dir, wait: wait_archive(kernel), kernel: kernel.clone(), identities: Mutex::new(HashMap::new()) }
    }

    /// Whether runs on this kernel can restore snapshots at all.
    pub fn possible(&self) -> bool {
        self.wait.is_some()
    }

    /// `what(path)`, computed once per file version.
    fn identity(&self, path: &Path, what: impl FnOnce(&Path) -> Result<String>) -> Result<String> {
        let meta = fs::metadata(path).map_err(Error::io(format!("reading {}", path.display())))?;
        let id = (path.to_path_buf(), meta.len(), meta.mtime());
        if let Some(known) = self.identities.lock().unwrap_or_else(|p| p.into_inner()).get(&id) {
            return Ok(known.clone());
        }
        let value = what(path)?;
        self.identities.lock().unwrap_or_else(|p| p.into_inner()).insert(id, value.clone());
        Ok(value)
    }

    fn qemu_version(&self, qemu: &Path) -> Result<String> {
        self.identity(qemu, |q| {
            let mut cmd = std::process::Command::new(q);
            cmd.arg("--version");
            let out = crate::exec::output(&mut cmd, true)?;
            Ok(String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or_default().trim().to_string())
        })
    }

    fn kernel_sha256(&self, kernel: &Path) -> Result<String> {
        self.identity(kernel, |k| {
            let bytes = fs::read(k).map_err(Error::io(format!("reading {}", k.display())))?;
            Ok(hex::encode(Sha256::digest(&bytes)))
        })
    }

    /// The directory of the snapshot for `key`.
    pub fn slot(&self, key: &str) -> PathBuf {
        self.dir.join(key)
    }

    /// The key of the machine that a run of `spec` restores, and the boot
    /// image (base and wait archive) it boots when it is saved.
    pub fn key_for(&self, cache: &Path, base: &Archive, spec: &VmSpec) -> Result<Option<(String, PathBuf)>> {
        let Some(wait) = &self.wait else { return Ok(None) };
        let boot_image = image::build_initrd(cache, base, wait)?;
        let boot_name = boot_image.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let key = snapshot_key(
            &self.qemu_version(&spec.qemu)?,
            &self.kernel_sha256(&spec.kernel)?,
            &boot_name,
            &machine_args(spec),
        );
        Ok(Some((key, boot_image)))
    }

    /// What is in the slot for `key`.
    pub fn find(&self, key: &str) -> Found {
        let slot = self.slot(key);
        let manifest = match fs::read_to_string(slot.join("snapshot.json")) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => Some(Err(e.to_string())),
            Ok(text) => Some(serde_json::from_str::<Manifest>(&text).map_err(|e| e.to_string())),
        };
        let size = |name: &str| fs::metadata(slot.join(name)).ok().map(|m| m.len());
        judge(manifest, key, size("state"), size("boot.cpio"))
    }

    fn unusable_marker(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.unusable"))
    }

    /// Why the snapshot for `key` is set aside, while it is.
    fn set_aside(&self, key: &str) -> Option<String> {
        let marker = self.unusable_marker(key);
        let age = fs::metadata(&marker).ok()?.modified().ok()?.elapsed().unwrap_or_default();
        (age < UNUSABLE_FOR).then(|| fs::read_to_string(&marker).unwrap_or_default())
    }

    /// The usable snapshot for `key`, saving one first when there is none.
    /// Returns it and how long saving took (zero when it was there).
    #[allow(clippy::too_many_arguments)]
    fn find_or_save(
        &self,
        key: &str,
        boot_image: &Path,
        run: &Launch<'_>,
        interrupted: &AtomicBool,
        on_event: &mut dyn FnMut(VmEvent<'_>),
    ) -> Result<(Manifest, Option<Duration>)> {
        if let Found::Usable(m) = self.find(key) {
            return Ok((m, None));
        }
        fs::create_dir_all(&self.dir).map_err(Error::io(format!("creating {}", self.dir.display())))?;
        // One saver per key; the others wait and take its snapshot.
        let _lock = crate::files::lock(
            &self.dir.join(format!("{key}.lock")),
            "another labctl saving the same snapshot",
            run.quiet,
            interrupted,
        )?;
        let why = match self.find(key) {
            Found::Usable(m) => return Ok((m, None)),
            Found::Missing => None,
            Found::Stale(why) | Found::Corrupt(why) => Some(why),
        };
        let slot = self.slot(key);
        let _ = fs::remove_dir_all(&slot);
        let note = match &why {
            Some(why) => format!("saving the VM snapshot again: the old one is unusable ({why})"),
            None => format!("saving a VM snapshot of kernel {} (once; later runs restore it)", self.kernel.name),
        };
        on_event(VmEvent::Note(&note));
        let started = Instant::now();
        let manifest = self.save(key, boot_image, run, interrupted)?;
        prune(&self.dir, KEEP, key);
        Ok((manifest, Some(started.elapsed())))
    }

    /// Boots `boot_image` with the work disk's placeholder, waits for the
    /// agent to be ready, saves the running machine, and moves the result
    /// into the key's slot.
    fn save(&self, key: &str, boot_image: &Path, run: &Launch<'_>, interrupted: &AtomicBool) -> Result<Manifest> {
        let building = tempfile::Builder::new()
            .prefix(&format!(".{key}."))
            .tempdir_in(&self.dir)
            .map_err(Error::io(format!("creating a directory in {}", self.dir.display())))?;
        let placeholder = building.path().join("placeholder.img");
        fs::File::create(&placeholder)
            .and_then(|f| f.set_len(WORK_DISK_BYTES))
            .map_err(Error::io(format!("writing {}", placeholder.display())))?;
        let boot_copy = building.path().join("boot.cpio");
        if fs::hard_link(boot_image, &boot_copy).is_err() {
            fs::copy(boot_image, &boot_copy).map_err(Error::io(format!("copying {}", boot_image.display())))?;
        }
        let state = building.path().join("state");
        let spec = VmSpec {
            initrd: boot_copy.clone(),
            work_disk: Some(placeholder.clone()),
            qmp_socket: Some(beside(&run.spec.events_socket, "qmp")),
            incoming: None,
            ..run.spec.clone()
        };
        let log = beside(run.log, "snapshot.console.log");
        let boot_id = save_machine(&spec, &state, &log, run.timeouts.boot, run.quiet, interrupted)?;
        let _ = fs::remove_file(&placeholder);
        let size = |p: &Path| fs::metadata(p).map(|m| m.len()).map_err(Error::io(format!("reading {}", p.display())));
        let manifest = Manifest {
            format: FORMAT,
            key: key.to_string(),
            kernel: format!("{} ({})", self.kernel.name, self.kernel.release.as_deref().unwrap_or("custom")),
            qemu: self.qemu_version(&spec.qemu)?,
            boot_id,
            state_bytes: size(&state)?,
            boot_image_bytes: size(&boot_copy)?,
        };
        let json = serde_json::to_vec_pretty(&manifest).expect("a manifest serialises");
        crate::files::write_atomic(&building.path().join("snapshot.json"), &json)?;
        let slot = self.slot(key);
        let kept = building.keep();
        if let Err(e) = fs::rename(&kept, &slot) {
            let _ = fs::remove_dir_all(&kept);
            // Someone else's snapshot took the slot first: as good as ours,
            // but restored with its own boot.
            return match self.find(key) {
                Found::Usable(theirs) => Ok(theirs),
                _ => Err(Error::Io { context: format!("moving the snapshot to {}", slot.display()), source: e }),
            };
        }
        Ok(manifest)
    }

    /// Restores the snapshot in `manifest` with this run's work disk. A run
    /// that saved the snapshot first waited `saved_ms` for that, which
    /// counts as boot time.
    fn restore(
        &self,
        manifest: &Manifest,
        saved_ms: u64,
        disk: &Path,
        run: &Launch<'_>,
        interrupted: &AtomicBool,
        on_event: &mut dyn FnMut(VmEvent<'_>),
    ) -> Result<VmRun> {
        let slot = self.slot(&manifest.key);
        let spec = VmSpec {
            initrd: slot.join("boot.cpio"),
            work_disk: Some(disk.to_path_buf()),
            incoming: Some(slot.join("state")),
            qmp_socket: None,
            ..run.spec.clone()
        };
        let timeouts = Timeouts { boot: run.timeouts.boot.min(RESTORE_BOUND), total: run.timeouts.total };
        let waking = Waking { boot_id: manifest.boot_id.clone() };
        // A restore that fails before the agent speaks is followed by a cold
        // boot: what it said until then belongs in the warning, not the run.
        let mut early_warnings = Vec::new();
        let mut booted = false;
        let result =
            vm::run_with(&spec, Some(&waking), run.quiet, run.log, timeouts, interrupted, &mut |ev| match ev {
                VmEvent::Agent(Event::Warning { message }) if !booted => early_warnings.push(message.clone()),
                VmEvent::Booted { boot_ms } => {
                    booted = true;
                    on_event(VmEvent::Booted { boot_ms: boot_ms + saved_ms })
                }
                ev => on_event(ev),
            });
        match result {
            Err(Error::Boot { message, log }) if !early_warnings.is_empty() => {
                Err(Error::Boot { message: format!("{message}; the agent said: {}", early_warnings.join("; ")), log })
            }
            other => other,
        }
    }
}

impl Launcher for Snapshot {
    fn name(&self) -> &'static str {
        "snapshot restore"
    }

    fn launch(
        &self,
        cache: &Path,
        run: Launch<'_>,
        interrupted: &AtomicBool,
        on_event: &mut dyn FnMut(VmEvent<'_>),
    ) -> Result<VmRun> {
        // The shell's console is the user's terminal, for a session of its
        // own: nothing to gain from a restore there.
        if run.spec.console != Console::Captured {
            return ColdBoot.launch(cache, run, interrupted, on_event);
        }
        let staging = Instant::now();
        let Some((key, boot_image)) = self.key_for(cache, run.base, &run.spec)? else {
            return ColdBoot.launch(cache, run, interrupted, on_event);
        };
        if self.set_aside(&key).is_some() {
            return ColdBoot.launch(cache, run, interrupted, on_event);
        }
        let disk = Scratch(beside(run.log, "work.img"));
        if !write_work_disk(&disk.0, run.extra)? {
            let warning = format!(
                "this run's files are more than a snapshot's work disk holds ({} MiB): cold boot",
                WORK_DISK_BYTES >> 20
            );
            on_event(VmEvent::Warning(&warning));
            return ColdBoot.launch(cache, run, interrupted, on_event);
        }
        on_event(VmEvent::Staged { ms: staging.elapsed().as_millis() as u64 });

        let (manifest, saved_in) = match self.find_or_save(&key, &boot_image, &run, interrupted, on_event) {
            Ok(found) => found,
            Err(Error::Interrupted) => return Err(Error::Interrupted),
            Err(e) => {
                let reason = first_line(&e);
                // Not again at every run: a save that fails costs a boot.
                let _ = fs::write(self.unusable_marker(&key), &reason);
                let warning = format!(
                    "could not save a VM snapshot ({reason}; {}): cold boot, and no snapshot of this VM for a day",
                    beside(run.log, "snapshot.console.log").display()
                );
                on_event(VmEvent::Warning(&warning));
                return ColdBoot.launch(cache, run, interrupted, on_event);
            }
        };
        let saved_ms = saved_in.map_or(0, |d| d.as_millis() as u64);
        match self.restore(&manifest, saved_ms, &disk.0, &run, interrupted, on_event) {
            Ok(mut vm) => {
                touch(&self.slot(&key).join("snapshot.json"));
                vm.boot_ms += saved_ms;
                vm.total_ms += saved_ms;
                Ok(vm)
            }
            Err(Error::Interrupted) => Err(Error::Interrupted),
            Err(e) => {
                let kept_log = beside(run.log, "restore.console.log");
                let _ = fs::rename(run.log, &kept_log);
                let reason = first_line(&e);
                if saved_in.is_some() {
                    // Saved a moment ago and failed at once: saving again at
                    // every run would make each one slower than a cold boot.
                    let _ = fs::write(self.unusable_marker(&key), &reason);
                }
                let _ = fs::remove_dir_all(self.slot(&key));
                let warning = format!(
                    "restoring the VM snapshot failed ({reason}; {}): cold boot instead{}",
                    kept_log.display(),
                    if saved_in.is_some() { ", and no snapshot of this VM for a day" } else { "" }
                );
                on_event(VmEvent::Warning(&warning));
                ColdBoot.launch(cache, run, interrupted, on_event)
            }
        }
    }
}

fn first_line(e: &Error) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

/// A use of a snapshot: pruning goes by age.
fn touch(path: &Path) {
    let _ = fs::File::options().append(true).open(path).and_then(|f| f.set_modified(SystemTime::now()));
}

/// Keeps the `keep` most recently used snapshots (and every one used
/// within [`PRUNE_GRACE`]); `current` is never removed.
fn prune(dir: &Path, keep: usize, current: &str) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    let mut slots: Vec<(SystemTime, PathBuf)> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            !name.starts_with('.') && name != current
        })
        .filter_map(|e| {
            let used = fs::metadata(e.path().join("snapshot.json")).and_then(|m| m.modified()).ok()?;
            Some((used, e.path()))
        })
        .collect();
    slots.sort();
    let excess = (slots.len() + 1).saturating_sub(keep);
    let now = SystemTime::now();
    for (used, path) in slots.into_iter().take(excess) {
        if now.duration_since(used).is_ok_and(|age| age > PRUNE_GRACE) {
            let _ = fs::remove_dir_all(path);
        }
    }
}

/// A minimal QMP client: one command at a time, events skipped.
struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    /// Accepts QEMU's connection (within `bound`) and enters command mode.
    fn accept(listener: &UnixListener, bound: Duration, interrupted: &AtomicBool) -> std::result::Result<Qmp, String> {
        let started = Instant::now();
        let stream = loop {
            match listener.accept() {
                Ok((stream, _)) => break stream,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if started.elapsed() > bound || interrupted.load(Ordering::SeqCst) {
                        return Err("QEMU did not connect to its control socket".into());
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(format!("accepting QEMU's control connection: {e}")),
            }
        };
        let io = |e: std::io::Error| format!("QMP: {e}");
        stream.set_nonblocking(false).map_err(io)?;
        stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(io)?;
        stream.set_write_timeout(Some(Duration::from_secs(10))).map_err(io)?;
        let writer = stream.try_clone().map_err(io)?;
        let mut qmp = Qmp { reader: BufReader::new(stream), writer };
        let greeting = qmp.line()?;
        if greeting.get("QMP").is_none() {
            return Err(format!("QMP: unexpected greeting {greeting}"));
        }
        qmp.execute("qmp_capabilities", serde_json::json!({}))?;
        Ok(qmp)
    }

    fn line(&mut self) -> std::result::Result<serde_json::Value, String> {
        let mut text = String::new();
        match self.reader.read_line(&mut text) {
            Ok(0) => Err("QMP: QEMU closed its control socket".into()),
            Ok(_) => serde_json::from_str(&text).map_err(|e| format!("QMP: {e}: {text}")),
            Err(e) => Err(format!("QMP: {e}")),
        }
    }

    /// Runs `command`; its `return` value, or its error's description.
    fn execute(
        &mut self,
        command: &str,
        arguments: serde_json::Value,
    ) -> std::result::Result<serde_json::Value, String> {
        let request = serde_json::json!({ "execute": command, "arguments": arguments });
        writeln!(self.writer, "{request}").map_err(|e| format!("QMP: {e}"))?;
        loop {
            let reply = self.line()?;
            if let Some(value) = reply.get("return") {
                return Ok(value.clone());
            }
            if let Some(error) = reply.get("error") {
                return Err(format!("QMP {command}: {}", error.get("desc").unwrap_or(error)));
            }
            // An asynchronous event (STOP, RESUME, ...): not the answer.
        }
    }
}

/// Boots `spec`, waits for the agent's [`Event::Ready`], and saves the
/// running machine into `state`. Returns the saved boot's id.
fn save_machine(
    spec: &VmSpec,
    state: &Path,
    log: &Path,
    boot_bound: Duration,
    quiet: bool,
    interrupted: &AtomicBool,
) -> Result<String> {
    let qmp_socket = spec.qmp_socket.as_ref().expect("a save has a control socket");
    let _ = fs::remove_file(qmp_socket);
    let listener =
        UnixListener::bind(qmp_socket).map_err(Error::io(format!("listening on {}", qmp_socket.display())))?;
    listener.set_nonblocking(true).map_err(Error::io("configuring the control socket"))?;
    let _socket = Scratch(qmp_socket.clone());
    let mut vm = vm::start(spec, quiet, log)?;
    let fail = |message: String| Error::Boot { message, log: log.to_path_buf() };
    let mut qmp = Qmp::accept(&listener, boot_bound, interrupted).map_err(fail)?;

    let mut said = Vec::new();
    let boot_id = loop {
        if interrupted.load(Ordering::SeqCst) {
            return Err(Error::Interrupted);
        }
        if vm.started.elapsed() > boot_bound {
            return Err(fail(format!("the agent was not ready within {} s", boot_bound.as_secs_f64())));
        }
        match vm.rx.recv_timeout(Duration::from_millis(10)) {
            Ok(Msg::Agent(Event::Ready { boot_id, .. })) => break boot_id,
            Ok(Msg::Agent(Event::Warning { message })) => said.push(message),
            Ok(Msg::Agent(ev)) => return Err(fail(format!("the agent did not wait for work: {ev:?}"))),
            Ok(Msg::Console(line)) if line.contains("Kernel panic") => {
                return Err(Error::KernelPanic { message: line.trim().to_string(), log: log.to_path_buf() });
            }
            Ok(Msg::Stderr(line)) => said.push(format!("QEMU: {line}")),
            Ok(_) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Err(fail("QEMU ended before the agent was ready".into())),
        }
        if matches!(vm.guard.0.try_wait(), Ok(Some(_))) {
            return Err(fail(format!("QEMU ended before the agent was ready: {}", said.join("; "))));
        }
    };

    // QEMU's default migration bandwidth (32 MiB/s) is for networks; this is
    // a local file.
    let qmp_fail = |e: String| fail(format!("saving the machine: {e}"));
    qmp.execute("migrate-set-parameters", serde_json::json!({ "max-bandwidth": 1u64 << 40 })).map_err(qmp_fail)?;
    // Saved while running: a machine saved stopped would restore stopped.
    qmp.execute("migrate", serde_json::json!({ "uri": qemu::migrate_uri(state) })).map_err(qmp_fail)?;
    let saving = Instant::now();
    loop {
        if interrupted.load(Ordering::SeqCst) {
            return Err(Error::Interrupted);
        }
        if saving.elapsed() > SAVE_BOUND {
            return Err(fail(format!("saving the machine took longer than {} s", SAVE_BOUND.as_secs())));
        }
        let info = qmp.execute("query-migrate", serde_json::json!({})).map_err(qmp_fail)?;
        match info.get("status").and_then(|s| s.as_str()) {
            Some("completed") => break,
            Some(status @ ("failed" | "cancelled")) => {
                let why = info.get("error-desc").and_then(|d| d.as_str()).unwrap_or("no reason given");
                return Err(fail(format!("saving the machine {status}: {why}")));
            }
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    // The saved machine is stopped now; its copies live on in the state.
    let _ = qmp.execute("quit", serde_json::json!({}));
    drop(vm);
    Ok(boot_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qemu::Accel;

    fn spec() -> VmSpec {
        VmSpec {
            qemu: "/usr/bin/qemu-system-x86_64".into(),
            kernel: "/k/vmlinuz".into(),
            initrd: "/images/initrd-a-b.cpio".into(),
            accel: Accel::Tcg,
            memory_mb: 512,
            cpus: 1,
            console: Console::Captured,
            events_socket: "/run/1/lab01.sock".into(),
            cmdline_extra: Vec::new(),
            work_disk: None,
            incoming: None,
            qmp_socket: None,
        }
    }

    fn key(spec: &VmSpec) -> String {
        snapshot_key("QEMU emulator version 7.2.22", "kernelsha", "initrd-a-b.cpio", &machine_args(spec))
    }

    #[test]
    fn the_key_ignores_what_differs_from_run_to_run() {
        let mut other = spec();
        other.events_socket = "/run/2/lab03.sock".into();
        other.initrd = "/elsewhere/boot.cpio".into();
        other.work_disk = Some("/run/2/lab03.work.img".into());
        other.incoming = Some("/snap/state".into());
        other.qmp_socket = Some("/run/2/lab03.qmp".into());
        assert_eq!(key(&spec()), key(&other));
    }

    #[test]
    fn the_key_changes_with_everything_that_shapes_the_machine() {
        let base = key(&spec());
        let changed = [
            VmSpec { memory_mb: 1024, ..spec() },
            VmSpec { accel: Accel::Kvm, ..spec() },
            VmSpec { cpus: 2, ..spec() },
            VmSpec { cmdline_extra: vec!["lsm=bpf".into()], ..spec() },
        ];
        for s in &changed {
            assert_ne!(key(s), base, "{s:?}");
        }
        let args = machine_args(&spec());
        assert_ne!(snapshot_key("QEMU emulator version 8.2.0", "kernelsha", "initrd-a-b.cpio", &args), base);
        assert_ne!(snapshot_key("QEMU emulator version 7.2.22", "otherkernel", "initrd-a-b.cpio", &args), base);
        assert_ne!(snapshot_key("QEMU emulator version 7.2.22", "kernelsha", "initrd-c-d.cpio", &args), base);
    }

    #[test]
    fn the_machine_shape_has_the_work_disk_but_no_saved_state_or_monitor() {
        let args: Vec<String> = machine_args(&spec()).iter().map(|a| a.to_string_lossy().into_owned()).collect();
        assert!(args.iter().any(|a| a.starts_with("file=<work disk>,")), "{args:?}");
        assert!(!args.iter().any(|a| a == "-incoming" || a == "-mon"), "{args:?}");
    }

    fn manifest() -> Manifest {
        Manifest {
            format: FORMAT,
            key: "k1".into(),
            kernel: "6.1".into(),
            qemu: "7.2".into(),
            boot_id: "b".into(),
            state_bytes: 100,
            boot_image_bytes: 50,
        }
    }

    #[test]
    fn a_snapshot_is_usable_only_when_its_manifest_key_and_sizes_agree() {
        assert_eq!(judge(Some(Ok(manifest())), "k1", Some(100), Some(50)), Found::Usable(manifest()));
        assert_eq!(judge(None, "k1", None, None), Found::Missing);
        assert!(matches!(judge(Some(Err("eof".into())), "k1", Some(100), Some(50)), Found::Corrupt(_)));
        assert!(matches!(judge(Some(Ok(manifest())), "k2", Some(100), Some(50)), Found::Stale(_)));
        let old = Manifest { format: FORMAT - 1, ..manifest() };
        assert!(matches!(judge(Some(Ok(old)), "k1", Some(100), Some(50)), Found::Stale(_)));
        match judge(Some(Ok(manifest())), "k1", Some(40), Some(50)) {
            Found::Corrupt(why) => assert!(why.contains("40 bytes"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(judge(Some(Ok(manifest())), "k1", None, Some(50)), Found::Corrupt(_)));
        assert!(matches!(judge(Some(Ok(manifest())), "k1", Some(100), None), Found::Corrupt(_)));
    }

    #[test]
    fn the_work_disk_has_a_header_the_archive_and_a_fixed_size() {
        let dir = tempfile::tempdir().unwrap();
        let mut extra = Archive::default();
        extra.bytes("/workbook/plan.json", "{}", 0o644);
        let path = dir.path().join("run.work.img");
        assert!(write_work_disk(&path, &extra).unwrap());
        let bytes = fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, WORK_DISK_BYTES);
        let header = work_disk::Header::decode(&bytes[..work_disk::HEADER_LEN]).unwrap();
        let mut cpio = Vec::new();
        extra.write_cpio(&mut cpio).unwrap();
        assert_eq!(header.archive_len as usize, cpio.len());
        assert_eq!(&bytes[work_disk::HEADER_LEN..work_disk::HEADER_LEN + cpio.len()], &cpio[..]);
        // Fresh entropy for every run.
        write_work_disk(&path, &extra).unwrap();
        let again = work_disk::Header::decode(&fs::read(&path).unwrap()[..work_disk::HEADER_LEN]).unwrap();
        assert_ne!(again.entropy, header.entropy);
    }

    #[test]
    fn files_beside_a_console_log_share_its_stem() {
        assert_eq!(
            beside(Path::new("/r/1/lab01-solution.console.log"), "work.img"),
            Path::new("/r/1/lab01-solution.work.img")
        );
        assert_eq!(beside(Path::new("/r/1/lab01.sock"), "qmp"), Path::new("/r/1/lab01.sock.qmp"));
    }

    #[test]
    fn the_wait_archive_loads_the_disk_modules_in_order() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("modules.dep"),
            "kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio.ko\n\
             kernel/drivers/virtio/virtio.ko:\n\
             kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko\n",
        )
        .unwrap();
        let kernel = Kernel {
            name: "6.1".into(),
            image: "/k".into(),
            modules_dir: Some(dir.path().to_path_buf()),
            release: Some("6.1.0-x".into()),
        };
        let a = wait_archive(&kernel).unwrap();
        let Some(image::Entry { source: image::Source::Bytes(json), .. }) = a.entries.get("workbook/wait.json") else {
            panic!("no wait.json in {:?}", a.entries.keys());
        };
        let wait: WaitForWork = serde_json::from_slice(json).unwrap();
        let names: Vec<&str> = wait.modules.iter().map(|m| m.rsplit('/').next().unwrap()).collect();
        assert_eq!(names, ["virtio.ko", "virtio_pci.ko", "virtio_blk.ko"]);
        assert_eq!(wait.disk, "/dev/vda");
        // A kernel given by path has no modules, so no snapshot.
        assert!(wait_archive(&Kernel { modules_dir: None, ..kernel }).is_none());
    }

    #[test]
    fn a_snapshot_set_aside_stays_aside_for_a_day_only() {
        let dir = tempfile::tempdir().unwrap();
        let kernel = Kernel { name: "6.1".into(), image: "/k".into(), modules_dir: None, release: None };
        let snapshots = Snapshot::new(dir.path().to_path_buf(), &kernel);
        assert_eq!(snapshots.set_aside("k1"), None);
        fs::write(snapshots.unusable_marker("k1"), "QEMU exited: load of migration failed").unwrap();
        assert_eq!(snapshots.set_aside("k1").as_deref(), Some("QEMU exited: load of migration failed"));
        assert_eq!(snapshots.set_aside("k2"), None, "only that machine's snapshot");
        let two_days_ago = SystemTime::now() - 2 * UNUSABLE_FOR;
        fs::File::options()
            .append(true)
            .open(snapshots.unusable_marker("k1"))
            .unwrap()
            .set_modified(two_days_ago)
            .unwrap();
        assert_eq!(snapshots.set_aside("k1"), None, "tried again after a day");
    }

    #[test]
    fn pruning_keeps_the_current_and_the_recently_used_snapshots() {
        let dir = tempfile::tempdir().unwrap();
        let old = SystemTime::now() - 2 * PRUNE_GRACE;
        for name in ["a", "b", "c", "current"] {
            fs::create_dir_all(dir.path().join(name)).unwrap();
            let manifest = dir.path().join(name).join("snapshot.json");
            fs::write(&manifest, "{}").unwrap();
            if name != "c" {
                fs::File::options().append(true).open(&manifest).unwrap().set_modified(old).unwrap();
            }
        }
        prune(dir.path(), 2, "current");
        let mut left: Vec<String> =
            fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        // Two kept: the current one and the one used lately; old ones go.
        assert_eq!(left, ["c", "current"]);
    }
}

//! How a run's guest is started: the seam between the engine, which knows
//! what a run needs (a plan, binaries, modules, bounds), and the ways of
//! bringing up a machine that runs it.
//!
//! [`ColdBoot`] packs the base image and the run's own files into an
//! initramfs and boots the kernel on it. [`crate::snapshot::Snapshot`]
//! restores a saved machine and hands it the run's files over a virtio
//! disk, falling back to a cold boot. [`crate::engine::prepare`] chooses;
//! the engine's path of one run does not change with it.

use std::path::Path;
use std::time::Instant;

use crate::error::Result;
use crate::image::{self, Archive};
use crate::qemu::VmSpec;
use crate::vm::{self, Timeouts, VmEvent, VmRun};

/// One run, as a launcher receives it.
pub struct Launch<'a> {
    /// What every run of this labctl shares: agent, busybox, tools.
    pub base: &'a Archive,
    /// This run's own files: plan, binaries, modules, copied files.
    pub extra: &'a Archive,
    /// The machine, minus the image that carries the files (the launcher
    /// fills that in).
    pub spec: VmSpec,
    /// Where the console log goes.
    pub log: &'a Path,
    pub timeouts: Timeouts,
    pub quiet: bool,
}

/// Starts a guest for one run and follows it to its end.
pub trait Launcher: Send + Sync {
    /// A short name for notes and reports ("cold boot").
    fn name(&self) -> &'static str;

    /// Brings up a guest that runs `run.extra`'s plan and reports as
    /// [`vm::run`] does. It calls `on_event` with [`VmEvent::Staged`] once
    /// the run's files are ready for the guest.
    fn launch(
        &self,
        cache: &Path,
        run: Launch<'_>,
        interrupted: &std::sync::atomic::AtomicBool,
        on_event: &mut dyn FnMut(VmEvent<'_>),
    ) -> Result<VmRun>;
}

/// A fresh kernel boot on an initramfs of the base and the run's files.
#[derive(Debug, Default, Clone, Copy)]
pub struct ColdBoot;

impl Launcher for ColdBoot {
    fn name(&self) -> &'static str {
        "cold boot"
    }

    fn launch(
        &self,
        cache: &Path,
        run: Launch<'_>,
        interrupted: &std::sync::atomic::AtomicBool,
        on_event: &mut dyn FnMut(VmEvent<'_>),
    ) -> Result<VmRun> {
        let started = Instant::now();
        let initrd = image::build_initrd(cache, run.base, run.extra)?;
        on_event(VmEvent::Staged { ms: started.elapsed().as_millis() as u64 });
        let spec = VmSpec { initrd, ..run.spec };
        vm::run(&spec, run.quiet, run.log, run.timeouts, interrupted, on_event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cold_boot_that_cannot_stage_its_image_fails_before_starting_qemu() {
        // An unwritable cache: staging fails, and QEMU (here a path that
        // does not exist) is never started, so the error is the cache's.
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("file-not-dir");
        std::fs::write(&cache, "").unwrap();
        let mut base = Archive::default();
        base.bytes("/init", b"#!/bin/sh\n".to_vec(), 0o755);
        let spec = VmSpec {
            qemu: "/nonexistent/qemu".into(),
            kernel: "/nonexistent/vmlinuz".into(),
            initrd: Default::default(),
            accel: crate::qemu::Accel::Tcg,
            memory_mb: 256,
            cpus: 1,
            console: crate::qemu::Console::Captured,
            events_socket: dir.path().join("s.sock"),
            cmdline_extra: Vec::new(),
            work_disk: None,
            incoming: None,
            qmp_socket: None,
        };
        let log = dir.path().join("console.log");
        let timeouts = Timeouts { boot: std::time::Duration::from_secs(1), total: std::time::Duration::from_secs(1) };
        let run = Launch { base: &base, extra: &Archive::default(), spec, log: &log, timeouts, quiet: true };
        let mut staged = false;
        let never = std::sync::atomic::AtomicBool::new(false);
        let err = ColdBoot
            .launch(&cache, run, &never, &mut |ev| staged |= matches!(ev, VmEvent::Staged { .. }))
            .unwrap_err()
            .to_string();
        assert!(!staged, "staging cannot have succeeded");
        assert!(!err.contains("qemu"), "{err}");
    }
}

//! labctl: builds an eBPF Workbook lab, runs it in a QEMU VM with a pinned
//! kernel, checks what the guest observed and reports a verdict.

use std::sync::atomic::AtomicBool;

pub mod accel;
pub mod bench;
pub mod build_failure;
pub mod builder;
pub mod checks;
pub mod cli;
pub mod doctor;
pub mod engine;
pub mod error;
pub mod every_kernel;
pub mod exec;
pub mod export;
pub mod files;
pub mod image;
pub mod incomplete;
pub mod kernels;
pub mod launch;
pub mod learner;
pub mod lsm;
pub mod manifest;
pub mod matrix;
pub mod params;
pub mod progress;
pub mod qemu;
pub mod report;
pub mod runcmd;
pub mod seal;
pub mod snapshot;
pub mod tools;
pub mod tutor;
pub mod vm;
pub mod workspace;

pub use error::{Error, Result};

/// Set by SIGINT/SIGTERM; every wait loop checks it and unwinds, so that
/// guards kill and reap QEMU.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

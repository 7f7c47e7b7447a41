//! Shared by the VM-booting tests: the labctl binary, and proof that no
//! QEMU process is left behind.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

pub fn labctl() -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("labctl"));
    cmd.current_dir(root());
    cmd
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// QEMU processes whose command line contains `marker` (a run's socket
/// path holds the pid of the labctl that started it).
pub fn qemu_processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains("qemu-system") && cmdline.contains(marker) {
            found.push(cmdline);
        }
    }
    found
}

/// `labctl shell` as a std Command, for rexpect.
pub fn labctl_for_pty() -> std::process::Command {
    let mut cmd = labctl();
    cmd.arg("shell");
    cmd
}

/// Runs `labctl ARGS` to the end; also returns the marker that the QEMU
/// command line of its run carries (its events socket names labctl's pid).
pub fn labctl_run_marked(args: &[&str]) -> (std::process::Output, String) {
    let child =
        labctl().args(args).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let marker = format!("run.{}.sock", child.id());
    (child.wait_with_output().unwrap(), marker)
}

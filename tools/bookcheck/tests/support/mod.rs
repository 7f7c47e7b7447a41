//! Shared by the integration tests: where the repository is, the external
//! tools they need, and building the book.

// Each test crate uses a different part of this module.
#![allow(dead_code)]

pub mod cdp;
pub mod server;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// A cold `mdbook build` of the whole book takes about a second; this is
/// generous for a loaded CI machine.
pub const BOOK_BUILD_TIMEOUT: Duration = Duration::from_secs(120);

pub fn repo_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.ancestors().nth(2).expect("tools/bookcheck sits two levels below the repository root").to_path_buf()
}

/// The workspace's target directory (honouring CARGO_TARGET_DIR).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo_root().join("target"))
}

/// Finds `name` on PATH or at one of `extra` places; a missing tool fails the
/// test (it is not skipped) and says how to install it.
pub fn require_tool(name: &str, extra: &[PathBuf]) -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join(name));
    on_path.chain(extra.iter().cloned()).find(|candidate| candidate.is_file()).unwrap_or_else(|| {
        panic!(
            "`{name}` is not installed (looked on PATH and in {extra:?}). \
                 Run ./setup.sh to install the workbook's tools."
        )
    })
}

pub fn mdbook() -> PathBuf {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")));
    let local_bin = std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/bin/mdbook"));
    let extra: Vec<PathBuf> = local_bin.into_iter().chain(cargo_home.map(|h| h.join("bin/mdbook"))).collect();
    require_tool("mdbook", &extra)
}

pub fn chromium() -> PathBuf {
    require_tool("chromium", &[PathBuf::from("/usr/bin/chromium")])
}

/// What a finished command printed.
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `command` to completion, killing it if it outlives `timeout`.
/// Output goes through files so that a chatty child never blocks on a pipe.
pub fn run_with_timeout(mut command: Command, timeout: Duration) -> Output {
    let logs = tempfile::tempdir().expect("temp dir for command output");
    let (out_path, err_path) = (logs.path().join("stdout"), logs.path().join("stderr"));
    let out = std::fs::File::create(&out_path).unwrap();
    let err = std::fs::File::create(&err_path).unwrap();
    command.stdin(Stdio::null()).stdout(out).stderr(err);
    eprintln!("> {command:?}");
    let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for a child") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{command:?} did not finish within {timeout:?}; stderr so far:\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    }
}

/// PATH with the directories setup.sh installs tools into, for children
/// that look up tools of their own (mdbook runs mdbook-gettext).
pub fn tool_path() -> std::ffi::OsString {
    let mut dirs: Vec<PathBuf> =
        std::env::var_os("PATH").map(|path| std::env::split_paths(&path).collect()).unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME").map(PathBuf::from) {
        dirs.push(home.join(".local/bin"));
        dirs.push(std::env::var_os("CARGO_HOME").map(PathBuf::from).unwrap_or_else(|| home.join(".cargo")).join("bin"));
    }
    std::env::join_paths(dirs).expect("PATH entries without separators")
}

/// Builds both editions with book/editions.sh: English into `dest`, Korean
/// into `dest/ko`. The script fails on any mdbook warning and says how to
/// install a missing tool; its output is the error.
pub fn build_editions(dest: &Path) -> Result<(), String> {
    let mut command = Command::new("bash");
    command.arg(repo_root().join("book/editions.sh")).arg("build").arg(dest).env("PATH", tool_path());
    let output = run_with_timeout(command, BOOK_BUILD_TIMEOUT * 2);
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("book/editions.sh build failed ({}):\n{}{}", output.status, output.stdout, output.stderr))
    }
}

/// Builds the repository's book into `dest` and fails on any warning or
/// error mdbook reports (a missing include is only a warning to mdbook).
pub fn build_book(dest: &Path) {
    let mut command = Command::new(mdbook());
    command.arg("build").arg(repo_root().join("book")).arg("--dest-dir").arg(dest).env("PATH", tool_path());
    let output = run_with_timeout(command, BOOK_BUILD_TIMEOUT);
    let complaints: Vec<&str> = output
        .stderr
        .lines()
        .chain(output.stdout.lines())
        .filter(|line| line.contains("WARN") || line.contains("ERROR"))
        .collect();
    assert!(
        output.status.success() && complaints.is_empty(),
        "mdbook build must succeed without warnings (status {}):\n{}\n--- full stderr ---\n{}",
        output.status,
        complaints.join("\n"),
        output.stderr
    );
}

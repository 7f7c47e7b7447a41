//! Shared by the VM-booting tests: the labctl binary, and proof that no
//! QEMU process is left behind.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn labctl() -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("labctl"));
    cmd.current_dir(root());
    cmd
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// `labctl shell` as a std Command, for rexpect.
pub fn labctl_for_pty() -> std::process::Command {
    let mut cmd = labctl();
    cmd.arg("shell");
    cmd
}

/// A plan step from its essentials; every other field takes its default,
/// as a plan's JSON would give it.
pub fn step(name: &str, run: &[&str], timeout_s: f64) -> workbook_agent::Step {
    serde_json::from_value(serde_json::json!({ "name": name, "run": run, "timeout_s": timeout_s })).unwrap()
}

/// A process, told apart from a later one that reuses its pid by its
/// start time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Proc {
    pub pid: u32,
    pub start_time: u64,
    pub cmdline: String,
}

/// (parent pid, start time) of `pid`, from /proc/PID/stat.
fn stat_of(pid: u32) -> Option<(u32, u64, char)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: fields are
    // counted from the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let state = fields.first()?.chars().next()?;
    Some((fields.get(1)?.parse().ok()?, fields.get(19)?.parse().ok()?, state))
}

fn cmdline_of(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(String::from_utf8_lossy(&raw).replace('\0', " ").trim_end().to_string())
}

/// Every QEMU process (the real one or a test's fake) whose command line
/// contains `marker` and, when given, whose parent is `parent`.
pub fn qemu_processes(parent: Option<u32>, marker: &str) -> Vec<Proc> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Some(cmdline) = cmdline_of(pid) else { continue };
        if !cmdline.contains("qemu-system") || !cmdline.contains(marker) {
            continue;
        }
        let Some((ppid, start_time, _)) = stat_of(pid) else { continue };
        if parent.is_none_or(|p| p == ppid) {
            found.push(Proc { pid, start_time, cmdline });
        }
    }
    found
}

/// Whether `p` still exists: running, or dead but not reaped (a zombie
/// is a guard that killed without waiting).
pub fn exists(p: &Proc) -> bool {
    stat_of(p.pid).is_some_and(|(_, start, _)| start == p.start_time)
}

/// The directory of a labctl process's VM files: its QEMU command lines
/// carry it (the events socket is there).
pub fn run_dir_marker(labctl_pid: u32) -> String {
    let ws = labctl::workspace::Workspace::at(root()).unwrap();
    format!("{}/", ws.run_dir_of(labctl_pid).display())
}

/// A pipe whose buffer is already full: whoever writes to it blocks until
/// the reader drains it. Returns (read end, write end, bytes in it).
fn full_pipe() -> (OwnedFd, OwnedFd, usize) {
    let (read, write) = nix::unistd::pipe().unwrap();
    let fd = write.as_raw_fd();
    // SAFETY: fcntl on a descriptor this function owns.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    assert!(unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } == 0);
    let mut file = std::fs::File::from(write.try_clone().unwrap());
    let mut filled = 0;
    // Pages first, then single bytes into whatever room is left.
    for chunk in [&[b'#'; 4096][..], &[b'#'][..]] {
        loop {
            match file.write(chunk) {
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("filling a pipe: {e}"),
            }
        }
    }
    // The flag belongs to the open file, which the child shares: its
    // writes must block, not fail.
    assert!(unsafe { libc::fcntl(fd, libc::F_SETFL, flags) } == 0);
    (read, write, filled)
}

fn drain(read: OwnedFd, skip: usize) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = std::fs::File::from(read).read_to_end(&mut all);
        all.split_off(skip.min(all.len()))
    })
}

/// What [`labctl_watched`] saw.
#[derive(Debug)]
pub struct Watched {
    pub output: Output,
    /// The QEMU processes labctl started.
    pub qemus: Vec<Proc>,
}

impl Watched {
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }
}

/// Runs `labctl ARGS` and proves that it kills and reaps its QEMU itself,
/// before it exits: QEMU also gets a parent-death signal, which would hide
/// a broken guard if the check came only after labctl had exited.
///
/// labctl's stdout and stderr are pipes that are full from the start, so
/// labctl blocks at its first write after the VM: its final message. Its
/// QEMU children must be gone while it is blocked there, alive. The
/// command must therefore write something after its VM ends (an error, a
/// verdict, a timeout message) and nothing before it on the main thread.
pub fn labctl_watched(args: &[&str], envs: &[(&str, &str)], limit: Duration) -> Watched {
    labctl_watched_interrupted(args, envs, limit, None)
}

/// [`labctl_watched`], sending labctl a SIGINT (a Ctrl-C) `interrupt_after`
/// its first QEMU appeared, when given.
pub fn labctl_watched_interrupted(
    args: &[&str],
    envs: &[(&str, &str)],
    limit: Duration,
    interrupt_after: Option<Duration>,
) -> Watched {
    let (out_read, out_write, out_filled) = full_pipe();
    let (err_read, err_write, err_filled) = full_pipe();
    let mut cmd = labctl();
    cmd.args(args).envs(envs.iter().copied()).stdin(Stdio::null()).stdout(out_write).stderr(err_write);
    let mut child = cmd.spawn().unwrap();
    // The command holds the pipes' write ends: only labctl may, or the
    // readers would never see the end of its output.
    drop(cmd);
    let started = Instant::now();
    let marker = run_dir_marker(child.id());
    let mut seen: BTreeSet<Proc> = BTreeSet::new();
    let mut all_gone_since: Option<Instant> = None;
    let mut first_seen: Option<Instant> = None;
    let mut interrupted = false;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let stderr = String::from_utf8_lossy(&drain(err_read, err_filled).join().unwrap()).into_owned();
            panic!(
                "labctl exited ({status}) while its output was blocked, so whether it reaped QEMU itself was \
                 never checked; QEMU processes seen: {seen:?}\nstderr: {stderr}"
            );
        }
        seen.extend(qemu_processes(Some(child.id()), ""));
        if first_seen.is_none() && !seen.is_empty() {
            first_seen = Some(Instant::now());
        }
        if let (Some(after), Some(at)) = (interrupt_after, first_seen) {
            if !interrupted && at.elapsed() >= after {
                let pid = nix::unistd::Pid::from_raw(child.id() as i32);
                nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
                interrupted = true;
            }
        }
        let alive: Vec<&Proc> = seen.iter().filter(|p| exists(p)).collect();
        if seen.is_empty() || !alive.is_empty() {
            all_gone_since = None;
        } else {
            // Gone for a while, with labctl blocked on its output: no second
            // VM is coming (a KVM probe is followed at once by the run).
            let since = *all_gone_since.get_or_insert_with(Instant::now);
            if since.elapsed() > Duration::from_secs(2) {
                break;
            }
        }
        if started.elapsed() > limit {
            let alive: Vec<Proc> = alive.into_iter().cloned().collect();
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "after {} s, labctl had not ended its VM (QEMU processes seen: {seen:?}; still running: {alive:?})",
                limit.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(child.try_wait().unwrap().is_none(), "labctl exited before its QEMU was checked");
    let stdout = drain(out_read, out_filled);
    let stderr = drain(err_read, err_filled);
    let status = child.wait().unwrap();
    let output = Output { status, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap() };
    // And after: nothing with this run's socket directory on its command
    // line, whoever its parent now is.
    assert_eq!(qemu_processes(None, &marker), Vec::<Proc>::new(), "QEMU outlived labctl");
    assert!(seen.iter().all(|p| !exists(p)));
    Watched { output, qemus: seen.into_iter().collect() }
}

/// Waits for `child` at most `limit`; kills it and fails past that.
pub fn wait_within(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the process did not end within {} s", limit.as_secs());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

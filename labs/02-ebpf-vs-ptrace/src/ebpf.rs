//! The eBPF counter: a program in the kernel counts the child's system
//! calls into a map as they happen; the child is never stopped.

use std::mem::MaybeUninit;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::census::Census;
use crate::child::spawn_stopped;

mod count {
    include!(concat!(env!("OUT_DIR"), "/count.skel.rs"));
}

/// Runs `program` while the BPF program counts its system calls; returns
/// its census and how long it ran.
pub fn count(program: &Path, args: &[String]) -> anyhow::Result<(Census, Duration)> {
    let pid = spawn_stopped(program, args, false)?;
    let child = Reaper(pid);
    // WUNTRACED: report the stop of a child that is not traced.
    match waitpid(pid, Some(WaitPidFlag::WUNTRACED)).context("waiting for the child to stop")? {
        WaitStatus::Stopped(..) => {}
        other => bail!("the child did not stop before execve: {other:?}"),
    }

    // ANCHOR: main
    let mut storage = MaybeUninit::uninit();
    let mut open = count::CountSkelBuilder::default().open(&mut storage).context("failed to open the BPF object")?;
    // Tell the program which process to count; after load it is read-only.
    open.maps.rodata_data.as_deref_mut().context("the BPF object has no .rodata")?.target_tgid = pid.as_raw() as u32;
    let mut skel = open.load().context("failed to load the BPF program (is this running as root?)")?;
    skel.attach().context("failed to attach to the sys_enter raw tracepoint")?;

    let started = Instant::now();
    kill(pid, Signal::SIGCONT).context("resuming the child")?;
    child.wait()?;
    let ran = started.elapsed();
    let census = read_counts(&skel.maps.syscall_counts)?;
    // ANCHOR_END: main
    // For the grader: with LAB02_PIN set, the program stays loaded after we
    // exit, pinned at that path, so that bpftool can show what the kernel
    // knows about it (its type, how many times it ran).
    if let Some(pin) = std::env::var_os("LAB02_PIN") {
        skel.progs.count_syscall.pin(&pin).with_context(|| format!("pinning the program at {}", pin.display()))?;
    }
    Ok((census, ran))
}

/// Syscall number -> calls, from the map into a census. At syscall entry
/// the program cannot know which calls will fail: no errors.
fn read_counts(map: &impl MapCore) -> anyhow::Result<Census> {
    let mut census = Census::default();
    for key in map.keys() {
        let Some(value) = map.lookup(&key, MapFlags::ANY).context("reading syscall_counts")? else {
            continue;
        };
        let nr = u32::from_ne_bytes(key.as_slice().try_into().context("a key is not a u32")?);
        let calls = u64::from_ne_bytes(value.as_slice().try_into().context("a value is not a u64")?);
        census.add(u64::from(nr), calls, 0);
    }
    Ok(census)
}

/// A stopped child that must not outlive an error: killed and reaped on
/// drop unless it was waited for.
struct Reaper(Pid);

impl Reaper {
    /// Waits for the child to exit.
    fn wait(self) -> anyhow::Result<()> {
        let pid = self.0;
        std::mem::forget(self);
        loop {
            match waitpid(pid, None).context("waiting for the child")? {
                WaitStatus::Exited(..) | WaitStatus::Signaled(..) => return Ok(()),
                _ => continue,
            }
        }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = kill(self.0, Signal::SIGKILL);
        let _ = waitpid(self.0, None);
    }
}

//! Runs the plan's steps: foreground steps one after another, background
//! steps alongside them, each in its own process group with a deadline.

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use regex::Regex;
use workbook_agent::capture::{Captured, Utf8Chunks};
use workbook_agent::{Event, LAB_BIN_DIR, Plan, Step, StepResult, Stream};

use crate::Events;

/// How long a background step gets to exit after SIGINT before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// How long to wait for the last output once a step's process has exited.
const DRAIN_WAIT: Duration = Duration::from_secs(1);
const POLL: Duration = Duration::from_millis(5);

/// Pauses the agent for `d` without a clock_nanosleep(2) of its own.
///
/// Labs count the guest's sleeps (lab 06 counts every clock_nanosleep in
/// the VM), so the grader's agent must not add to them: `thread::sleep`
/// would. Waiting on a condition variable that nothing signals times out
/// in a futex(2) wait instead.
fn nap(d: Duration) {
    static NEVER: Condvar = Condvar::new();
    static LOCK: Mutex<()> = Mutex::new(());
    let guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let _ = NEVER.wait_timeout(guard, d);
}

/// A stream's output so far, capped (see [`workbook_agent::capture`]).
type Buffer = Arc<Mutex<Captured>>;

struct Running {
    step: Step,
    child: Child,
    started: Instant,
    stdout: Buffer,
    stderr: Buffer,
    /// Set by each reader thread when its pipe reaches end of file.
    drained: Arc<Mutex<u8>>,
    ready: Option<bool>,
}

pub fn run_steps(plan: &Plan, events: &Events) {
    let mut background: Vec<Running> = Vec::new();
    for step in &plan.steps {
        events.send(&Event::StepStart { name: step.name.clone() });
        let mut running = match start(step, events, plan.stream) {
            Ok(r) => r,
            Err(e) => {
                events.send(&Event::StepEnd(StepResult {
                    name: step.name.clone(),
                    spawn_error: Some(e),
                    ..Default::default()
                }));
                continue;
            }
        };
        if step.background {
            if let Some(pattern) = &step.ready {
                running.ready = Some(wait_ready(&mut running, pattern));
            }
            background.push(running);
        } else {
            let result = finish(running, None);
            events.send(&Event::StepEnd(result));
        }
    }
    for running in background {
        let result = finish(running, Some(Signal::SIGINT));
        events.send(&Event::StepEnd(result));
    }
}

fn start(step: &Step, events: &Events, stream: bool) -> Result<Running, String> {
    let mut cmd = Command::new(&step.run[0]);
    cmd.args(&step.run[1..])
        .env_clear()
        .env("PATH", format!("{LAB_BIN_DIR}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"))
        .env("HOME", if step.uid == 0 { "/root" } else { "/tmp" })
        .env("TERM", "dumb")
        .envs(step.env.iter().map(|(k, v)| (k, v)))
        .current_dir(step.cwd.as_deref().unwrap_or("/tmp"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, so that a timeout kills everything it started.
        .process_group(0);
    let gid = step.gid.unwrap_or(step.uid);
    if step.uid != 0 || gid != 0 {
        cmd.uid(step.uid).gid(gid);
    }
    let mut child = cmd.spawn().map_err(|e| format!("{}: {e}", step.run[0]))?;
    let stdout: Buffer = Arc::new(Mutex::new(Captured::new()));
    let stderr: Buffer = Arc::new(Mutex::new(Captured::new()));
    let drained = Arc::new(Mutex::new(0u8));
    let pipes: [(Box<dyn Read + Send>, Buffer, Stream); 2] = [
        (Box::new(child.stdout.take().expect("piped")), stdout.clone(), Stream::Stdout),
        (Box::new(child.stderr.take().expect("piped")), stderr.clone(), Stream::Stderr),
    ];
    for (mut pipe, buffer, which) in pipes {
        let (events, name, drained) = (events.clone(), step.name.clone(), drained.clone());
        thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            let mut text = Utf8Chunks::default();
            let send = |data: String| events.send(&Event::Output { step: name.clone(), stream: which, data });
            while let Ok(n) = pipe.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                // Past the cap the output is still read, and dropped, so
                // that the step never blocks on a full pipe.
                buffer.lock().unwrap_or_else(|p| p.into_inner()).push(&chunk[..n]);
                if stream {
                    let data = text.push(&chunk[..n]);
                    if !data.is_empty() {
                        send(data);
                    }
                }
            }
            if let Some(rest) = text.finish().filter(|_| stream) {
                send(rest);
            }
            *drained.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        });
    }
    Ok(Running { step: step.clone(), child, started: Instant::now(), stdout, stderr, drained, ready: None })
}

fn deadline_of(r: &Running) -> Instant {
    r.started + Duration::from_secs_f64(r.step.timeout_s)
}

/// Waits until the step's output matches `pattern`, it exits, or its
/// deadline passes.
fn wait_ready(r: &mut Running, pattern: &str) -> bool {
    let Ok(re) = Regex::new(pattern) else { return false };
    let deadline = deadline_of(r);
    loop {
        let seen =
            |b: &Buffer| re.is_match(&String::from_utf8_lossy(b.lock().unwrap_or_else(|p| p.into_inner()).bytes()));
        if seen(&r.stdout) || seen(&r.stderr) {
            return true;
        }
        if Instant::now() >= deadline || matches!(r.child.try_wait(), Ok(Some(_))) {
            return false;
        }
        nap(POLL);
    }
}

/// Waits for the step to end (first sending `stop`, for a background step),
/// kills it at its deadline, and gathers its result.
fn finish(mut r: Running, stop: Option<Signal>) -> StepResult {
    let group = Pid::from_raw(r.child.id() as i32);
    let mut deadline = deadline_of(&r);
    if let Some(sig) = stop {
        if matches!(r.child.try_wait(), Ok(None)) {
            let _ = killpg(group, sig);
            deadline = deadline.min(Instant::now() + STOP_GRACE);
        }
    }
    let mut timed_out = false;
    let status = loop {
        match r.child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => {
                // A background step that ignores SIGINT is stopped, not
                // "timed out": it was asked to end, and did not.
                timed_out = stop.is_none() || r.started.elapsed().as_secs_f64() >= r.step.timeout_s;
                let _ = killpg(group, Signal::SIGKILL);
                break r.child.wait().ok();
            }
            Ok(None) => nap(POLL),
            Err(_) => break None,
        }
    };
    let duration_ms = r.started.elapsed().as_millis() as u64;
    // Whatever the step left behind in its group goes too, so its pipes close.
    let _ = killpg(group, Signal::SIGKILL);
    let drain_deadline = Instant::now() + DRAIN_WAIT;
    while *r.drained.lock().unwrap_or_else(|p| p.into_inner()) < 2 && Instant::now() < drain_deadline {
        nap(POLL);
    }
    let captured = |b: &Buffer| {
        let c = b.lock().unwrap_or_else(|p| p.into_inner());
        (c.text(), c.dropped() > 0)
    };
    let ((stdout, cut_out), (stderr, cut_err)) = (captured(&r.stdout), captured(&r.stderr));
    StepResult {
        name: r.step.name.clone(),
        pid: Some(r.child.id()),
        exit_code: status.and_then(|s| s.code()),
        signal: status.and_then(|s| s.signal()),
        timed_out,
        spawn_error: None,
        ready: r.ready,
        duration_ms,
        stdout,
        stderr,
        truncated: cut_out || cut_err,
    }
}

/// A root shell on the first serial port, with job control.
pub fn interactive_shell() -> Result<(), String> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/ttyS0")
        .map_err(|e| format!("cannot open /dev/ttyS0: {e}"))?;
    let io = || tty.try_clone().map(Stdio::from).map_err(|e| e.to_string());
    let mut cmd = Command::new("/bin/sh");
    cmd.stdin(io()?)
        .stdout(io()?)
        .stderr(io()?)
        .env_clear()
        .env("PATH", format!("{LAB_BIN_DIR}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"))
        .env("HOME", "/root")
        .env("TERM", "vt100")
        .env("PS1", "workbook:\\w# ")
        .current_dir("/root");
    // SAFETY: runs in the child between fork and exec; setsid and ioctl are
    // async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            // A session of its own with the serial port as its controlling
            // terminal: Ctrl-C then reaches the foreground job.
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            if libc::ioctl(0, libc::TIOCSCTTY, 1) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let _ = std::fs::create_dir_all("/root");
    cmd.status().map(|_| ()).map_err(|e| format!("cannot start /bin/sh: {e}"))
}

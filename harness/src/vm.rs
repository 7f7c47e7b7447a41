//! Runs one VM: starts QEMU under a guard, logs the console, reads the
//! agent's events, and turns every way a run can end into a result.
//!
//! Every wait is bounded: no kernel output, no agent, a guest that never
//! powers off, and a Ctrl-C all end with QEMU killed and reaped.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use workbook_agent::Event;

use crate::error::{Error, Result};
use crate::exec;
use crate::qemu::{Console, VmSpec, qemu_args};

/// Bounds on one run.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// From QEMU's start to the agent's hello.
    pub boot: Duration,
    /// From QEMU's start to its exit.
    pub total: Duration,
}

/// What a caller sees while the VM runs.
#[derive(Debug)]
pub enum VmEvent<'a> {
    /// The run's files are where the guest will find them (a launcher's
    /// staging, e.g. the initramfs built), after `ms`.
    Staged {
        ms: u64,
    },
    Console(&'a str),
    Booted {
        boot_ms: u64,
    },
    Agent(&'a Event),
    /// What the launcher is doing besides the run (saving a snapshot).
    Note(&'a str),
    /// Something the user should know: a restore that failed, a fallback.
    Warning(&'a str),
}

/// A run that reached the agent: everything it reported, and how it ended.
#[derive(Debug, Clone)]
pub struct VmRun {
    /// Every event received, also when the run ended early.
    pub events: Vec<Event>,
    pub boot_ms: u64,
    pub total_ms: u64,
    pub log: PathBuf,
    pub end: RunEnd,
}

/// How a run that reached the agent ended. Only `Completed` means that
/// every step had its chance; the others keep what was received so far.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEnd {
    /// The agent said it was done.
    Completed,
    /// The whole run's limit passed; QEMU was killed.
    TimedOut { seconds: f64 },
    /// The guest kernel panicked (`message` is the console's panic line).
    Panicked { message: String },
    /// QEMU exited before the agent was done. `by_guest`: QEMU exited
    /// normally without an error, so the guest itself rebooted or powered
    /// off; otherwise QEMU failed or was killed.
    Died { message: String, by_guest: bool },
}

impl RunEnd {
    pub fn is_completed(&self) -> bool {
        *self == RunEnd::Completed
    }

    /// Why the run ended early, as the end of a sentence ("the VM ...").
    pub fn reason(&self) -> String {
        match self {
            RunEnd::Completed => "the run completed".into(),
            RunEnd::TimedOut { seconds } => format!("the VM timed out after {seconds} s"),
            RunEnd::Panicked { message } => format!("the guest kernel panicked ({message})"),
            RunEnd::Died { message, .. } => format!("the VM died ({message})"),
        }
    }

    /// The harness error this ending amounts to, for a caller that needed
    /// the whole run; None when it completed.
    pub fn error(&self, log: &Path) -> Option<Error> {
        let log = log.to_path_buf();
        match self.clone() {
            RunEnd::Completed => None,
            RunEnd::TimedOut { seconds } => Some(Error::VmTimeout { seconds, log }),
            RunEnd::Panicked { message } => Some(Error::KernelPanic { message, log }),
            RunEnd::Died { message, .. } => Some(Error::VmDied { message, log }),
        }
    }
}

/// The line that wakes a restored agent, with the host's clock as of now.
fn wake_line() -> String {
    let unix_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    workbook_agent::Wake { unix_ns }.to_line()
}

/// Kills and reaps QEMU on every path out of [`run`], panics included.
pub(crate) struct QemuGuard(pub Child);

impl Drop for QemuGuard {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

pub(crate) enum Msg {
    Console(String),
    Agent(Event),
    BadEvent(String),
    Stderr(String),
    EventsClosed,
    /// A reader of QEMU's stdout or stderr reached the end of its pipe.
    PipeClosed,
    /// QEMU connected to the events port: a handle to write to the agent.
    Connected(UnixStream),
}

/// How long QEMU gets to exit after the agent said it is done.
const POWEROFF_WAIT: Duration = Duration::from_secs(5);
/// How long to wait for the last events once QEMU has exited.
const DRAIN_WAIT: Duration = Duration::from_secs(2);

pub fn run(
    spec: &VmSpec,
    quiet: bool,
    log_path: &Path,
    timeouts: Timeouts,
    interrupted: &AtomicBool,
    on_event: &mut dyn FnMut(VmEvent<'_>),
) -> Result<VmRun> {
    run_with(spec, None, quiet, log_path, timeouts, interrupted, on_event)
}

/// How labctl wakes a restored snapshot's agent, which waits for a word on
/// its events port before it starts its run.
#[derive(Debug, Clone)]
pub struct Waking {
    /// The boot the snapshot was saved from: a restored agent that reports
    /// another one is not the machine that was saved.
    pub boot_id: String,
}

/// How often the wake line is sent until the agent answers.
const WAKE_REPEAT: Duration = Duration::from_millis(100);

/// A started QEMU: its guard, and the messages of its readers.
pub(crate) struct Started {
    pub guard: QemuGuard,
    pub rx: Receiver<Msg>,
    pub started: Instant,
    pub log: Arc<Mutex<File>>,
    /// Stops the events reader when dropped.
    _stop_events: StopOnDrop,
}

/// Starts QEMU for `spec` under a guard, with readers for its console,
/// its stderr and the events port.
pub(crate) fn start(spec: &VmSpec, quiet: bool, log_path: &Path) -> Result<Started> {
    let _ = std::fs::remove_file(&spec.events_socket);
    let listener = UnixListener::bind(&spec.events_socket)
        .map_err(Error::io(format!("listening on {}", spec.events_socket.display())))?;
    listener.set_nonblocking(true).map_err(Error::io("configuring the events socket"))?;
    let log =
        Arc::new(Mutex::new(File::create(log_path).map_err(Error::io(format!("creating {}", log_path.display())))?));

    let mut cmd = Command::new(&spec.qemu);
    cmd.args(qemu_args(spec)).stderr(Stdio::piped());
    match spec.console {
        Console::Captured => cmd.stdin(Stdio::null()).stdout(Stdio::piped()),
        Console::Interactive => cmd.stdin(Stdio::inherit()).stdout(Stdio::inherit()),
    };
    // SAFETY: prctl is async-signal-safe. If labctl itself is killed, the
    // kernel kills QEMU too, so no VM outlives its harness.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    exec::announce(&cmd, quiet);
    writeln!(log.lock().unwrap(), "> {}", exec::display(&cmd)).map_err(Error::io("writing the console log"))?;
    let started = Instant::now();
    let mut guard = QemuGuard(cmd.spawn().map_err(|e| exec::spawn_error(&cmd, e))?);

    let (tx, rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    if let Some(stdout) = guard.0.stdout.take() {
        spawn_lines(stdout, tx.clone(), log.clone(), "", Msg::Console);
    }
    if let Some(stderr) = guard.0.stderr.take() {
        spawn_lines(stderr, tx.clone(), log.clone(), "qemu: ", Msg::Stderr);
    }
    spawn_events(listener, tx, stop.clone());
    Ok(Started { guard, rx, started, log, _stop_events: StopOnDrop(stop) })
}

/// [`run`], waking a restored snapshot's agent when `waking` is given.
pub fn run_with(
    spec: &VmSpec,
    waking: Option<&Waking>,
    quiet: bool,
    log_path: &Path,
    timeouts: Timeouts,
    interrupted: &AtomicBool,
    on_event: &mut dyn FnMut(VmEvent<'_>),
) -> Result<VmRun> {
    let Started { mut guard, rx, started, log, _stop_events } = start(spec, quiet, log_path)?;
    let mut port: Option<UnixStream> = None;
    let mut last_wake: Option<Instant> = None;
    let mut agent_spoke = false;

    let mut events = Vec::new();
    let mut booted: Option<u64> = None;
    let mut saw_console = false;
    let mut done_at: Option<Instant> = None;
    let mut exited_at: Option<Instant> = None;
    let mut events_closed = false;
    // QEMU's stdout (when captured) and stderr: its last words, such as the
    // error it exits with, must be read before the ending is decided.
    let mut pipes_open = if spec.console == Console::Captured { 2 } else { 1 };
    let mut panic_line: Option<String> = None;
    let mut qemu_errors = Vec::new();
    let mut timed_out = false;
    let fail_log = log_path.to_path_buf();

    loop {
        match rx.recv_timeout(Duration::from_millis(10)) {
            Ok(Msg::Console(line)) => {
                saw_console = true;
                if panic_line.is_none() && line.contains("Kernel panic") {
                    panic_line = Some(line.trim().to_string());
                }
                on_event(VmEvent::Console(&line));
            }
            Ok(Msg::Stderr(line)) => qemu_errors.push(line),
            Ok(Msg::BadEvent(line)) => {
                let _ = writeln!(log.lock().unwrap(), "labctl: unreadable event: {line}");
            }
            Ok(Msg::Connected(stream)) => port = Some(stream),
            Ok(Msg::Agent(ev)) => {
                agent_spoke = true;
                if let (Some(w), Event::Hello { boot_id, .. }) = (waking, &ev) {
                    if *boot_id != w.boot_id {
                        let message = format!(
                            "the restored machine is not the one that was saved (its boot {boot_id:?}, \
                             saved from {:?})",
                            w.boot_id
                        );
                        return Err(Error::Boot { message, log: fail_log });
                    }
                }
                if matches!(ev, Event::Hello { .. }) && booted.is_none() {
                    let boot_ms = started.elapsed().as_millis() as u64;
                    booted = Some(boot_ms);
                    on_event(VmEvent::Booted { boot_ms });
                }
                if matches!(ev, Event::Done) {
                    done_at = Some(Instant::now());
                }
                on_event(VmEvent::Agent(&ev));
                events.push(ev);
            }
            Ok(Msg::PipeClosed) => pipes_open -= 1,
            Ok(Msg::EventsClosed) => events_closed = true,
            Err(RecvTimeoutError::Disconnected) => {
                events_closed = true;
                pipes_open = 0;
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
        if interrupted.load(Ordering::SeqCst) {
            return Err(Error::Interrupted);
        }
        if let (Some(_), Some(stream), false) = (waking, port.as_mut(), agent_spoke) {
            if last_wake.is_none_or(|at| at.elapsed() >= WAKE_REPEAT) {
                last_wake = Some(Instant::now());
                // A failed write is retried at the next repeat; an agent that
                // never answers ends at the boot bound.
                let _ = stream.write_all(wake_line().as_bytes());
            }
        }
        if exited_at.is_none() && matches!(guard.0.try_wait(), Ok(Some(_))) {
            exited_at = Some(Instant::now());
        }
        let now = Instant::now();
        if let Some(at) = exited_at {
            // Let the reader threads hand over what QEMU wrote last.
            if (events_closed && pipes_open <= 0) || now.duration_since(at) > DRAIN_WAIT {
                break;
            }
            continue;
        }
        if done_at.is_some_and(|at| now.duration_since(at) > POWEROFF_WAIT) {
            break; // The guest said it was done but did not power off.
        }
        let elapsed = now.duration_since(started);
        if booted.is_none() && elapsed > timeouts.boot {
            let message = if saw_console || spec.console == Console::Interactive {
                format!("the guest started but the agent did not report within {} s", timeouts.boot.as_secs_f64())
            } else {
                format!(
                    "no output on the console within {} s ({} acceleration): the kernel or QEMU is stuck",
                    timeouts.boot.as_secs_f64(),
                    spec.accel.name()
                )
            };
            return Err(Error::Boot { message, log: fail_log });
        }
        if elapsed > timeouts.total {
            if booted.is_none() {
                return Err(Error::VmTimeout { seconds: timeouts.total.as_secs_f64(), log: fail_log });
            }
            timed_out = true;
            break;
        }
    }
    let total_ms = started.elapsed().as_millis() as u64;
    // Reaped here, before anything is reported: no VM outlives its run.
    let status = guard.0.try_wait().ok().flatten();
    drop(guard);
    let kept_log = log_path.to_path_buf();
    let ran = move |end: RunEnd| Ok(VmRun { events, boot_ms: booted.unwrap_or(0), total_ms, log: kept_log, end });
    if done_at.is_some() {
        return ran(RunEnd::Completed);
    }
    if timed_out {
        return ran(RunEnd::TimedOut { seconds: timeouts.total.as_secs_f64() });
    }
    if let Some(message) = panic_line {
        if booted.is_some() {
            return ran(RunEnd::Panicked { message });
        }
        return Err(Error::KernelPanic { message, log: fail_log });
    }
    if booted.is_none() {
        let message = match qemu_errors.is_empty() {
            false => format!("QEMU exited: {}", qemu_errors.join("\n  ")),
            true if !saw_console => "QEMU exited without any output from the kernel: is the kernel image valid?".into(),
            true => "the VM stopped before the agent started".into(),
        };
        return Err(Error::Boot { message, log: fail_log });
    }
    let by_guest = qemu_errors.is_empty() && status.is_some_and(|s| s.success());
    let message = if !qemu_errors.is_empty() {
        format!("QEMU: {}", qemu_errors.join("\n  "))
    } else if by_guest {
        "the guest powered off or rebooted without the agent finishing".to_string()
    } else {
        format!("QEMU ended ({}) without the agent finishing", status.map_or("not reaped".into(), |s| s.to_string()))
    };
    ran(RunEnd::Died { message, by_guest })
}

pub(crate) struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Copies lines from `pipe` into the log (prefixed) and the channel.
fn spawn_lines(
    pipe: impl Read + Send + 'static,
    tx: Sender<Msg>,
    log: Arc<Mutex<File>>,
    prefix: &'static str,
    wrap: fn(String) -> Msg,
) {
    thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut buf = Vec::new();
        while let Ok(n) = reader.read_until(b'\n', &mut buf) {
            if n == 0 {
                break;
            }
            let line = String::from_utf8_lossy(&buf).trim_end_matches(['\r', '\n']).to_string();
            buf.clear();
            let _ = writeln!(log.lock().unwrap_or_else(|p| p.into_inner()), "{prefix}{line}");
            if tx.send(wrap(line)).is_err() {
                return;
            }
        }
        let _ = tx.send(Msg::PipeClosed);
    });
}

/// Accepts QEMU's connection to the events socket and forwards each event.
fn spawn_events(listener: UnixListener, tx: Sender<Msg>, stop: Arc<AtomicBool>) {
    thread::spawn(move || {
        let stream = loop {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            match listener.accept() {
                Ok((stream, _)) => break stream,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => thread::sleep(Duration::from_millis(5)),
                Err(_) => return,
            }
        };
        let _ = stream.set_nonblocking(false);
        if let Ok(writer) = stream.try_clone() {
            // Bounded: a guest that does not read must not stall labctl.
            let _ = writer.set_write_timeout(Some(Duration::from_millis(200)));
            let _ = tx.send(Msg::Connected(writer));
        }
        // Bounded reads, so that the thread notices `stop` even if QEMU
        // keeps the socket open.
        let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
        let mut reader = BufReader::new(stream);
        let mut buf = Vec::new();
        loop {
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) => break,
                Ok(_) if buf.ends_with(b"\n") => {
                    let line = String::from_utf8_lossy(&buf).into_owned();
                    buf.clear();
                    let msg = match Event::from_line(&line) {
                        Ok(ev) => Msg::Agent(ev),
                        Err(_) => Msg::BadEvent(line),
                    };
                    if tx.send(msg).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        let _ = tx.send(Msg::EventsClosed);
    });
}

//! `/init` of the lab VM: mounts the kernel's filesystems, runs the plan the
//! host put in the initramfs, reports on its own serial port, powers off.
//! In a snapshot's boot it first waits for the run's files (see `wake`).
//!
//! As PID 1 it must never exit or panic: whatever happens, it reports and
//! powers the machine off, so the host sees a prompt end, not a hang.

mod runner;
mod setup;
mod wake;

use std::fs::File;
use std::io::Write;
use std::sync::{Arc, Mutex};

use workbook_agent::{EVENTS_TTY, Event, PLAN_PATH, Plan, WAIT_PATH};

/// The events channel, shared by the threads that read step output; stderr
/// (the console) when the port could not be opened.
#[derive(Clone)]
pub struct Events(Arc<Mutex<Option<File>>>);

impl Events {
    pub fn send(&self, ev: &Event) {
        let mut port = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // A failed write has nowhere to be reported; the host notices the
        // missing events and says so.
        let _ = match port.as_mut() {
            Some(f) => f.write_all(ev.to_line().as_bytes()),
            None => std::io::stderr().write_all(ev.to_line().as_bytes()),
        };
    }

    /// A second handle on the port, for reading what the host sends.
    pub fn port(&self) -> Option<File> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).as_ref().and_then(|f| f.try_clone().ok())
    }

    /// Waits until the UART has sent everything written so far: powering
    /// off with bytes still in the tty buffer would lose the last events.
    pub fn drain(&self) {
        if let Some(f) = self.0.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            let _ = nix::sys::termios::tcdrain(f);
        }
    }
}

fn main() {
    setup::mount_filesystems();
    let events = match setup::open_events(EVENTS_TTY) {
        Ok(f) => Events(Arc::new(Mutex::new(Some(f)))),
        Err(e) => {
            // Without the channel the host can only read the console.
            eprintln!("workbook-agent: cannot open {EVENTS_TTY}: {e}");
            Events(Arc::new(Mutex::new(None)))
        }
    };
    for warning in setup::take_warnings() {
        events.send(&Event::Warning { message: warning });
    }
    let kernel = setup::kernel_release();
    let boot_id = wake::boot_id();
    if let Some(wait) = wake::instructions(WAIT_PATH) {
        if let Err(message) = wait_for_work(&events, wait, &kernel, &boot_id) {
            // No Hello: to the host, a restore that did not start its run.
            events.send(&Event::Warning { message });
            events.drain();
            setup::power_off();
        }
    }
    // One line in the console log (the kernel itself is quiet), so that a
    // log shows how far a run got.
    setup::console_line(&format!("workbook-agent: up on Linux {kernel}"));
    events.send(&Event::Hello { kernel, uptime_ms: setup::uptime_ms(), boot_id });

    let result = std::panic::catch_unwind(|| run(&events));
    match result {
        Ok(Ok(())) => {}
        Ok(Err(message)) => events.send(&Event::Warning { message }),
        Err(_) => events.send(&Event::Warning { message: "the agent panicked".into() }),
    }
    events.send(&Event::Done);
    events.drain();
    setup::power_off();
}

/// A snapshot's boot: prepares, says it is ready (the host saves the
/// machine), and, in each restored copy, takes that run's work.
fn wait_for_work(
    events: &Events,
    wait: Result<workbook_agent::WaitForWork, String>,
    kernel: &str,
    boot_id: &str,
) -> Result<(), String> {
    let wait = wait?;
    wake::prepare(&wait)?;
    setup::console_line(&format!("workbook-agent: up on Linux {kernel}, waiting for work"));
    events.send(&Event::Ready { kernel: kernel.to_string(), boot_id: boot_id.to_string() });
    // Saved with bytes still in the UART, a copy would send them again.
    events.drain();
    let port = events.port().ok_or("no events port to wait on")?;
    wake::take_work(&port, &wait)
}

fn run(events: &Events) -> Result<(), String> {
    let text = std::fs::read_to_string(PLAN_PATH).map_err(|e| format!("cannot read {PLAN_PATH}: {e}"))?;
    let plan: Plan = serde_json::from_str(&text).map_err(|e| format!("bad plan {PLAN_PATH}: {e}"))?;
    for module in &plan.modules {
        if let Err(e) = setup::load_module(module) {
            events.send(&Event::Warning { message: format!("loading module {module}: {e}") });
        }
    }
    if plan.shell {
        return runner::interactive_shell();
    }
    runner::run_steps(&plan, events);
    for path in &plan.collect {
        let (data, error) = match std::fs::read(path) {
            Ok(bytes) => (Some(String::from_utf8_lossy(&bytes).into_owned()), None),
            Err(e) => (None, Some(e.to_string())),
        };
        events.send(&Event::File { path: path.clone(), data, error });
    }
    Ok(())
}

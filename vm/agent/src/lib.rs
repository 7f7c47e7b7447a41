//! The protocol between `labctl` on the host and the agent that runs as
//! `/init` inside the lab VM.
//!
//! The host writes a [`Plan`] into the initramfs at [`PLAN_PATH`]. The agent
//! runs it and writes one JSON [`Event`] per line to [`EVENTS_TTY`], a serial
//! port of its own: the console carries the kernel's log and is never parsed
//! for results.
//!
//! A snapshot's boot image has no plan but [`WAIT_PATH`]: the agent gets
//! ready, says [`Event::Ready`] (the host saves the machine then), and waits
//! for a [`Wake`] line on the same port. Each restored copy reads its run's
//! files from a disk ([`work_disk`]) and goes on as a cold boot would.

use serde::{Deserialize, Serialize};

pub mod capture;
pub mod xdp;

/// Where the plan lives inside the initramfs.
pub const PLAN_PATH: &str = "/workbook/plan.json";
/// The second 8250 UART; QEMU connects it to a socket on the host.
pub const EVENTS_TTY: &str = "/dev/ttyS1";
/// Where lab binaries are placed inside the guest.
pub const LAB_BIN_DIR: &str = "/lab/bin";
/// Where a snapshot's boot image tells the agent to wait for work.
pub const WAIT_PATH: &str = "/workbook/wait.json";

/// What the agent prepares before it waits for work in a snapshot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WaitForWork {
    /// Modules for the work disk (virtio), in dependency order: loaded
    /// before the snapshot, so that a restored machine has the disk at once.
    #[serde(default)]
    pub modules: Vec<String>,
    /// The block device the work arrives on.
    pub disk: String,
}

/// The host's word to a restored agent, one JSON line on the events port.
/// The host repeats it until the agent answers: the first bytes written to
/// a serial port right after a restore can be lost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Wake {
    /// The host's clock: a snapshot's clock stopped when it was saved.
    pub unix_ns: u64,
}

impl Wake {
    pub fn to_line(&self) -> String {
        let mut line = serde_json::to_string(self).expect("a wake line serialises");
        line.push('\n');
        line
    }
}

/// The disk a restored agent reads its run from: a header block, then the
/// run's files as a `newc` cpio (what the initramfs would have held).
pub mod work_disk {
    /// The header's first bytes.
    pub const MAGIC: &[u8; 8] = b"WBWORK01";
    /// One block, so that the archive starts aligned for `O_DIRECT` reads.
    pub const HEADER_LEN: usize = 4096;
    /// Random bytes the guest mixes into its pool: every restored copy
    /// starts from the same RNG state otherwise.
    pub const ENTROPY_LEN: usize = 64;

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Header {
        /// Bytes of cpio after the header.
        pub archive_len: u64,
        pub entropy: [u8; ENTROPY_LEN],
    }

    impl Header {
        pub fn encode(&self) -> Vec<u8> {
            let mut block = vec![0u8; HEADER_LEN];
            block[..8].copy_from_slice(MAGIC);
            block[8..16].copy_from_slice(&self.archive_len.to_le_bytes());
            block[16..16 + ENTROPY_LEN].copy_from_slice(&self.entropy);
            block
        }

        pub fn decode(block: &[u8]) -> Result<Header, String> {
            if block.len() < 16 + ENTROPY_LEN || &block[..8] != MAGIC {
                return Err("the work disk has no work header".into());
            }
            let archive_len = u64::from_le_bytes(block[8..16].try_into().expect("8 bytes"));
            let entropy = block[16..16 + ENTROPY_LEN].try_into().expect("ENTROPY_LEN bytes");
            Ok(Header { archive_len, entropy })
        }
    }
}

/// What the agent does once the guest has booted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Kernel modules to load, in dependency order (paths inside the guest).
    #[serde(default)]
    pub modules: Vec<String>,
    /// Steps, run in order.
    #[serde(default)]
    pub steps: Vec<Step>,
    /// Stream each step's output as it is produced (for `labctl run`);
    /// otherwise output is sent once, when the step ends.
    #[serde(default)]
    pub stream: bool,
    /// Instead of steps, give the console an interactive root shell and
    /// power off when it exits.
    #[serde(default)]
    pub shell: bool,
    /// Files whose contents are sent back after the last step.
    #[serde(default)]
    pub collect: Vec<String>,
}

/// One command the agent runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub name: String,
    /// Program and arguments; run directly, not through a shell.
    pub run: Vec<String>,
    /// Seconds before the step is killed and reported as timed out.
    pub timeout_s: f64,
    /// User ID to run as.
    #[serde(default)]
    pub uid: u32,
    /// Group ID to run as; the user ID when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// Started and left running while later steps run; stopped (SIGINT,
    /// then SIGKILL after a grace period) once the foreground steps are done.
    #[serde(default)]
    pub background: bool,
    /// For a background step: a regex the agent waits for on its stdout or
    /// stderr before going on (bounded by `timeout_s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<String>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: Vec<(String, String)>,
    /// Working directory; /tmp when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
}

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// How a step ended.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    pub name: String,
    /// The process ID the agent started the step as: the agent's own
    /// record, which checks compare with what a student's program reports.
    #[serde(default)]
    pub pid: Option<u32>,
    /// Exit status when the process exited normally.
    pub exit_code: Option<i32>,
    /// Signal number when it was killed by a signal.
    pub signal: Option<i32>,
    pub timed_out: bool,
    /// Set when the program could not be started at all.
    pub spawn_error: Option<String>,
    /// For a background step, whether its `ready` pattern was seen.
    pub ready: Option<bool>,
    pub duration_ms: u64,
    pub stdout: String,
    pub stderr: String,
    /// The step wrote more than [`capture::OUTPUT_CAP`] bytes on stdout or
    /// stderr: `stdout` and `stderr` hold the beginning, the rest was dropped.
    #[serde(default)]
    pub truncated: bool,
}

/// A line on the events channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The agent is up: the kernel booted and init ran (or a restored
    /// snapshot woke up and took its work).
    Hello {
        kernel: String,
        uptime_ms: u64,
        /// The kernel's `boot_id`: a restored snapshot reports the one of
        /// the boot it was saved from, which the host checks.
        #[serde(default)]
        boot_id: String,
    },
    /// A snapshot's boot is ready and waits for work: the host saves the
    /// machine now.
    Ready {
        kernel: String,
        boot_id: String,
    },
    /// Something in set-up went wrong (a mount, a module); not fatal.
    Warning {
        message: String,
    },
    StepStart {
        name: String,
    },
    Output {
        step: String,
        stream: Stream,
        data: String,
    },
    StepEnd(StepResult),
    File {
        path: String,
        data: Option<String>,
        error: Option<String>,
    },
    /// Everything ran; the agent powers off next.
    Done,
}

impl Event {
    pub fn to_line(&self) -> String {
        let mut line = serde_json::to_string(self).expect("events always serialise");
        line.push('\n');
        line
    }

    /// Parses one line of the channel; the 8250 driver may add a `\r`.
    pub fn from_line(line: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(line.trim_end_matches(['\r', '\n']))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_a_line() {
        let ev = Event::StepEnd(StepResult {
            name: "census".into(),
            exit_code: Some(0),
            stdout: "a\nb".into(),
            ..Default::default()
        });
        let line = ev.to_line();
        assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'));
        assert_eq!(Event::from_line(&format!("{}\r\n", line.trim_end())).unwrap(), ev);
    }

    #[test]
    fn plan_defaults_are_empty_and_foreground() {
        let plan: Plan =
            serde_json::from_str(r#"{"steps":[{"name":"a","run":["/bin/true"],"timeout_s":1.0}]}"#).unwrap();
        assert!(!plan.shell && !plan.stream && plan.modules.is_empty());
        assert!(!plan.steps[0].background);
        assert_eq!(plan.steps[0].uid, 0);
    }

    #[test]
    fn a_work_header_round_trips_and_garbage_is_refused() {
        let header = work_disk::Header { archive_len: 123_456, entropy: [7; work_disk::ENTROPY_LEN] };
        let block = header.encode();
        assert_eq!(block.len(), work_disk::HEADER_LEN);
        assert_eq!(work_disk::Header::decode(&block).unwrap(), header);
        assert!(work_disk::Header::decode(&[0u8; work_disk::HEADER_LEN]).is_err());
        assert!(work_disk::Header::decode(&block[..10]).is_err());
    }

    #[test]
    fn a_hello_from_an_older_agent_still_reads() {
        let ev = Event::from_line(r#"{"event":"hello","kernel":"6.1","uptime_ms":5}"#).unwrap();
        assert_eq!(ev, Event::Hello { kernel: "6.1".into(), uptime_ms: 5, boot_id: String::new() });
        let wake: Wake = serde_json::from_str(Wake { unix_ns: 42 }.to_line().trim_end()).unwrap();
        assert_eq!(wake.unix_ns, 42);
    }
}

//! The bytes of one `struct event` from src/bpf/core_snoop.bpf.c.

use std::ffi::CStr;
use std::fmt;

use anyhow::ensure;

/// Where each field of the C struct starts: four u32s, then two char
/// arrays of 16 bytes, with no padding.
const PID: usize = 0;
const PPID: usize = 4;
const STATE: usize = 8;
const PARENT_STATE: usize = 12;
const COMM: usize = 16;
const PARENT_COMM: usize = 32;
const COMM_LEN: usize = 16;
/// `sizeof(struct event)`.
pub const SIZE: usize = 48;

/// One exec, as the BPF program saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub pid: u32,
    pub ppid: u32,
    /// The task's `state` (`__state` from 5.14 on): a mask of TASK_* bits.
    pub state: u32,
    pub parent_state: u32,
    pub comm: String,
    pub parent_comm: String,
}

/// A comm field: up to its NUL, or whole when it fills the array.
fn comm(field: &[u8]) -> String {
    let bytes = match CStr::from_bytes_until_nul(field) {
        Ok(c) => c.to_bytes(),
        Err(_) => field,
    };
    String::from_utf8_lossy(bytes).into_owned()
}

/// The letter `ps` shows for a state, as the kernel's task_state_index()
/// picks it: the highest of the reported bits (TASK_REPORT, 0x7f), and I for
/// an idle kernel thread (TASK_IDLE, 0x402).
pub fn state_letter(state: u32) -> char {
    const TASK_IDLE: u32 = 0x402;
    if state == TASK_IDLE {
        return 'I';
    }
    let reported = state & 0x7f;
    let index = (u32::BITS - reported.leading_zeros()) as usize;
    "RSDTtXZP".chars().nth(index).unwrap_or('?')
}

impl Event {
    /// Decodes a record from the ring buffer.
    pub fn parse(bytes: &[u8]) -> anyhow::Result<Self> {
        ensure!(bytes.len() >= SIZE, "an event of {} bytes, expected {SIZE}", bytes.len());
        let u32_at = |at: usize| u32::from_ne_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        Ok(Event {
            pid: u32_at(PID),
            ppid: u32_at(PPID),
            state: u32_at(STATE),
            parent_state: u32_at(PARENT_STATE),
            comm: comm(&bytes[COMM..COMM + COMM_LEN]),
            parent_comm: comm(&bytes[PARENT_COMM..PARENT_COMM + COMM_LEN]),
        })
    }

    /// The column titles for [`Event`]'s `Display`.
    pub fn header() -> String {
        format!("{:>7} {:>7} {:>5} {:>6} {:<16} {}", "PID", "PPID", "STATE", "PSTATE", "COMM", "PARENT")
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A state shows as its number and, after a slash, its ps letter.
        let state = |s: u32| format!("{s}/{}", state_letter(s));
        write!(
            f,
            "{:>7} {:>7} {:>5} {:>6} {:<16} {}",
            self.pid,
            self.ppid,
            state(self.state),
            state(self.parent_state),
            self.comm,
            self.parent_comm
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_c_layout() {
        let mut bytes = vec![0u8; SIZE];
        bytes[0..4].copy_from_slice(&1234u32.to_ne_bytes());
        bytes[4..8].copy_from_slice(&1200u32.to_ne_bytes());
        bytes[12..16].copy_from_slice(&1u32.to_ne_bytes());
        bytes[16..22].copy_from_slice(b"qwerty");
        bytes[32..48].copy_from_slice(b"sixteen-letters!");
        let e = Event::parse(&bytes).unwrap();
        assert_eq!((e.pid, e.ppid, e.state, e.parent_state), (1234, 1200, 0, 1));
        assert_eq!((e.comm.as_str(), e.parent_comm.as_str()), ("qwerty", "sixteen-letters!"));
        assert_eq!(e.to_string(), "   1234    1200   0/R    1/S qwerty           sixteen-letters!");
    }

    #[test]
    fn states_read_as_ps_shows_them() {
        // 260 is TASK_STOPPED (TASK_WAKEKILL | __TASK_STOPPED); 264 and 8
        // are TASK_TRACED before and after 5.19; 0x102 is TASK_KILLABLE.
        let letters: String = [0, 1, 2, 260, 264, 8, 0x102, 0x402].map(state_letter).iter().collect();
        assert_eq!(letters, "RSDTttDI");
    }

    #[test]
    fn a_short_record_is_an_error() {
        assert!(Event::parse(&[0u8; 20]).is_err());
    }
}

//! The bytes of one `struct event` from src/bpf/hello_buffer.bpf.c.

use std::ffi::CStr;
use std::fmt;

use anyhow::{Context, ensure};

/// Where each field of the C struct starts, and its length in bytes. All
/// fields are u32 or char arrays, so the C compiler adds no padding except
/// at the end, to round the size up to a multiple of 4.
const PID: usize = 0;
const UID: usize = 4;
const COMMAND: (usize, usize) = (8, 16);
const PATH: (usize, usize) = (24, 64);
const MESSAGE: (usize, usize) = (88, 12);
/// `sizeof(struct event)`.
pub const SIZE: usize = 100;

/// One execve, as the BPF program saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub pid: u32,
    pub uid: u32,
    /// The name of the program that called execve.
    pub command: String,
    /// The program it asked to run.
    pub path: String,
    pub message: String,
}

impl Event {
    /// Decodes a record from the ring buffer.
    pub fn parse(bytes: &[u8]) -> anyhow::Result<Self> {
        ensure!(bytes.len() >= SIZE, "an event of {} bytes, expected {SIZE}", bytes.len());
        let u32_at = |at: usize| u32::from_ne_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        let text = |(at, len): (usize, usize)| -> anyhow::Result<String> {
            let field = &bytes[at..at + len];
            // The kernel's string copies end with a NUL when they fit; a
            // field filled to the brim has none, and is taken whole.
            let text = match CStr::from_bytes_until_nul(field) {
                Ok(c) => c.to_bytes(),
                Err(_) => field,
            };
            Ok(String::from_utf8_lossy(text).into_owned())
        };
        Ok(Event {
            pid: u32_at(PID),
            uid: u32_at(UID),
            command: text(COMMAND).context("command")?,
            path: text(PATH).context("path")?,
            message: text(MESSAGE).context("message")?,
        })
    }

    /// The column titles for [`Event`]'s `Display`.
    pub fn header() -> String {
        format!("{:>7} {:>5} {:<16} {:<24} {}", "PID", "UID", "COMMAND", "PATH", "MESSAGE")
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:>7} {:>5} {:<16} {:<24} {}", self.pid, self.uid, self.command, self.path, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_c_layout() {
        let mut bytes = vec![0u8; SIZE];
        bytes[0..4].copy_from_slice(&1234u32.to_ne_bytes());
        bytes[4..8].copy_from_slice(&1000u32.to_ne_bytes());
        bytes[8..10].copy_from_slice(b"sh");
        bytes[24..33].copy_from_slice(b"/bin/true");
        bytes[88..99].copy_from_slice(b"Hello World");
        let e = Event::parse(&bytes).unwrap();
        assert_eq!((e.pid, e.uid), (1234, 1000));
        assert_eq!((e.command.as_str(), e.path.as_str()), ("sh", "/bin/true"));
        assert_eq!(e.message, "Hello World");
        assert!(e.to_string().contains("   1234  1000 sh "));
    }

    #[test]
    fn a_short_record_is_an_error() {
        assert!(Event::parse(&[0u8; 12]).is_err());
    }
}

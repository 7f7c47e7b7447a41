//! The bytes of one `struct event` from src/bpf/vault.bpf.c.

use std::fmt;

use anyhow::ensure;

/// Where each field of the C struct starts: two u32, then the name.
const PID: usize = 0;
const UID: usize = 4;
const NAME: usize = 8;
/// `NAME_LEN` in the C file.
const NAME_LEN: usize = 64;
/// `sizeof(struct event)`.
pub const LEN: usize = NAME + NAME_LEN;

/// One refused open, as the BPF program reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The process that was refused.
    pub pid: u32,
    /// The user it ran as.
    pub uid: u32,
    /// The file's name, up to its first NUL.
    pub name: String,
}

impl Event {
    /// Decodes a record from the ring buffer.
    pub fn parse(bytes: &[u8]) -> anyhow::Result<Self> {
        ensure!(bytes.len() >= LEN, "an event of {} bytes, expected {LEN}", bytes.len());
        let four = |at: usize| -> [u8; 4] { bytes[at..at + 4].try_into().expect("4 bytes") };
        let name = &bytes[NAME..NAME + NAME_LEN];
        let end = name.iter().position(|&b| b == 0).unwrap_or(NAME_LEN);
        Ok(Event {
            pid: u32::from_ne_bytes(four(PID)),
            uid: u32::from_ne_bytes(four(UID)),
            name: String::from_utf8_lossy(&name[..end]).into_owned(),
        })
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DENIED pid={} uid={} file={}", self.pid, self.uid, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_decoded_and_shown() {
        let mut bytes = vec![0u8; LEN];
        bytes[0..4].copy_from_slice(&4321u32.to_ne_bytes());
        bytes[4..8].copy_from_slice(&1234u32.to_ne_bytes());
        bytes[8..14].copy_from_slice(b"secret");
        let e = Event::parse(&bytes).unwrap();
        assert_eq!(e, Event { pid: 4321, uid: 1234, name: "secret".into() });
        assert_eq!(e.to_string(), "DENIED pid=4321 uid=1234 file=secret");
    }

    #[test]
    fn a_short_record_is_an_error() {
        assert!(Event::parse(&[0u8; 12]).is_err());
    }
}

//! The bytes of one `struct event` from src/bpf/unlink_snoop.bpf.c.

use std::ffi::CStr;
use std::fmt;

use anyhow::ensure;
use nix::errno::Errno;

/// Where each field of the C struct starts, and its length in bytes: a
/// u32, an s32 and a char array, with no padding.
const PID: usize = 0;
const RET: usize = 4;
const NAME: (usize, usize) = (8, 64);
/// `sizeof(struct event)`.
pub const SIZE: usize = 72;

/// One call of do_unlinkat, as the BPF programs saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub pid: u32,
    /// The function's result: 0, or a negative errno.
    pub ret: i32,
    /// The path the caller passed, as the kernel copied it.
    pub name: String,
}

impl Event {
    /// Decodes a record from the ring buffer.
    pub fn parse(bytes: &[u8]) -> anyhow::Result<Self> {
        ensure!(bytes.len() >= SIZE, "an event of {} bytes, expected {SIZE}", bytes.len());
        let four = |at: usize| -> [u8; 4] { bytes[at..at + 4].try_into().expect("4 bytes") };
        let field = &bytes[NAME.0..NAME.0 + NAME.1];
        // The kernel's string copies end with a NUL when they fit; a field
        // filled to the brim has none, and is taken whole.
        let name = match CStr::from_bytes_until_nul(field) {
            Ok(c) => c.to_bytes(),
            Err(_) => field,
        };
        Ok(Event {
            pid: u32::from_ne_bytes(four(PID)),
            ret: i32::from_ne_bytes(four(RET)),
            name: String::from_utf8_lossy(name).into_owned(),
        })
    }

    /// The errno's name for a failed call (`ENOENT` for -2); `-` otherwise.
    pub fn errno(&self) -> String {
        if self.ret < 0 { format!("{:?}", Errno::from_raw(-self.ret)) } else { "-".into() }
    }

    /// The column titles for [`Event`]'s `Display`.
    pub fn header() -> String {
        format!("{:>7} {:>5} {:<8} {}", "PID", "RET", "ERRNO", "FILE")
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:>7} {:>5} {:<8} {}", self.pid, self.ret, self.errno(), self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_c_layout() {
        let mut bytes = vec![0u8; SIZE];
        bytes[0..4].copy_from_slice(&1234u32.to_ne_bytes());
        bytes[4..8].copy_from_slice(&(-2i32).to_ne_bytes());
        bytes[8..18].copy_from_slice(b"/tmp/gone1");
        let e = Event::parse(&bytes).unwrap();
        assert_eq!((e.pid, e.ret, e.name.as_str()), (1234, -2, "/tmp/gone1"));
        assert_eq!(e.to_string(), "   1234    -2 ENOENT   /tmp/gone1");
        bytes[4..8].copy_from_slice(&0i32.to_ne_bytes());
        assert_eq!(Event::parse(&bytes).unwrap().to_string(), "   1234     0 -        /tmp/gone1");
    }

    #[test]
    fn a_short_record_is_an_error() {
        assert!(Event::parse(&[0u8; 12]).is_err());
    }
}

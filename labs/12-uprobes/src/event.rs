//! The bytes of one `struct event` from src/bpf/callwatch.bpf.c.

use std::fmt;

use anyhow::ensure;

/// Where each field of the C struct starts: a u32, a u32, then three
/// 8-byte fields, with no padding.
const TID: usize = 0;
const SIZE: usize = 4;
const KEY: usize = 8;
const RET: usize = 16;
const LATENCY: usize = 24;
/// `sizeof(struct event)`.
pub const LEN: usize = 32;

/// One call of process_item, as the BPF programs saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The thread that made the call.
    pub tid: u32,
    /// The function's first argument.
    pub size: u32,
    /// Its second argument.
    pub key: i64,
    /// What it returned.
    pub ret: i64,
    /// From the uprobe to the uretprobe, in nanoseconds.
    pub latency_ns: u64,
}

impl Event {
    /// Decodes a record from the ring buffer.
    pub fn parse(bytes: &[u8]) -> anyhow::Result<Self> {
        ensure!(bytes.len() >= LEN, "an event of {} bytes, expected {LEN}", bytes.len());
        let four = |at: usize| -> [u8; 4] { bytes[at..at + 4].try_into().expect("4 bytes") };
        let eight = |at: usize| -> [u8; 8] { bytes[at..at + 8].try_into().expect("8 bytes") };
        Ok(Event {
            tid: u32::from_ne_bytes(four(TID)),
            size: u32::from_ne_bytes(four(SIZE)),
            key: i64::from_ne_bytes(eight(KEY)),
            ret: i64::from_ne_bytes(eight(RET)),
            latency_ns: u64::from_ne_bytes(eight(LATENCY)),
        })
    }

    /// The column titles for [`Event`]'s `Display`.
    pub fn header() -> String {
        format!("{:>7} {:>5} {:>20} {:>20} {:>12}", "TID", "SIZE", "KEY", "RET", "LATENCY_US")
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Microseconds with three decimals: the nanoseconds, all of them.
        let us = format!("{}.{:03}", self.latency_ns / 1000, self.latency_ns % 1000);
        write!(f, "{:>7} {:>5} {:>20} {:>20} {us:>12}", self.tid, self.size, self.key, self.ret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_decoded_and_shown() {
        let mut bytes = vec![0u8; LEN];
        bytes[0..4].copy_from_slice(&4321u32.to_ne_bytes());
        bytes[4..8].copy_from_slice(&17u32.to_ne_bytes());
        bytes[8..16].copy_from_slice(&(-5_000_000_000i64).to_ne_bytes());
        bytes[16..24].copy_from_slice(&i64::MIN.to_ne_bytes());
        bytes[24..32].copy_from_slice(&1_700_042u64.to_ne_bytes());
        let e = Event::parse(&bytes).unwrap();
        assert_eq!((e.tid, e.size, e.key, e.ret, e.latency_ns), (4321, 17, -5_000_000_000, i64::MIN, 1_700_042));
        let words: Vec<String> = e.to_string().split_whitespace().map(String::from).collect();
        assert_eq!(words, ["4321", "17", "-5000000000", "-9223372036854775808", "1700.042"]);
    }

    #[test]
    fn a_short_record_is_an_error() {
        assert!(Event::parse(&[0u8; 24]).is_err());
    }
}

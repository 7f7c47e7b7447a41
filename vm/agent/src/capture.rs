//! A step's output as the agent keeps and streams it: capped, and in whole
//! UTF-8 characters.
//!
//! Everything the agent reports crosses an emulated UART (about 140 KB/s
//! under TCG) as one JSON line per event, so a step that floods its stdout
//! (a `printf` in a loop) must not become one enormous line that takes the
//! rest of the run to send, or exhaust the guest's memory.

/// How much of each of a step's streams (stdout, stderr) the agent keeps:
/// the first 256 KiB. The rest is read and dropped, so the step never
/// blocks on a full pipe, and its result says it was truncated. Streamed
/// output (`labctl run`) is not capped: it goes out as it comes.
pub const OUTPUT_CAP: usize = 256 * 1024;

/// The first [`OUTPUT_CAP`] bytes of a stream, and how many more there were.
#[derive(Debug, Default)]
pub struct Captured {
    bytes: Vec<u8>,
    dropped: u64,
    cap: usize,
}

impl Captured {
    pub fn new() -> Self {
        Self::with_cap(OUTPUT_CAP)
    }

    pub fn with_cap(cap: usize) -> Self {
        Captured { bytes: Vec::new(), dropped: 0, cap }
    }

    /// Keeps what fits under the cap and counts the rest.
    pub fn push(&mut self, data: &[u8]) {
        let room = self.cap.saturating_sub(self.bytes.len());
        let kept = room.min(data.len());
        self.bytes.extend_from_slice(&data[..kept]);
        self.dropped += (data.len() - kept) as u64;
    }

    /// Bytes that went past the cap.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The kept output as text. A cut in the middle of a character loses
    /// that character, not into a replacement sign.
    pub fn text(&self) -> String {
        let end = if self.dropped > 0 { complete_prefix_len(&self.bytes) } else { self.bytes.len() };
        String::from_utf8_lossy(&self.bytes[..end]).into_owned()
    }

    /// The kept output as it is, for matching a pattern while it grows.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// The length of `bytes` without an incomplete UTF-8 sequence at its end
/// (the start of a character whose other bytes have not come yet).
fn complete_prefix_len(bytes: &[u8]) -> usize {
    // A character is at most 4 bytes: look back at most 3 for its lead byte.
    for back in 1..=3.min(bytes.len()) {
        let b = bytes[bytes.len() - back];
        if b & 0b1100_0000 == 0b1000_0000 {
            continue; // a continuation byte: keep looking for the lead byte
        }
        let needed = match b {
            0x00..=0x7f => 1,
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf7 => 4,
            _ => 1, // not UTF-8 at all: leave it to the lossy conversion
        };
        return if needed > back { bytes.len() - back } else { bytes.len() };
    }
    bytes.len()
}

/// Turns a byte stream read in arbitrary chunks into text chunks that end
/// on character boundaries: the bytes of a character split across two
/// reads wait for the rest.
#[derive(Debug, Default)]
pub struct Utf8Chunks {
    pending: Vec<u8>,
}

impl Utf8Chunks {
    /// The text of `chunk` (after whatever was pending) up to its last
    /// complete character.
    pub fn push(&mut self, chunk: &[u8]) -> String {
        self.pending.extend_from_slice(chunk);
        let end = complete_prefix_len(&self.pending);
        let text = String::from_utf8_lossy(&self.pending[..end]).into_owned();
        self.pending.drain(..end);
        text
    }

    /// What is left at the end of the stream (an incomplete character,
    /// as a replacement sign), if anything.
    pub fn finish(&mut self) -> Option<String> {
        if self.pending.is_empty() {
            return None;
        }
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_past_the_cap_is_counted_not_kept() {
        let mut c = Captured::with_cap(10);
        c.push(b"hello ");
        c.push(b"world, and more");
        assert_eq!(c.text(), "hello worl");
        assert_eq!(c.dropped(), 11);
        let mut fits = Captured::with_cap(10);
        fits.push(b"0123456789");
        assert_eq!((fits.text().as_str(), fits.dropped()), ("0123456789", 0));
    }

    #[test]
    fn a_cut_never_leaves_half_a_character() {
        // "é" is two bytes; the cap falls between them.
        let mut c = Captured::with_cap(4);
        c.push("abcé".as_bytes());
        assert_eq!(c.text(), "abc");
        // "한" is three bytes.
        let mut k = Captured::with_cap(5);
        k.push("ab한글".as_bytes());
        assert_eq!(k.text(), "ab한");
    }

    #[test]
    fn characters_split_across_reads_come_out_whole() {
        let text = "Hello 한글 wörld 🦀!";
        let bytes = text.as_bytes();
        // Every way of cutting the stream in two, and byte by byte.
        for cut in 0..=bytes.len() {
            let mut s = Utf8Chunks::default();
            let mut out = s.push(&bytes[..cut]);
            out += &s.push(&bytes[cut..]);
            assert_eq!(s.finish(), None);
            assert_eq!(out, text, "cut at {cut}");
        }
        let mut s = Utf8Chunks::default();
        let out: String = bytes.iter().map(|b| s.push(std::slice::from_ref(b))).collect();
        assert_eq!(out, text);
        assert!(!out.contains('\u{fffd}'));
    }

    #[test]
    fn invalid_bytes_still_come_out_and_a_truncated_end_is_flushed() {
        let mut s = Utf8Chunks::default();
        assert_eq!(s.push(b"a\xffb"), "a\u{fffd}b");
        assert_eq!(s.push(b"c\xe2\x82"), "c");
        assert_eq!(s.finish(), Some("\u{fffd}".into()));
    }
}

//! A step's output as the agent keeps and streams it: capped, and in whole
//! UTF-8 characters.
//!
//! Everything the agent reports crosses an emulated UART (about 140 KB/s
//! under TCG) as one JSON line per event, so a step that floods its stdout
//! (a `printf` in a loop) must not become one enormous line that takes the
//! rest of the run to send, or exhaust the guest's memory.

/// How much of each of a step's streams (stdout, stderr) the agent keeps:
/// 256 KiB, its first three quarters from the start of the stream and the
/// last quarter from its end, because the end is where a long log says
/// what went wrong (a verifier log ends with its verdict). What lies
/// between is read and dropped, so the step never blocks on a full pipe,
/// and its result says it was truncated. Streamed output (`labctl run`) is
/// not capped: it goes out as it comes.
pub const OUTPUT_CAP: usize = 256 * 1024;

/// Room for the line that says how much was left out (and a newline that
/// may precede it): the kept text, that line included, stays within the cap.
const MARKER_ROOM: usize = 64;

/// The beginning and the end of a stream, within a cap, and how many bytes
/// between them were dropped.
#[derive(Debug, Default)]
pub struct Captured {
    head: Vec<u8>,
    /// The latest bytes past the head, at most `tail_cap` once trimmed.
    tail: Vec<u8>,
    dropped: u64,
    head_cap: usize,
    tail_cap: usize,
}

impl Captured {
    pub fn new() -> Self {
        Self::with_cap(OUTPUT_CAP - MARKER_ROOM)
    }

    pub fn with_cap(cap: usize) -> Self {
        let tail_cap = cap / 4;
        Captured { head: Vec::new(), tail: Vec::new(), dropped: 0, head_cap: cap - tail_cap, tail_cap }
    }

    /// Keeps what fits in the head, then the latest bytes in the tail, and
    /// counts what falls out between them.
    pub fn push(&mut self, data: &[u8]) {
        let room = self.head_cap.saturating_sub(self.head.len());
        let kept = room.min(data.len());
        self.head.extend_from_slice(&data[..kept]);
        self.tail.extend_from_slice(&data[kept..]);
        // Trim in batches, not on every push, to keep pushes cheap.
        if self.tail.len() > 2 * self.tail_cap.max(1) || (kept < data.len() && self.tail_cap == 0) {
            self.trim();
        }
    }

    fn trim(&mut self) {
        // One byte more than is shown: whether the shown part starts a line.
        let extra = self.tail.len().saturating_sub(self.tail_cap + 1);
        self.tail.drain(..extra);
        self.dropped += extra as u64;
    }

    /// Bytes left out between the beginning and the end.
    pub fn dropped(&self) -> u64 {
        self.dropped + self.tail.len().saturating_sub(self.tail_cap) as u64
    }

    /// The kept output as text: the beginning, and when bytes were left
    /// out, a line saying how many, then the end from its first whole line.
    /// A cut in the middle of a character loses that character, not into a
    /// replacement sign.
    pub fn text(&self) -> String {
        let dropped = self.dropped();
        let start = self.tail.len().saturating_sub(self.tail_cap);
        let tail = &self.tail[start..];
        let starts_a_line = start == 0 || self.tail[start - 1] == b'\n';
        if dropped == 0 {
            return String::from_utf8_lossy(&[self.head.as_slice(), tail].concat()).into_owned();
        }
        let mut text = String::from_utf8_lossy(&self.head[..complete_prefix_len(&self.head)]).into_owned();
        // The end starts at a line of its own, so that no half line (or
        // half character) is shown as if it were whole.
        let from = if starts_a_line && start > 0 {
            0
        } else {
            tail.iter().position(|&b| b == b'\n').map_or(tail.len(), |at| at + 1)
        };
        let dropped = dropped + from as u64;
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!("[... {dropped} bytes of output left out ...]\n"));
        // A writer killed in the middle of a buffered line (busybox's
        // `yes`, stopped by a signal) can end the stream inside a
        // character: the truncated output then ends at the last whole one.
        let tail = &tail[from..];
        text.push_str(&String::from_utf8_lossy(&tail[..complete_prefix_len(tail)]));
        text
    }

    /// The beginning of the output, for matching a pattern while it grows.
    pub fn bytes(&self) -> &[u8] {
        &self.head
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
    fn output_past_the_cap_keeps_its_beginning_and_its_end() {
        // A cap of 12: 9 bytes of head, 3 of tail.
        let mut c = Captured::with_cap(12);
        c.push(b"first\nline ");
        c.push(b"middle stuff\nend\n");
        assert_eq!(c.dropped(), 28 - 9 - 3);
        // The last 3 bytes are "nd\n": half a line, left out too.
        assert_eq!(c.text(), "first\nlin\n[... 19 bytes of output left out ...]\n");
        let mut c = Captured::with_cap(16);
        c.push(b"first\nline middle stuff\nend\n");
        assert_eq!(c.text(), "first\nline m\n[... 12 bytes of output left out ...]\nend\n");
        let mut fits = Captured::with_cap(10);
        fits.push(b"0123456789");
        assert_eq!((fits.text().as_str(), fits.dropped()), ("0123456789", 0));
        // Many small pushes: the tail is the last bytes, whatever came before.
        let mut many = Captured::with_cap(40);
        for i in 0..1000 {
            many.push(format!("line {i}\n").as_bytes());
        }
        let text = many.text();
        assert!(text.starts_with("line 0\nline 1\n"), "{text}");
        assert!(text.ends_with("line 999\n"), "{text}");
        assert!(text.contains("bytes of output left out"));
    }

    #[test]
    fn the_kept_text_with_its_marker_stays_within_the_output_cap() {
        // Lines of 100 bytes: the head ends in the middle of one, the tail
        // starts on the next.
        let mut line = [b'x'; 100];
        line[99] = b'\n';
        let mut c = Captured::new();
        for _ in 0..40_000 {
            c.push(&line);
        }
        let text = c.text();
        assert!(text.contains("bytes of output left out"));
        assert!(text.len() <= OUTPUT_CAP, "{} bytes kept", text.len());
        assert!(text.len() > OUTPUT_CAP * 3 / 4, "{} bytes kept", text.len());
    }

    #[test]
    fn a_cut_never_leaves_half_a_character() {
        // "é" is two bytes; the head's cap (3 of 4) falls between them.
        let mut c = Captured::with_cap(4);
        c.push("abcé\nxyz".as_bytes());
        assert!(c.text().starts_with("abc\n["), "{}", c.text());
        // "한" is three bytes: a head of 6 keeps "ab한" and half of "글".
        let mut k = Captured::with_cap(8);
        k.push("ab한글\n!!".as_bytes());
        assert!(k.text().starts_with("ab한\n["), "{}", k.text());
        assert!(!k.text().contains('\u{fffd}'));
    }

    #[test]
    fn a_truncated_stream_that_stops_inside_a_character_ends_at_the_last_whole_one() {
        // A cap of 40: 30 bytes of head, 10 of tail. The stream is cut off
        // after the first byte of "글", as by a writer killed mid-write.
        let mut c = Captured::with_cap(40);
        let line = "flood 한글 flood\n".as_bytes();
        for _ in 0..5 {
            c.push(line);
        }
        c.push(&"xy한글".as_bytes()[..6]);
        let text = c.text();
        assert!(text.contains("bytes of output left out"), "{text}");
        assert!(!text.contains('\u{fffd}'), "{text:?}");
        assert!(text.ends_with("xy한"), "{text:?}");
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

//! The verifier tutor: from the log of a program the BPF verifier rejected,
//! the line that decided the rejection, what it means in plain English, the
//! C line the verifier was checking and the section of chapter 6 that
//! teaches the rule.
//!
//! libbpf (and bpftool, which uses it) prints the kernel's log between
//! `-- BEGIN PROG LOAD LOG --` and `-- END PROG LOAD LOG --`, surrounded by
//! its own `libbpf:` lines. Inside, the verifier walks the program: each
//! instruction (`7: (79) r1 = *(u64 *)(r0 +0)`), the register states, and,
//! before the instructions of each C line, that line (`; *count += 1;`,
//! with ` @ file.bpf.c:15` on newer kernels). When it gives up it states
//! why in one or two lines (the violation, then sometimes the reason) under
//! the last instruction, and ends with the `processed N insns` summary. So
//! the decisive line is among the last lines that are neither the walk nor
//! the summary, and the C line is the last `;` line above it.
//!
//! The messages differ a little between kernels (`'inv'` became
//! `'scalar'`, ranges are printed differently), so the catalogue matches
//! them with regexes on the part that stays the same.

use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

/// What the tutor has to say about one rejected program.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// The catalogue entry that recognised the message ([`Signature::kind`]),
    /// or [`UNKNOWN_KIND`] for a message the catalogue does not know.
    pub kind: &'static str,
    /// The verifier's line that decided the rejection, as printed (trimmed,
    /// without a `libbpf: ` prefix).
    pub message: String,
    /// What is wrong and how to fix it.
    pub explanation: String,
    /// The C code the verifier was checking when it stopped (the text of
    /// the log's last `;` line before the message): old kernels print no
    /// location, and this is then the only way back to the source.
    pub source: Option<String>,
    /// The C file and line of `source`, on kernels that print them
    /// (`; text @ file.bpf.c:LINE`).
    pub file: Option<String>,
    pub line: Option<u32>,
    /// Where the book teaches the rule: `book/src/ch06-verifier.md#anchor`.
    pub section: &'static str,
}

/// One kind of rejection the tutor recognises.
#[derive(Debug)]
pub struct Signature {
    /// A stable name for the kind, for tests and tools (`null-check`).
    pub kind: &'static str,
    /// A regex matched against each candidate message line.
    pub pattern: &'static str,
    /// A message of this kind as a kernel prints it. The tests check that
    /// it is recognised as this kind, so that an earlier, broader entry
    /// cannot hide this one.
    pub example: &'static str,
    /// What is wrong and how to fix it, in one to three sentences.
    pub explanation: &'static str,
    pub section: &'static str,
}

/// The kind of an [`Explanation`] for a rejection the catalogue does not
/// recognise.
pub const UNKNOWN_KIND: &str = "unknown";

const UNKNOWN_EXPLANATION: &str = "The tutor does not know this message. Read it with the last instruction \
                                   above it: it names the register and the rule that failed, and walking up the log \
                                   shows where that register got the type or range that was not good enough.";

const WHAT_IT_CHECKS: &str = "book/src/ch06-verifier.md#what-it-checks";
const PACKET_BOUNDS: &str = "book/src/ch06-verifier.md#reading-a-rejection-the-packet-bounds";
const NULL_CHECK: &str = "book/src/ch06-verifier.md#the-null-check";
const LOOPS: &str = "book/src/ch06-verifier.md#loops-the-verifier-cannot-follow";
const LICENSES: &str = "book/src/ch06-verifier.md#licenses";
const LIVING_WITH_IT: &str = "book/src/ch06-verifier.md#living-with-the-verifier";

/// The rejections the tutor recognises. Order matters: when the verifier's
/// last lines match several entries, the first entry wins, so the more
/// specific entries come before the broader ones (a possibly-NULL pointer
/// before any invalid memory access, a negative index before the map value
/// bounds it also violates, `R0 !read_ok` before any register's).
pub static CATALOGUE: &[Signature] = &[
    Signature {
        kind: "null-check",
        pattern: r"invalid mem access '\w*or_null\w*'|pointer arithmetic on \w*or_null\w* prohibited|type=\w*or_null\w* expected=|Possibly NULL pointer passed",
        example: "R0 invalid mem access 'map_value_or_null'",
        explanation: "The pointer may be NULL here: a map lookup (or a ring buffer reservation, or another helper \
                      whose result is `..._or_null`) returns NULL when it has nothing to give, and the program uses \
                      the result without checking. Test it first (`if (!ptr) return ...;`) and use it only where \
                      it is known not to be NULL.",
        section: NULL_CHECK,
    },
    Signature {
        kind: "scalar-deref",
        pattern: r"R\d+ invalid mem access '(scalar|inv)'",
        example: "R1 invalid mem access 'scalar'",
        explanation: "The program reads or writes through a register that holds a plain number (a scalar), not a \
                      pointer the verifier can check: a number cast to a pointer is never a valid address. Copy \
                      kernel or user memory into a local buffer with bpf_probe_read_kernel() or \
                      bpf_probe_read_user() instead of dereferencing it.",
        section: WHAT_IT_CHECKS,
    },
    Signature {
        kind: "packet-bounds",
        pattern: r"invalid access to packet|offset is outside of the packet",
        example: "invalid access to packet, off=12 size=1, R1(id=0,off=12,r=0)",
        explanation: "The program reads packet data it has not proven to be there: `off` is where the read starts, \
                      `size` its length, and `r` how many bytes a bounds check has proven readable. Compare with \
                      `data_end` first (`if ((void *)(eth + 1) > data_end) return XDP_PASS;`) and read only after \
                      that check.",
        section: PACKET_BOUNDS,
    },
    Signature {
        kind: "unbounded-access",
        pattern: r"unbounded memory access",
        example: "R0 unbounded memory access, make sure to bounds check any such access",
        explanation: "An index or offset added to a pointer has no upper bound the verifier can see, so the access \
                      could land anywhere. Check it against the array's size (`if (i >= N) return ...;`) right \
                      before using it, or mask it (`i & (N - 1)` for a power-of-two N).",
        section: LIVING_WITH_IT,
    },
    Signature {
        kind: "negative-index",
        pattern: r"min value is outside of the allowed memory range",
        example: "R1 min value is outside of the allowed memory range",
        explanation: "The lowest value the index can have puts the access before the start of the object: the \
                      index can be negative (a signed number checked only from above). Use an unsigned index, or \
                      also check `if (i < 0) return ...;`.",
        section: LIVING_WITH_IT,
    },
    Signature {
        kind: "negative-value",
        pattern: r"min value is negative",
        example: "R2 min value is negative, either use unsigned or 'var &= const'",
        explanation: "A register used as an index or as a size may be negative as far as the verifier knows. Make \
                      the variable unsigned, check that it is not negative, or clamp it (`len &= 0xff`) before \
                      using it.",
        section: LIVING_WITH_IT,
    },
    Signature {
        kind: "map-value-bounds",
        pattern: r"invalid access to map value",
        example: "invalid access to map value, value_size=64 off=64 size=1",
        explanation: "The access can go past the end of the map value: it is `value_size` bytes long, and the \
                      access starts at `off` and touches `size` bytes. An array of N elements allows indexes 0 to \
                      N - 1, so the check must be `if (i >= N)`, not `if (i > N)`.",
        section: LIVING_WITH_IT,
    },
    Signature {
        kind: "memory-bounds",
        pattern: r"max value is outside of the allowed memory range|invalid access to memory",
        example: "invalid access to memory, mem_size=4 off=4 size=1",
        explanation: "The highest offset this access can use reaches past the end of the memory the pointer points \
                      into. Tighten the upper bound of the index (`i >= N`, not `i > N`) so that the index plus the \
                      access size stays inside the object.",
        section: LIVING_WITH_IT,
    },
    Signature {
        kind: "infinite-loop",
        pattern: r"infinite loop detected",
        example: "infinite loop detected at insn 3",
        explanation: "The verifier came back to the same instruction in exactly the same state, so the loop can \
                      never end: nothing in it changes its condition. Make the loop advance (the missing `i++`) or \
                      give it a constant bound.",
        section: LOOPS,
    },
    Signature {
        kind: "unbounded-loop",
        pattern: r"back-edge|loop is not bounded|unbounded loop",
        example: "back-edge from insn 22 to 10",
        explanation: "The program has a loop this verifier does not accept: kernels before 5.3 (and unprivileged \
                      loaders) allow no backward jump at all. Give the loop a small constant bound and unroll it \
                      (`#pragma unroll`), or on newer kernels use bpf_loop() or bpf_for().",
        section: LOOPS,
    },
    Signature {
        kind: "jump-complexity",
        pattern: r"sequence of \d+ jumps is too complex",
        example: "The sequence of 8193 jumps is too complex.",
        explanation: "The verifier gave up with more than 8192 branches waiting to be explored, typically because a \
                      loop's bound is only known at run time, so that every iteration is a new state. Bound the loop \
                      with a small constant it can see (`i < 64 && i < len`), or use bpf_loop() or bpf_for().",
        section: LOOPS,
    },
    Signature {
        kind: "too-large",
        pattern: r"BPF program is too (large|complex)",
        example: "BPF program is too large. Processed 1000001 insn",
        explanation: "The verifier processed a million instructions across all paths without finishing, usually \
                      because of a loop with a large or unknown bound or many branches it cannot prune. Use a \
                      smaller constant bound, bpf_loop() or bpf_for(), or split the work with tail calls.",
        section: LOOPS,
    },
    Signature {
        kind: "no-return-value",
        pattern: r"\bR0 !read_ok",
        example: "R0 !read_ok",
        explanation: "The program reaches its exit without setting R0, the return value: a path through the \
                      function has no `return`. Return a value the program type accepts (e.g. `return XDP_PASS;`) \
                      on every path.",
        section: WHAT_IT_CHECKS,
    },
    Signature {
        kind: "uninit-register",
        pattern: r"R\d+ !read_ok",
        example: "R3 !read_ok",
        explanation: "An instruction reads a register that nothing has written on this path. In hand-written \
                      bytecode, set the register first; in C this usually means a helper was declared or called \
                      with fewer arguments than it takes.",
        section: WHAT_IT_CHECKS,
    },
    Signature {
        kind: "bad-return",
        pattern: r"At (sub)?program exit the register R\d+",
        example: "At program exit the register R0 has smin=2 smax=2 should have been in [0, 1]",
        explanation: "The program can return a value its program type does not allow: the message gives the range \
                      the value can have and the range required. Return one of the codes the attach type expects \
                      (a cgroup program returns 0 to deny or 1 to allow, not an XDP action).",
        section: WHAT_IT_CHECKS,
    },
    Signature {
        kind: "gpl-only",
        pattern: r"cannot call GPL-restricted function",
        example: "cannot call GPL-restricted function from non-GPL compatible program",
        explanation: "The program calls a helper the kernel offers only to GPL-compatible programs, and its license \
                      string is not one. Declare `char LICENSE[] SEC(\"license\") = \"GPL\";` (or \"Dual MIT/GPL\"), \
                      or do without the helper.",
        section: LICENSES,
    },
    Signature {
        kind: "unreleased-reference",
        pattern: r"(?i)unreleased reference",
        example: "Unreleased reference id=2 alloc_insn=5",
        explanation: "The program can exit while still holding something it acquired at instruction `alloc_insn` \
                      (a ring buffer reservation, a socket, ...). Release it on every path before returning: \
                      bpf_ringbuf_submit() or bpf_ringbuf_discard() for a reservation, bpf_sk_release() for a socket.",
        section: WHAT_IT_CHECKS,
    },
    Signature {
        kind: "double-release",
        pattern: r"reference has not been acquired before",
        example: "reference has not been acquired before",
        explanation: "The program releases something it does not hold: it was released already on this path, or \
                      never acquired. Submit or discard each reservation, and release each reference, exactly once, \
                      and do not use it afterwards.",
        section: WHAT_IT_CHECKS,
    },
    Signature {
        kind: "uninit-stack",
        pattern: r"invalid (indirect )?read from stack( R\d+)? (var_)?off ",
        example: "invalid indirect read from stack R1 off -8+0 size 8",
        explanation: "A helper (or a load) reads stack memory that nothing has written on this path, which could \
                      leak what an earlier program left there. Initialise the buffer before passing it (`char \
                      buf[8] = {};` or __builtin_memset).",
        section: WHAT_IT_CHECKS,
    },
    Signature {
        kind: "stack-bounds",
        pattern: r"invalid .*stack (R\d+ )?(var_)?off=|invalid indirect access to stack",
        example: "invalid indirect access to stack R1 off=-8 size=16",
        explanation: "The access falls outside the stack space the program uses, usually because a size passed to \
                      a helper is larger than the buffer, or an index runs past the end of a local array. Pass \
                      `sizeof(buffer)` and keep indexes inside the array.",
        section: WHAT_IT_CHECKS,
    },
    Signature {
        kind: "misaligned",
        pattern: r"misaligned",
        example: "misaligned stack access off (0x0; 0x0)+0+-6 size 4",
        explanation: "A value of several bytes is read or written at an address that is not a multiple of its size \
                      (here a `size`-byte access at an odd offset). Copy it with __builtin_memcpy, or lay the data \
                      out so that each field sits at an aligned offset.",
        section: WHAT_IT_CHECKS,
    },
    Signature {
        kind: "ctx-access",
        pattern: r"invalid bpf_context access",
        example: "invalid bpf_context access off=4 size=4",
        explanation: "The program accesses a field of its context (the `ctx` argument) that this program type may \
                      not access, or writes one that is read-only (`off` is the field's offset in the struct). Read \
                      only the fields the program type offers, and change the packet or event through helpers.",
        section: WHAT_IT_CHECKS,
    },
    Signature {
        kind: "unknown-helper",
        pattern: r"unknown func|cannot use helper",
        example: "unknown func bpf_get_current_pid_tgid#14",
        explanation: "This kernel does not offer the helper to this program type: the type may not call it, or the \
                      kernel is older than the helper (later kernels opened some helpers to every type). Use a \
                      helper the program type allows (`bpftool feature probe` lists them), or require a newer kernel.",
        section: WHAT_IT_CHECKS,
    },
    Signature {
        kind: "helper-arg-type",
        pattern: r"R\d+ type=\S+ expected=",
        example: "R2 type=scalar expected=fp, pkt, pkt_meta, map_key, map_value",
        explanation: "A helper's argument has the wrong type: R1 is the first argument, R2 the second, and the \
                      message says what the register holds and what the helper accepts. Usually a value was passed \
                      where the helper wants a pointer to it, such as `key` instead of `&key`.",
        section: WHAT_IT_CHECKS,
    },
    Signature {
        kind: "combined-stack",
        pattern: r"combined stack size of \d+ calls",
        example: "combined stack size of 3 calls is 608. Too large",
        explanation: "Each function fits in the 512 bytes of stack, but the functions that call one another need \
                      more than 512 bytes together. Make the large local buffers smaller, or move them into a \
                      per-CPU array map used as scratch space.",
        section: WHAT_IT_CHECKS,
    },
    Signature {
        kind: "stack-limit",
        pattern: r"(?i)stack limit|too large stack|call stack of previous frames is \d+ bytes",
        example: "Looks like the BPF stack limit is exceeded. Please move large on stack variables into BPF per-cpu array map.",
        explanation: "The program needs more than the 512 bytes of stack eBPF allows (with tail calls, less). Move \
                      large local variables into a per-CPU array map used as scratch space, or make them smaller.",
        section: WHAT_IT_CHECKS,
    },
    Signature {
        kind: "pointer-leak",
        pattern: r"leaks addr",
        example: "R0 leaks addr as return value",
        explanation: "The program would hand a kernel address to a place user space can read (a map, the context, \
                      its return value), which only privileged programs may do. Store a number computed from the \
                      data instead of the pointer, or load the program with CAP_BPF and CAP_PERFMON.",
        section: LIVING_WITH_IT,
    },
    Signature {
        kind: "pointer-math",
        pattern: r"math between \w+ pointer and|pointer arithmetic|on pointer prohibited",
        example: "math between pkt pointer and register with unbounded min value is not allowed",
        explanation: "The program does arithmetic the verifier does not allow on this pointer: some pointers (ctx, \
                      pkt_end) may not be moved at all, and the others only by an offset whose range is known. \
                      Bounds-check the offset before adding it, and move packet or map value pointers only.",
        section: WHAT_IT_CHECKS,
    },
    Signature {
        kind: "frame-pointer-write",
        pattern: r"frame pointer is read only",
        example: "frame pointer is read only",
        explanation: "The program writes R10, the frame pointer, which is read-only. Copy it into another register \
                      (`r2 = r10; r2 += -8`) and change the copy.",
        section: WHAT_IT_CHECKS,
    },
    Signature {
        kind: "unreachable-code",
        pattern: r"unreachable insn \d+",
        example: "unreachable insn 5",
        explanation: "An instruction can never run, and the verifier rejects dead code. Remove it, or fix the jump \
                      that was meant to reach it (a jump's offset counts from the instruction after the jump).",
        section: WHAT_IT_CHECKS,
    },
    Signature {
        kind: "jump-out-of-range",
        pattern: r"jump out of range|last insn is not an exit or jmp",
        example: "jump out of range from insn 3 to 12",
        explanation: "A jump lands outside the program, or the program's last instruction is neither an exit nor a \
                      jump. Check the jump offsets (they count from the instruction after the jump) and end every \
                      path with an exit.",
        section: WHAT_IT_CHECKS,
    },
];

/// The catalogue's patterns, compiled once, in catalogue order.
static PATTERNS: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    CATALOGUE.iter().map(|s| Regex::new(s.pattern).expect("catalogue patterns are valid regexes")).collect()
});

/// libbpf's markers around the kernel's log. Old libbpf wrote
/// `-- BEGIN DUMP LOG ---` and `-- END LOG --`; the BTF load log has its own
/// markers and is not the program's.
static LOG_BEGIN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"-- BEGIN (PROG LOAD|DUMP) LOG -").expect("valid regex"));
static LOG_END: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"-- END (PROG LOAD )?LOG -").expect("valid regex"));

/// The verifier's summary, printed whether it accepts or rejects.
static SUMMARY: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^processed \d+ insns").expect("valid regex"));

/// Lines that say nothing about why the program was rejected: the summary
/// and statistics, the states printed after an infinite loop's message, any
/// log markers, bpftool's closing remarks, and the note the captures put
/// where they cut a long log.
static NOISE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(processed \d+ insns|verification time \d+|stack depth \d+|(cur|old) state:|-- .*LOG -|\[\.\.\. .*left out|Error: |Warning: |If it used to work)",
    )
    .expect("valid regex")
});

/// The verifier's account of its walk: instructions and register states
/// (`7: (79) ...`, `0: R1=ctx() R10=fp0`, ` R0_w=map_value(...)`), source
/// lines, and the precision-tracking and call-frame chatter of verbose logs.
/// The message that ends the walk comes after all of these.
static WALK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(\d+: |;|\s|last_idx |regs=|parent didn't have |mark_precise: |from \d+ to \d+: |propagating |frame\d+: |func#\d+ @|caller:|callee:|returning from callee|to caller at)",
    )
    .expect("valid regex")
});

/// A source line: `; text` or `; text @ file.bpf.c:LINE`.
static SOURCE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^; ?(?P<text>.*?)\s*(?:@ (?P<file>\S+):(?P<line>\d+))?\s*$").expect("valid regex"));

/// How many message lines can state one rejection: the verifier writes the
/// violation and sometimes the reason under it. Lines above those, with no
/// instruction in between, were printed earlier and are not the verdict.
const MESSAGE_LINES: usize = 3;

/// Explains the verifier's rejection in `log` (what libbpf or bpftool
/// printed, or the kernel's log alone).
///
/// Returns `None` when `log` holds no rejection: no message after the
/// verifier's walk (a program that loaded, a log cut short), or text that is
/// not a verifier log at all. A message the catalogue does not know, in what
/// is clearly a verifier log (load-log markers or the `processed N insns`
/// summary), gets [`UNKNOWN_KIND`] and a generic explanation: the decisive
/// line is still worth showing.
pub fn explain(log: &str) -> Option<Explanation> {
    let lines: Vec<&str> = log.lines().collect();
    let program_log = &lines[program_log_range(&lines)];
    let messages = final_messages(program_log);

    let recognised = CATALOGUE.iter().zip(PATTERNS.iter()).find_map(|(signature, pattern)| {
        messages.iter().find(|(_, text)| pattern.is_match(text)).map(|m| (signature, m))
    });
    let (kind, explanation, section, &(at, message)) = match recognised {
        Some((signature, message)) => (signature.kind, signature.explanation, signature.section, message),
        None if is_verifier_log(&lines) => (UNKNOWN_KIND, UNKNOWN_EXPLANATION, LIVING_WITH_IT, messages.last()?),
        None => return None,
    };

    let source = program_log[..at].iter().rev().find_map(|line| source_line(line));
    Some(Explanation {
        kind,
        message: message.to_string(),
        explanation: explanation.to_string(),
        file: source.as_ref().and_then(|s| s.location).map(|(file, _)| file.to_string()),
        line: source.as_ref().and_then(|s| s.location).map(|(_, line)| line),
        source: source.map(|s| s.text.to_string()),
        section,
    })
}

/// [`explain`] for the whole output of a program that may or may not have
/// printed a load log: only output that holds one (libbpf's markers or the
/// verifier's summary) is read, so that a program's own words that happen
/// to look like a verifier message are never taken for one.
pub fn explain_output(output: &str) -> Option<Explanation> {
    let lines: Vec<&str> = output.lines().collect();
    if !is_verifier_log(&lines) {
        return None;
    }
    explain(output)
}

/// The lines of the last program's load log, or all of them when the text
/// has no markers (the kernel's log alone).
fn program_log_range(lines: &[&str]) -> Range<usize> {
    let start = lines.iter().rposition(|l| LOG_BEGIN.is_match(l)).map_or(0, |at| at + 1);
    let end = lines[start..].iter().position(|l| LOG_END.is_match(l)).map_or(lines.len(), |at| start + at);
    start..end
}

/// The message lines after the last step of the walk, in log order, each
/// with its index in `lines`.
fn final_messages<'a>(lines: &[&'a str]) -> Vec<(usize, &'a str)> {
    let mut messages = Vec::new();
    for (at, line) in lines.iter().enumerate().rev() {
        match classify(line) {
            Line::Noise => continue,
            Line::Walk => break,
            Line::Message(text) => {
                messages.push((at, text));
                if messages.len() == MESSAGE_LINES {
                    break;
                }
            }
        }
    }
    messages.reverse();
    messages
}

enum Line<'a> {
    Noise,
    Walk,
    Message(&'a str),
}

fn classify(line: &str) -> Line<'_> {
    // libbpf's own lines ("prog 'x': failed to load: -13") are noise, but a
    // libbpf that relays the kernel's log line by line prefixes the
    // message too.
    if let Some(relayed) = line.strip_prefix("libbpf: ") {
        let relayed = relayed.trim();
        return if PATTERNS.iter().any(|p| p.is_match(relayed)) { Line::Message(relayed) } else { Line::Noise };
    }
    if line.trim().is_empty() || NOISE.is_match(line) {
        Line::Noise
    } else if WALK.is_match(line) {
        Line::Walk
    } else {
        Line::Message(line.trim())
    }
}

fn is_verifier_log(lines: &[&str]) -> bool {
    lines.iter().any(|l| LOG_BEGIN.is_match(l) || SUMMARY.is_match(l))
}

struct SourceLine<'a> {
    text: &'a str,
    location: Option<(&'a str, u32)>,
}

/// The C code of a `;` line. Lines without code (`; ` on old kernels,
/// `;  @ file.bpf.c:0` on new ones, for instructions the compiler made up)
/// point nowhere, so they are skipped and the line above them is used.
fn source_line(line: &str) -> Option<SourceLine<'_>> {
    let captures = SOURCE.captures(line)?;
    let text = captures.name("text")?.as_str();
    if text.is_empty() {
        return None;
    }
    let location = match (captures.name("file"), captures.name("line")) {
        (Some(file), Some(number)) => number.as_str().parse().ok().map(|n| (file.as_str(), n)),
        _ => None,
    };
    Some(SourceLine { text, location })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::fs;
    use std::path::{Path, PathBuf};

    use super::*;

    /// What the tutor must find in each demo's log.
    struct Expected {
        demo: &'static str,
        kind: &'static str,
        /// How the message starts on every kernel (the rest differs).
        message: &'static str,
        /// The C code of the line at fault, trimmed.
        source: Option<&'static str>,
        /// The line in `book/demos/bpf/<demo>.bpf.c`, read by hand from the
        /// C file, for kernels that print locations.
        line: Option<u32>,
    }

    const EXPECTED: &[Expected] = &[
        Expected {
            demo: "arg_type",
            kind: "helper-arg-type",
            message: "R2 type=",
            source: Some("__u64 *count = bpf_map_lookup_elem(&counts, (void *)(long)key);"),
            line: Some(13),
        },
        Expected {
            demo: "bad_return",
            kind: "bad-return",
            message: "At program exit the register R0 has ",
            source: Some("return XDP_PASS;"),
            line: Some(11),
        },
        Expected {
            demo: "big_stack",
            kind: "combined-stack",
            message: "combined stack size of 3 calls is ",
            // The verifier checks the stack before it walks any code.
            source: None,
            line: None,
        },
        Expected {
            demo: "ctx_write",
            kind: "ctx-access",
            message: "invalid bpf_context access off=4 size=4",
            source: Some("ctx->data_end = ctx->data + 14;"),
            line: Some(12),
        },
        Expected {
            demo: "deref_scalar",
            kind: "scalar-deref",
            message: "R1 invalid mem access '",
            source: Some("return *ifindex == 1 ? XDP_DROP : XDP_PASS;"),
            line: Some(13),
        },
        Expected {
            demo: "infinite_loop",
            kind: "infinite-loop",
            message: "infinite loop detected at insn 3",
            source: Some("while (i < len)"),
            line: Some(14),
        },
        Expected {
            demo: "misaligned",
            kind: "misaligned",
            message: "misaligned stack access off ",
            source: Some("*(__u32 *)(msg + 2) = ctx->ingress_ifindex;"),
            line: Some(14),
        },
        Expected {
            demo: "no_bounds_check",
            kind: "packet-bounds",
            message: "invalid access to packet, off=12 size=1",
            source: Some("return eth->h_proto == ETH_P_IP_BE ? XDP_PASS : XDP_DROP;"),
            line: Some(13),
        },
        Expected {
            demo: "no_null_check",
            kind: "null-check",
            message: "R0 invalid mem access 'map_value_or_null'",
            source: Some("*count += 1;"),
            line: Some(15),
        },
        Expected {
            demo: "no_return",
            kind: "no-return-value",
            message: "R0 !read_ok",
            source: Some("}"),
            line: Some(13),
        },
        Expected {
            demo: "not_gpl",
            kind: "gpl-only",
            message: "cannot call GPL-restricted function from non-GPL compatible program",
            source: Some("bpf_trace_printk(msg, sizeof(msg));"),
            line: Some(12),
        },
        Expected {
            demo: "off_by_one",
            kind: "map-value-bounds",
            message: "invalid access to map value, value_size=64 off=64 size=1",
            source: Some("l->seen[len] = 1;"),
            line: Some(20),
        },
        Expected {
            demo: "ringbuf_leak",
            // The verifier notices at the exit, the function's closing brace.
            kind: "unreleased-reference",
            message: "Unreleased reference id=2 alloc_insn=5",
            source: Some("}"),
            line: Some(22),
        },
        Expected {
            demo: "signed_index",
            kind: "negative-index",
            message: "R1 min value is outside of the allowed memory range",
            source: Some("l->seen[payload] = 1;"),
            line: Some(21),
        },
        Expected {
            demo: "unbounded_loop",
            kind: "jump-complexity",
            message: "The sequence of 8193 jumps is too complex.",
            source: Some("for (__u32 i = 0; i != len; i += 2)"),
            line: Some(15),
        },
        Expected {
            demo: "unchecked_index",
            kind: "unbounded-access",
            message: "R0 unbounded memory access, make sure to bounds check any such access",
            source: Some("l->seen[len] = 1;"),
            line: Some(18),
        },
        Expected {
            demo: "uninit_stack",
            kind: "uninit-stack",
            message: "invalid indirect read from stack R1 off -8+0 size 8",
            source: Some("bpf_trace_printk(msg, sizeof(msg));"),
            line: Some(14),
        },
        Expected {
            demo: "wrong_helper",
            kind: "unknown-helper",
            message: "unknown func bpf_get_current_pid_tgid#14",
            source: Some("__u64 id = bpf_get_current_pid_tgid();"),
            line: Some(12),
        },
    ];

    const KERNELS: [&str; 3] = ["5.10", "6.1", "6.12"];

    /// Newer kernels accept two of the demos: 6.1 and 6.12 let a privileged
    /// loader pass uninitialised stack to a helper, and 6.12 offers
    /// bpf_get_current_pid_tgid to XDP programs too.
    fn loaded(kernel: &str, demo: &str) -> bool {
        matches!((kernel, demo), ("6.1" | "6.12", "uninit_stack") | ("6.12", "wrong_helper"))
    }

    /// Only 6.12 of the captured kernels prints `@ file:line`.
    fn prints_locations(kernel: &str) -> bool {
        kernel == "6.12"
    }

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the harness is in the workspace").to_path_buf()
    }

    fn demo_source_line(file: &str, line: u32) -> Option<String> {
        let text = fs::read_to_string(repo().join("book/demos/bpf").join(file)).ok()?;
        text.lines().nth(line.checked_sub(1)? as usize).map(|l| l.trim().to_string())
    }

    /// Everything wrong with the tutor's answer for one log.
    fn mismatches(kernel: &str, expected: &Expected, log: &str) -> Vec<String> {
        let got = explain(log);
        if loaded(kernel, expected.demo) {
            return match got {
                None => vec![],
                Some(got) => vec![format!("the program loaded, yet the tutor explains {got:?}")],
            };
        }
        let Some(got) = got else { return vec!["no explanation".into()] };
        let mut wrong = Vec::new();
        if got.kind != expected.kind {
            wrong.push(format!("kind {:?}, expected {:?} (message {:?})", got.kind, expected.kind, got.message));
        }
        if !got.message.starts_with(expected.message) {
            wrong.push(format!("message {:?} does not start with {:?}", got.message, expected.message));
        }
        if !log.lines().any(|l| l.trim() == got.message) {
            wrong.push(format!("message {:?} is not a line of the log", got.message));
        }
        if got.source.as_deref() != expected.source {
            wrong.push(format!("source {:?}, expected {:?}", got.source, expected.source));
        }
        let (file, line) = match expected.line {
            Some(line) if prints_locations(kernel) => (Some(format!("{}.bpf.c", expected.demo)), Some(line)),
            _ => (None, None),
        };
        if (&got.file, got.line) != (&file, line) {
            wrong.push(format!("location {:?}:{:?}, expected {file:?}:{line:?}", got.file, got.line));
        }
        // The location must point at the code the log quotes, in the C
        // file as it is in the book.
        if let (Some(file), Some(line)) = (&got.file, got.line) {
            let in_file = demo_source_line(file, line);
            if in_file.as_deref() != got.source.as_deref() {
                wrong.push(format!("{file}:{line} is {in_file:?}, the log quotes {:?}", got.source));
            }
        }
        if got.explanation.is_empty() || !got.section.starts_with("book/src/ch06-verifier.md#") {
            wrong.push(format!("explanation {:?}, section {:?}", got.explanation, got.section));
        }
        wrong
    }

    #[test]
    fn every_captured_log_is_explained_as_expected() {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/verifier");
        let mut failures = Vec::new();
        let mut checked = 0;
        for kernel in KERNELS {
            let dir = data.join(kernel);
            let mut seen = HashSet::new();
            for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
                let path = entry.expect("a directory entry").path();
                if path.extension().is_none_or(|e| e != "log") {
                    continue;
                }
                let demo = path.file_stem().and_then(|s| s.to_str()).expect("a UTF-8 file name").to_string();
                let Some(expected) = EXPECTED.iter().find(|e| e.demo == demo) else {
                    failures.push(format!("{kernel}/{demo}.log: no expectation in EXPECTED"));
                    continue;
                };
                let log = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                for wrong in mismatches(kernel, expected, &log) {
                    failures.push(format!("{kernel}/{demo}.log: {wrong}"));
                }
                seen.insert(demo);
                checked += 1;
            }
            for expected in EXPECTED.iter().filter(|e| !seen.contains(e.demo)) {
                failures.push(format!("{kernel}/{}.log is missing", expected.demo));
            }
        }
        assert!(failures.is_empty(), "{} of {checked} logs:\n{}", failures.len(), failures.join("\n"));
        assert_eq!(checked, KERNELS.len() * EXPECTED.len());
    }

    #[test]
    fn the_catalogue_has_at_least_15_distinct_kinds() {
        assert!(CATALOGUE.len() >= 15, "only {} entries", CATALOGUE.len());
        let kinds: HashSet<&str> = CATALOGUE.iter().map(|s| s.kind).collect();
        assert_eq!(kinds.len(), CATALOGUE.len(), "two entries share a kind");
        assert!(!kinds.contains(UNKNOWN_KIND));
        for signature in CATALOGUE {
            assert!(signature.explanation.ends_with('.'), "{}: {:?}", signature.kind, signature.explanation);
            assert!(!signature.example.is_empty(), "{} has no example", signature.kind);
        }
    }

    #[test]
    fn every_entry_recognises_its_own_example() {
        for signature in CATALOGUE {
            let log = format!(
                "libbpf: prog 'p': -- BEGIN PROG LOAD LOG --\n0: (95) exit\n{}\nprocessed 1 insns (limit \
                 1000000)\n-- END PROG LOAD LOG --\n",
                signature.example
            );
            let got =
                explain(&log).unwrap_or_else(|| panic!("{}: nothing for {:?}", signature.kind, signature.example));
            assert_eq!(got.kind, signature.kind, "{:?} is taken by an earlier entry", signature.example);
            assert_eq!(got.message, signature.example);
            assert_eq!(got.explanation, signature.explanation);
        }
    }

    /// mdbook's anchor for a heading: lowercase, spaces to dashes,
    /// punctuation dropped.
    fn anchor(heading: &str) -> String {
        heading
            .chars()
            .filter_map(|c| match c {
                c if c.is_alphanumeric() || c == '_' || c == '-' => Some(c.to_ascii_lowercase()),
                c if c.is_whitespace() => Some('-'),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn every_section_is_a_heading_of_chapter_6() {
        let chapter = fs::read_to_string(repo().join("book/src/ch06-verifier.md")).expect("chapter 6");
        let anchors: HashSet<String> = chapter
            .lines()
            .filter_map(|l| l.strip_prefix("## "))
            .map(|h| format!("book/src/ch06-verifier.md#{}", anchor(h.trim())))
            .collect();
        assert!(anchors.contains("book/src/ch06-verifier.md#reading-a-rejection-the-packet-bounds"), "{anchors:?}");
        for section in CATALOGUE.iter().map(|s| s.section).chain([LIVING_WITH_IT]) {
            assert!(anchors.contains(section), "{section} is not a heading of chapter 6: {anchors:?}");
        }
    }

    #[test]
    fn an_unknown_message_in_a_verifier_log_gets_the_generic_explanation() {
        let log = "libbpf: prog 'p': BPF program load failed: Invalid argument\n\
                   libbpf: prog 'p': -- BEGIN PROG LOAD LOG --\n\
                   ; return frobnicate(ctx); @ p.bpf.c:7\n\
                   0: (85) call frobnicate#999\n\
                   the frobnicator refuses\n\
                   processed 1 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n\
                   -- END PROG LOAD LOG --\n\
                   libbpf: prog 'p': failed to load: -22\n";
        let got = explain(log).expect("an explanation");
        assert_eq!(got.kind, UNKNOWN_KIND);
        assert_eq!(got.message, "the frobnicator refuses");
        assert_eq!(got.explanation, UNKNOWN_EXPLANATION);
        assert_eq!(got.section, LIVING_WITH_IT);
        assert_eq!((got.file.as_deref(), got.line), (Some("p.bpf.c"), Some(7)));
        assert_eq!(got.source.as_deref(), Some("return frobnicate(ctx);"));
    }

    #[test]
    fn text_that_holds_no_rejection_is_not_explained() {
        assert_eq!(explain(""), None);
        assert_eq!(explain("(loaded)\n"), None);
        assert_eq!(explain("hello\nworld\n"), None);
        // A log cut off in the middle of the walk states no reason.
        let cut = "-- BEGIN PROG LOAD LOG --\n0: R1=ctx() R10=fp0\n0: (b7) r0 = 2\n";
        assert_eq!(explain(cut), None);
    }

    #[test]
    fn source_lines_without_code_are_skipped() {
        let log = "-- BEGIN PROG LOAD LOG --\n\
                   ; char msg[8]; @ p.bpf.c:10\n\
                   ;  @ p.bpf.c:0\n\
                   4: (07) r1 += -8                      ; R1_w=fp-8\n\
                   ; \n\
                   5: (85) call bpf_trace_printk#6\n\
                   invalid indirect read from stack R1 off -8+0 size 8\n\
                   -- END PROG LOAD LOG --\n";
        let got = explain(log).expect("an explanation");
        assert_eq!(got.kind, "uninit-stack");
        assert_eq!(
            (got.source.as_deref(), got.file.as_deref(), got.line),
            (Some("char msg[8];"), Some("p.bpf.c"), Some(10))
        );
    }

    #[test]
    fn libbpf_lines_count_only_when_they_carry_the_message() {
        let log = "libbpf: prog 'p': BPF program load failed: Permission denied\n\
                   libbpf: R0 !read_ok\n\
                   libbpf: prog 'p': failed to load: -13\n\
                   libbpf: failed to load object 'p.bpf.o'\n";
        let got = explain(log).expect("an explanation");
        assert_eq!(got.kind, "no-return-value");
        assert_eq!(got.message, "R0 !read_ok");
        assert_eq!(got.source, None);
    }

    #[test]
    fn only_the_lines_after_the_walk_decide() {
        // A warning printed before the walk matches an entry ranked above
        // the real message's; the message after the last instruction wins.
        let log = "R1 invalid mem access 'scalar'\n\
                   0: (95) exit\n\
                   R0 !read_ok\n\
                   processed 1 insns (limit 1000000)\n";
        assert_eq!(explain(log).map(|e| e.kind), Some("no-return-value"));
    }

    #[test]
    fn an_explanation_serialises_with_every_field() {
        let got = explain("0: (95) exit\nR0 !read_ok\n").expect("an explanation");
        let json = serde_json::to_value(&got).expect("serialises");
        assert_eq!(json["kind"], "no-return-value");
        assert_eq!(json["message"], "R0 !read_ok");
        assert_eq!(json["line"], serde_json::Value::Null);
        assert_eq!(json["section"], WHAT_IT_CHECKS);
        assert!(json["explanation"].as_str().is_some_and(|e| e.contains("R0")));
    }
}

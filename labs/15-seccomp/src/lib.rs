//! Lab 15: seccomp. The launcher turns a list of syscalls to deny into a
//! classic-BPF program (the student's `filter::build`), installs it on
//! itself (`filter::install`) and execs a command, which inherits it.

pub mod catalogue;
mod cbpf;
mod filter;

use std::convert::Infallible;
use std::fmt::Write as _;
use std::os::unix::process::CommandExt;
use std::process::Command;

use anyhow::{Context, bail};
pub use cbpf::evaluate;
pub use filter::{build, install};
use libc::sock_filter;

/// `AUDIT_ARCH_X86_64` from `<linux/audit.h>`: EM_X86_64 (62), marked
/// 64-bit and little-endian. The kernel puts it in `seccomp_data.arch` for
/// a call made with the `syscall` instruction.
pub const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;
/// `AUDIT_ARCH_I386`: EM_386 (3), little-endian. What `seccomp_data.arch`
/// holds for a call made with `int 0x80`.
pub const AUDIT_ARCH_I386: u32 = 3 | 0x4000_0000;

/// The seccomp fields of a `/proc/PID/status` text, as the probe and
/// filter-dump both print them: `seccomp=2 filters=1 no_new_privs=1`
/// (`none` for a field the kernel does not show).
pub fn status_fields(status: &str) -> String {
    let field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')).map(|v| v.trim().to_string()))
            .unwrap_or_else(|| "none".into())
    };
    format!("seccomp={} filters={} no_new_privs={}", field("Seccomp"), field("Seccomp_filters"), field("NoNewPrivs"))
}

/// `BPF_STMT(code, k)` of `<linux/filter.h>`: an instruction that does not jump.
pub const fn stmt(code: u32, k: u32) -> sock_filter {
    sock_filter { code: code as u16, jt: 0, jf: 0, k }
}

/// `BPF_JUMP(code, k, jt, jf)`: compare the accumulator with `k`, then skip
/// `jt` instructions if the comparison holds and `jf` if it does not.
pub const fn jump(code: u32, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code: code as u16, jt, jf, k }
}

/// One line per instruction, the way `seccomp-tools dump` shows a filter.
pub fn disassemble(prog: &[sock_filter]) -> String {
    let mut out = String::new();
    for (i, ins) in prog.iter().enumerate() {
        let code = u32::from(ins.code);
        let what = match code {
            c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => match ins.k {
                0 => "A = seccomp_data.nr".to_string(),
                4 => "A = seccomp_data.arch".to_string(),
                k => format!("A = seccomp_data[{k}]"),
            },
            c if c == libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K => format!(
                "if (A == {:#x}) goto {} else goto {}",
                ins.k,
                i + 1 + usize::from(ins.jt),
                i + 1 + usize::from(ins.jf)
            ),
            c if c == libc::BPF_RET | libc::BPF_K => match ins.k & libc::SECCOMP_RET_ACTION_FULL {
                libc::SECCOMP_RET_ALLOW => "return ALLOW".to_string(),
                libc::SECCOMP_RET_ERRNO => format!("return ERRNO({})", ins.k & libc::SECCOMP_RET_DATA),
                libc::SECCOMP_RET_KILL_PROCESS => "return KILL_PROCESS".to_string(),
                libc::SECCOMP_RET_KILL_THREAD => "return KILL_THREAD".to_string(),
                other => format!("return {other:#010x}"),
            },
            _ => "(another instruction)".to_string(),
        };
        let _ = writeln!(out, " {i:04}: {:#06x} {:>2} {:>2} {:#010x}  {what}", ins.code, ins.jt, ins.jf, ins.k);
    }
    out
}

// ANCHOR: run
/// The launcher: denies the catalogue syscalls listed in `deny` (indices,
/// as in `"3 7 11"`) and execs `command` under the filter. Returns only on
/// error.
pub fn run(deny: &str, command: &[String]) -> anyhow::Result<Infallible> {
    let (program, args) = command.split_first().context("no command given")?;
    let deny = catalogue::parse_deny(deny).map_err(anyhow::Error::msg)?;
    let names: Vec<String> = deny.iter().map(|s| format!("{} ({})", s.name, s.x86_64)).collect();
    eprintln!("seccomp-run: denying {}", names.join(", "));
    let numbers: Vec<u32> = deny.iter().map(|s| s.x86_64).collect();

    let prog = build(&numbers);
    let plural = if prog.len() == 1 { "" } else { "s" };
    eprint!("seccomp-run: the filter, {} instruction{plural}:\n{}", prog.len(), disassemble(&prog));
    if prog.is_empty() || prog.len() > libc::BPF_MAXINSNS as usize {
        bail!("a filter has 1 to {} instructions, not {}", libc::BPF_MAXINSNS, prog.len());
    }
    install(&prog).context("installing the filter")?;

    let err = Command::new(program).args(args).exec();
    Err(err).with_context(|| format!("exec {program}"))
}
// ANCHOR_END: run

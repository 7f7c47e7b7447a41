//! `filter-dump DENY`: the grader's second witness. Run as root while the
//! probe waits, it finds the probe's process, asks the kernel for the
//! filters it holds on it (`PTRACE_SECCOMP_GET_FILTER`, the classic-BPF
//! program as it was installed), and runs them on every catalogue call,
//! as the kernel would. Its lines have the probe's format, with `filter`
//! for `probe`: nothing the student's process prints reaches this step.

use std::process::ExitCode;

use lab15_seccomp::catalogue::{CATALOGUE, parse_deny};
use lab15_seccomp::{AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, evaluate};
use libc::sock_filter;

/// `PTRACE_SECCOMP_GET_FILTER` from `<linux/ptrace.h>` (not in `libc`).
const PTRACE_SECCOMP_GET_FILTER: libc::c_uint = 0x420c;
/// The probe, as the agent ships it.
const PROBE: &str = "/lab/bin/probe";

/// The one process running the probe.
fn find_probe() -> Result<i32, String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").map_err(|e| format!("/proc: {e}"))?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        if std::fs::read_link(entry.path().join("exe")).is_ok_and(|exe| exe.as_os_str() == PROBE) {
            found.push(pid);
        }
    }
    match found.as_slice() {
        [pid] => Ok(*pid),
        [] => Err(format!("no process runs {PROBE}")),
        many => Err(format!("{} processes run {PROBE}: {many:?}", many.len())),
    }
}

fn ptrace(request: libc::c_uint, pid: i32, addr: usize, data: usize) -> Result<libc::c_long, String> {
    // SAFETY: the requests used here take integers or a buffer the caller sized.
    let ret = unsafe { libc::ptrace(request, pid, addr, data) };
    if ret < 0 { Err(format!("ptrace({request:#x}): {}", std::io::Error::last_os_error())) } else { Ok(ret) }
}

/// Every filter on `pid`, the most recent first, read while it is stopped.
fn filters_of(pid: i32) -> Result<Vec<Vec<sock_filter>>, String> {
    ptrace(libc::PTRACE_SEIZE, pid, 0, 0)?;
    let read = || -> Result<Vec<Vec<sock_filter>>, String> {
        ptrace(libc::PTRACE_INTERRUPT, pid, 0, 0)?;
        let mut status = 0;
        // SAFETY: waits for the stop of the process just seized.
        if unsafe { libc::waitpid(pid, &mut status, libc::__WALL) } != pid {
            return Err(format!("waitpid: {}", std::io::Error::last_os_error()));
        }
        let mut out = Vec::new();
        // The kernel answers ENOENT past the last filter.
        for index in 0.. {
            let Ok(len) = ptrace(PTRACE_SECCOMP_GET_FILTER, pid, index, 0) else { break };
            let mut prog = vec![sock_filter { code: 0, jt: 0, jf: 0, k: 0 }; len as usize];
            ptrace(PTRACE_SECCOMP_GET_FILTER, pid, index, prog.as_mut_ptr() as usize)?;
            out.push(prog);
        }
        Ok(out)
    };
    let result = read();
    let _ = ptrace(libc::PTRACE_DETACH, pid, 0, 0);
    result
}

/// The probe's notation for an action.
fn got(action: u32) -> String {
    let data = action & libc::SECCOMP_RET_DATA;
    match action & libc::SECCOMP_RET_ACTION_FULL {
        libc::SECCOMP_RET_ALLOW | libc::SECCOMP_RET_LOG => "ok".into(),
        libc::SECCOMP_RET_ERRNO => format!("errno:{data}"),
        libc::SECCOMP_RET_KILL_PROCESS => format!("signal:{}", libc::SIGSYS),
        // The probe makes its 32-bit calls from a second thread with a
        // SIGSYS handler: these two leave the process alive.
        libc::SECCOMP_RET_KILL_THREAD => "thread-killed".into(),
        libc::SECCOMP_RET_TRAP => "trapped".into(),
        // Without a tracer or a listener, the call fails with ENOSYS.
        libc::SECCOMP_RET_TRACE | libc::SECCOMP_RET_USER_NOTIF => format!("errno:{}", libc::ENOSYS),
        other => format!("action:{other:#010x}"),
    }
}

fn run(deny: &str) -> Result<(), String> {
    let deny = parse_deny(deny)?;
    let pid = find_probe()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| format!("status: {e}"))?;
    let filters = filters_of(pid)?;
    for s in &CATALOGUE {
        let denied = deny.contains(s);
        let doors = [
            ("x86_64", AUDIT_ARCH_X86_64, s.x86_64, if denied { "deny" } else { "allow" }),
            ("i386", AUDIT_ARCH_I386, s.i386, "kill"),
        ];
        for (abi, arch, nr, expect) in doors {
            // ANCHOR: answer
            // The kernel runs every filter and keeps the most restrictive
            // answer: the lowest action, compared as a signed number.
            let mut answer = libc::SECCOMP_RET_ALLOW;
            for prog in &filters {
                let a = evaluate(prog, nr, arch)?;
                if ((a & libc::SECCOMP_RET_ACTION_FULL) as i32) < ((answer & libc::SECCOMP_RET_ACTION_FULL) as i32) {
                    answer = a;
                }
            }
            // ANCHOR_END: answer
            println!("filter call abi={abi} name={} nr={nr} expect={expect} got={}", s.name, got(answer));
        }
    }
    println!("filter status pid={pid} {}", lab15_seccomp::status_fields(&status));
    for (i, prog) in filters.iter().enumerate() {
        eprint!(
            "filter-dump: filter {i} of process {pid}, {} instructions:\n{}",
            prog.len(),
            lab15_seccomp::disassemble(prog)
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [deny] = args.as_slice() else {
        eprintln!("usage: filter-dump DENY (as given to seccomp-run)");
        return ExitCode::from(2);
    };
    match run(deny) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("filter-dump: {e}");
            ExitCode::from(2)
        }
    }
}

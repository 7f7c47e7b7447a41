//! `probe DENY DIR [--wait]`: the grader's probe, run under the student's filter.
//!
//! It tries every syscall of the catalogue twice, once through the 64-bit
//! door (`syscall`, the x86_64 table) and once through the 32-bit door
//! (`int 0x80`, the i386 table), each in a child of its own so that a call
//! the filter kills does not end the record. The child makes a 32-bit call
//! from a second thread, with a SIGSYS handler installed: only an answer
//! that kills the whole process kills that child by SIGSYS (a trap runs
//! the handler, a killed thread leaves the other one running). It writes
//! one line per call with what the kernel answered, then the seccomp
//! lines of its own `/proc/self/status`. DENY is the list the launcher was
//! given, so each line also says what the lab expects. With `--wait` it then stays
//! alive, so that `filter-dump` can read its filter from the kernel.

use std::arch::asm;
use std::ffi::CString;
use std::process::ExitCode;

use lab15_seccomp::catalogue::{CATALOGUE, Syscall, parse_deny};

/// One way of making a call, run in a child.
type Attempt<'a> = &'a dyn Fn() -> Result<i64, i32>;

/// What the kernel did with one call.
enum Outcome {
    /// It returned a value that is not an error.
    Ok,
    /// It failed with this errno (252: 252 or more).
    Errno(i32),
    /// The child died of this signal.
    Signal(i32),
    /// The child's SIGSYS handler ran: the call trapped, and the process
    /// could have lived on.
    Trapped,
    /// The thread that made the call died, and the rest of the child ran on.
    ThreadKilled,
}

/// The exit status of a child whose SIGSYS handler ran (no errno is this large).
const TRAPPED: i32 = 254;
/// The exit status of a child whose calling thread died.
const THREAD_KILLED: i32 = 253;

/// Memory below 4 GiB: `int 0x80` passes 32-bit pointers, so the paths
/// and buffers of the 32-bit calls live here (the 64-bit calls use them too).
struct Low {
    mkdir64: *const u8,
    mkdir32: *const u8,
    tmp: *const u8,
    timer: *mut u8,
}

fn low_memory(dir: &str) -> Result<Low, String> {
    // SAFETY: a fresh anonymous private mapping; nothing else refers to it.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_32BIT,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED || (base as usize) >= 1 << 32 {
        return Err(format!("mmap(MAP_32BIT): {}", std::io::Error::last_os_error()));
    }
    let base = base.cast::<u8>();
    let mut at = 0;
    let mut put = |s: &str| -> Result<*const u8, String> {
        let c = CString::new(s).map_err(|e| e.to_string())?;
        let bytes = c.as_bytes_with_nul();
        if at + bytes.len() > 3072 {
            return Err(format!("{dir:?} is too long"));
        }
        // SAFETY: at + len stays within the first 3 KiB of the 4 KiB mapping.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), base.add(at), bytes.len()) };
        let p = unsafe { base.add(at) } as *const u8;
        at += bytes.len();
        Ok(p)
    };
    let mkdir64 = put(&format!("{dir}/made-by-x86_64"))?;
    let mkdir32 = put(&format!("{dir}/made-by-i386"))?;
    let tmp = put(dir)?;
    // SAFETY: the last KiB of the mapping, room for any itimerval.
    let timer = unsafe { base.add(3072) };
    Ok(Low { mkdir64, mkdir32, tmp, timer })
}

/// A 64-bit call: `syscall` with the x86_64 number.
fn call64(s: &Syscall, low: &Low, parent: i32) -> Result<i64, i32> {
    let nr = i64::from(s.x86_64);
    // SAFETY: every pointer passed points into the low mapping.
    let ret = unsafe {
        match s.name {
            "mkdir" => libc::syscall(nr, low.mkdir64, 0o700),
            "kill" => libc::syscall(nr, parent, 0),
            "access" => libc::syscall(nr, low.tmp, libc::F_OK),
            "dup" => libc::syscall(nr, 1),
            "getitimer" => libc::syscall(nr, libc::ITIMER_REAL, low.timer),
            "alarm" => libc::syscall(nr, 0),
            "dup2" => libc::syscall(nr, 1, 60),
            "socket" => libc::syscall(nr, libc::AF_UNIX, libc::SOCK_DGRAM, 0),
            _ => libc::syscall(nr),
        }
    };
    if ret == -1 { Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0)) } else { Ok(ret) }
}

// ANCHOR: int80
/// A 32-bit call: `int 0x80` with the i386 number. The kernel takes it as
/// a compat syscall, and seccomp sees arch = AUDIT_ARCH_I386.
fn call32(s: &Syscall, low: &Low, parent: i32) -> Result<i64, i32> {
    let p = |ptr: *const u8| ptr as usize as u32;
    let args: [u32; 3] = match s.name {
        "mkdir" => [p(low.mkdir32), 0o700, 0],
        "kill" => [parent as u32, 0, 0],
        "access" => [p(low.tmp), libc::F_OK as u32, 0],
        "dup" => [1, 0, 0],
        "getitimer" => [libc::ITIMER_REAL as u32, p(low.timer), 0],
        "alarm" => [0, 0, 0],
        "dup2" => [1, 60, 0],
        "socket" => [libc::AF_UNIX as u32, libc::SOCK_DGRAM as u32, 0],
        _ => [0, 0, 0],
    };
    let mut eax = s.i386;
    // SAFETY: a compat syscall with valid 32-bit pointers. rbx is reserved
    // by LLVM, so the first argument is swapped in and out of it. Kernels
    // before 4.17 zeroed r8-r11 on the way back from int 0x80.
    unsafe {
        asm!(
            "xchg {a0:r}, rbx",
            "int 0x80",
            "xchg {a0:r}, rbx",
            a0 = inout(reg) u64::from(args[0]) => _,
            inlateout("eax") eax,
            in("ecx") args[1],
            in("edx") args[2],
            lateout("r8") _, lateout("r9") _, lateout("r10") _, lateout("r11") _,
        );
    }
    let ret = eax as i32;
    if (-4095..0).contains(&ret) { Err(-ret) } else { Ok(i64::from(ret)) }
}
// ANCHOR_END: int80

extern "C" fn on_sigsys(_: libc::c_int) {
    // SAFETY: _exit is async-signal-safe; it ends the whole child.
    unsafe { libc::_exit(TRAPPED) };
}

/// What the calling thread passes back; `done` stays false if it never returns.
struct InThread<'a> {
    call: Attempt<'a>,
    done: bool,
    code: i32,
}

extern "C" fn thread_main(arg: *mut libc::c_void) -> *mut libc::c_void {
    // SAFETY: arg is the InThread the child's main thread waits on.
    let t = unsafe { &mut *arg.cast::<InThread<'_>>() };
    t.code = exit_code((t.call)());
    t.done = true;
    std::ptr::null_mut()
}

fn exit_code(r: Result<i64, i32>) -> i32 {
    match r {
        Ok(_) => 0,
        Err(e) => e.clamp(1, 252),
    }
}

/// In the child: makes `call` from a second thread with a SIGSYS handler
/// installed, and returns the child's exit status.
fn from_thread(call: Attempt<'_>) -> i32 {
    // SAFETY: a handler that only calls _exit.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigsys as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGSYS, &sa, std::ptr::null_mut());
    }
    let mut t = InThread { call, done: false, code: 0 };
    let mut tid: libc::pthread_t = 0;
    let arg = (&raw mut t).cast::<libc::c_void>();
    // SAFETY: t outlives the thread, which is joined below.
    if unsafe { libc::pthread_create(&mut tid, std::ptr::null(), thread_main, arg) } != 0 {
        return 252;
    }
    // SAFETY: joins the thread just created; a thread the kernel killed is joinable too.
    unsafe { libc::pthread_join(tid, std::ptr::null_mut()) };
    // SAFETY: the thread has ended; read what it wrote, if anything.
    let (done, code) =
        unsafe { (std::ptr::read_volatile(&raw const t.done), std::ptr::read_volatile(&raw const t.code)) };
    if done { code } else { THREAD_KILLED }
}

/// Runs `call` in a child and reports how it ended; with `threaded`, the
/// child makes it from a second thread (see `from_thread`).
fn in_child(call: Attempt<'_>, threaded: bool) -> Result<Outcome, String> {
    // SAFETY: the probe has one thread; the child makes one call (maybe
    // from a thread of its own) and _exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        let code = if threaded { from_thread(call) } else { exit_code(call()) };
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for the child just forked.
    if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
        return Err(format!("waitpid: {}", std::io::Error::last_os_error()));
    }
    Ok(if libc::WIFSIGNALED(status) {
        Outcome::Signal(libc::WTERMSIG(status))
    } else if libc::WEXITSTATUS(status) == 0 {
        Outcome::Ok
    } else if libc::WEXITSTATUS(status) == TRAPPED {
        Outcome::Trapped
    } else if libc::WEXITSTATUS(status) == THREAD_KILLED {
        Outcome::ThreadKilled
    } else {
        Outcome::Errno(libc::WEXITSTATUS(status))
    })
}

fn describe(o: &Outcome) -> (String, String) {
    match *o {
        Outcome::Ok => ("ok".into(), String::new()),
        Outcome::Errno(e) => {
            // "Operation not permitted (os error 1)": the text without the number.
            let text = std::io::Error::from_raw_os_error(e).to_string();
            (format!("errno:{e}"), text.split(" (os error").next().unwrap_or_default().to_string())
        }
        Outcome::Signal(s) => {
            let name = if s == libc::SIGSYS { "killed by SIGSYS".into() } else { format!("killed by signal {s}") };
            (format!("signal:{s}"), name)
        }
        Outcome::Trapped => ("trapped".into(), "SIGSYS caught by the process's handler".into()),
        Outcome::ThreadKilled => ("thread-killed".into(), "the calling thread died, the process ran on".into()),
    }
}

/// The probe's own pid, read without getpid(2), which the filter may deny.
fn own_pid() -> Result<i32, String> {
    let link = std::fs::read_link("/proc/self").map_err(|e| format!("/proc/self: {e}"))?;
    link.to_string_lossy().parse().map_err(|_| format!("/proc/self -> {}", link.display()))
}

fn run(deny: &str, dir: &str) -> Result<(), String> {
    let deny = parse_deny(deny)?;
    let low = low_memory(dir)?;
    let parent = own_pid()?;
    // A killed child must not leave a core file behind.
    let none = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: a plain setrlimit with a valid struct.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &none) };

    for s in &CATALOGUE {
        let denied = deny.contains(s);
        let tries: [(&str, u32, &str, Attempt<'_>); 2] = [
            ("x86_64", s.x86_64, if denied { "deny" } else { "allow" }, &|| call64(s, &low, parent)),
            ("i386", s.i386, "kill", &|| call32(s, &low, parent)),
        ];
        for (abi, nr, expect, call) in tries {
            let (got, text) = describe(&in_child(call, abi == "i386")?);
            let text = if text.is_empty() { String::new() } else { format!(" # {text}") };
            println!("probe call abi={abi} name={} nr={nr} expect={expect} got={got}{text}", s.name);
        }
    }

    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| format!("/proc/self/status: {e}"))?;
    println!("probe status pid={parent} {}", lab15_seccomp::status_fields(&status));
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (deny, dir, wait) = match args.as_slice() {
        [deny, dir] => (deny, dir, false),
        [deny, dir, flag] if flag == "--wait" => (deny, dir, true),
        _ => {
            eprintln!("usage: probe DENY DIR [--wait] (DENY: catalogue indices, as given to seccomp-run)");
            return ExitCode::from(2);
        }
    };
    match run(deny, dir) {
        Ok(()) if wait => {
            // Alive, and still under the filter, while filter-dump reads it
            // from the kernel; the agent stops it at the end of the run.
            std::thread::sleep(std::time::Duration::from_secs(120));
            ExitCode::SUCCESS
        }
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("probe: {e}");
            ExitCode::from(2)
        }
    }
}

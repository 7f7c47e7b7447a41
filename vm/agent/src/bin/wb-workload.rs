//! `wb-workload`: the grader's own workload programs, in every guest at
//! `/usr/bin/wb-workload`.
//!
//! Busybox's shell can start processes but not threads, and a wrong answer
//! that keys on the thread ID instead of the process ID only shows when the
//! two differ. These subcommands make them differ, and print what they did
//! so that the checks compare a student's report with the workload's own
//! record, never with the student's.
//!
//! ```text
//! wb-workload thread-exec PATH [ARG...]   exec PATH from a second thread
//! wb-workload threads N COUNT PATH         first one call each of SWEEP's 40 syscalls, then
//!                                          N threads, each making one futex call and
//!                                          opening PATH COUNT times
//! wb-workload nanosleep COUNT              COUNT nanosleep(2) system calls of 1 ms
//! wb-workload clock_nanosleep COUNT        COUNT clock_nanosleep(2) system calls of 1 ms
//! wb-workload nosys COUNT                  COUNT calls of nfsservctl(2), which fail with ENOSYS
//! wb-workload exec-at-page-end PATH      exec PATH, its name the last bytes of a readable page
//! wb-workload raw NR COUNT                 COUNT calls of system call NR, all arguments 0
//! wb-workload odd-returns COUNT FILE OFFSET PROG [ARG...]
//!                                          in this process: COUNT nfsservctl calls, an
//!                                          lseek of a new FILE to OFFSET, then exec PROG
//! ```

use std::ffi::CString;
use std::process::ExitCode;

fn tid() -> i64 {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) }
}

/// Prints the tgid and the tid of a second thread, then that thread execs
/// `argv`: in the kernel's execve entry the thread ID differs from the
/// process ID, which is what the new program runs as afterwards.
fn thread_exec(argv: &[String]) -> Result<(), String> {
    let path = CString::new(argv[0].as_bytes()).map_err(|e| e.to_string())?;
    let args: Vec<CString> =
        argv.iter().map(|a| CString::new(a.as_bytes())).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    let handle = std::thread::spawn(move || {
        println!("tgid={} tid={}", std::process::id(), tid());
        let mut ptrs: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        // SAFETY: path and every argument are NUL-terminated and outlive the
        // call; the array ends with a null pointer; execv only returns on error.
        unsafe { libc::execv(path.as_ptr(), ptrs.as_ptr()) };
        format!("execv {}: {}", path.to_string_lossy(), std::io::Error::last_os_error())
    });
    Err(handle.join().unwrap_or_else(|_| "the exec thread panicked".into()))
}

/// Forty system calls that, with these arguments, change nothing: queries,
/// and calls handed null pointers that fail with EFAULT or EINVAL. A
/// program that counts per syscall in a map too small for the calls a real
/// process makes loses the ones that come after them.
const SWEEP: [(libc::c_long, [libc::c_long; 3]); 40] = [
    (libc::SYS_getpid, [0, 0, 0]),
    (libc::SYS_getppid, [0, 0, 0]),
    (libc::SYS_getuid, [0, 0, 0]),
    (libc::SYS_geteuid, [0, 0, 0]),
    (libc::SYS_getgid, [0, 0, 0]),
    (libc::SYS_getegid, [0, 0, 0]),
    (libc::SYS_getpgrp, [0, 0, 0]),
    (libc::SYS_getsid, [0, 0, 0]),
    (libc::SYS_getpgid, [0, 0, 0]),
    (libc::SYS_sched_yield, [0, 0, 0]),
    (libc::SYS_times, [0, 0, 0]),
    (libc::SYS_sysinfo, [0, 0, 0]),
    (libc::SYS_getrusage, [0, 0, 0]),
    (libc::SYS_getrlimit, [0, 0, 0]),
    (libc::SYS_getcwd, [0, 0, 0]),
    (libc::SYS_getpriority, [0, 0, 0]),
    (libc::SYS_sched_getscheduler, [0, 0, 0]),
    (libc::SYS_sched_get_priority_max, [0, 0, 0]),
    (libc::SYS_sched_get_priority_min, [0, 0, 0]),
    (libc::SYS_sched_getparam, [0, 0, 0]),
    (libc::SYS_sched_rr_get_interval, [0, 0, 0]),
    (libc::SYS_sched_getaffinity, [0, 0, 0]),
    (libc::SYS_capget, [0, 0, 0]),
    (libc::SYS_personality, [0xffff_ffff, 0, 0]),
    (libc::SYS_getitimer, [0, 0, 0]),
    (libc::SYS_getgroups, [0, 0, 0]),
    (libc::SYS_setfsuid, [-1, 0, 0]),
    (libc::SYS_setfsgid, [-1, 0, 0]),
    (libc::SYS_getresuid, [0, 0, 0]),
    (libc::SYS_getresgid, [0, 0, 0]),
    (libc::SYS_getcpu, [0, 0, 0]),
    (libc::SYS_clock_getres, [0, 0, 0]),
    (libc::SYS_gettimeofday, [0, 0, 0]),
    (libc::SYS_time, [0, 0, 0]),
    (libc::SYS_ioprio_get, [1, 0, 0]),
    (libc::SYS_getrandom, [0, 0, 0]),
    (libc::SYS_membarrier, [0, 0, 0]),
    (libc::SYS_prctl, [libc::PR_GET_DUMPABLE as libc::c_long, 0, 0]),
    (libc::SYS_sysfs, [3, 0, 0]),
    (libc::SYS_umask, [0o022, 0, 0]),
];

/// `n` threads, each opening and closing `path` `count` times; prints the
/// tgid and each thread's tid. Before them, one call of each of [`SWEEP`];
/// in each thread, one futex call (a wake with no one waiting) besides
/// whatever futex calls the threads' own locking happens to make.
fn threads(n: usize, count: usize, path: &str) -> Result<(), String> {
    for (nr, [a, b, c]) in SWEEP {
        // SAFETY: every entry is a query or gets null pointers (see SWEEP).
        unsafe { libc::syscall(nr, a, b, c) };
    }
    println!("tgid={}", std::process::id());
    let workers: Vec<_> = (0..n)
        .map(|_| {
            let path = path.to_string();
            std::thread::spawn(move || {
                println!("tid={}", tid());
                let word = std::sync::atomic::AtomicU32::new(0);
                // SAFETY: a wake on a word of this thread's stack, which
                // outlives the call; no one waits on it, so it returns 0.
                unsafe {
                    libc::syscall(
                        libc::SYS_futex,
                        word.as_ptr(),
                        libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
                        1,
                        0,
                        0,
                        0,
                    )
                };
                for _ in 0..count {
                    drop(std::fs::File::open(&path));
                }
            })
        })
        .collect();
    for w in workers {
        w.join().map_err(|_| "a worker thread panicked".to_string())?;
    }
    Ok(())
}

/// `count` calls of the nanosleep(2) system call itself, a millisecond
/// each. The C library's nanosleep() and `sleep` use clock_nanosleep(2):
/// this is how a workload makes the older call happen, a known number of
/// times.
fn nanosleep(count: usize) -> Result<(), String> {
    let pause = MILLISECOND;
    repeat("nanosleep", count, || {
        // SAFETY: `pause` is a valid timespec for the whole call and the
        // remainder pointer may be null.
        unsafe {
            libc::syscall(libc::SYS_nanosleep, &pause as *const libc::timespec, std::ptr::null_mut::<libc::timespec>())
        }
    })
}

/// `count` calls of clock_nanosleep(2) on CLOCK_MONOTONIC, a millisecond
/// each: a number of them that no one could guess, where `sleep` makes
/// exactly one.
fn clock_nanosleep(count: usize) -> Result<(), String> {
    let pause = MILLISECOND;
    repeat("clock_nanosleep", count, || {
        // SAFETY: as for nanosleep; flags 0 means a relative pause.
        unsafe {
            libc::syscall(
                libc::SYS_clock_nanosleep,
                libc::CLOCK_MONOTONIC,
                0,
                &pause as *const libc::timespec,
                std::ptr::null_mut::<libc::timespec>(),
            )
        }
    })
}

/// `count` calls of nfsservctl(2), a system call removed from Linux long
/// ago: its number stays, and the kernel answers -ENOSYS at its exit, the
/// value a tracer also sees in rax at every syscall entry. A tracer that
/// tells entry from exit by that value loses track here.
fn nosys(count: usize) -> Result<(), String> {
    for _ in 0..count {
        // SAFETY: nfsservctl takes no pointers that the kernel follows; it
        // returns at once.
        let r = unsafe { libc::syscall(libc::SYS_nfsservctl, 0, 0, 0) };
        let err = std::io::Error::last_os_error();
        if r != -1 || err.raw_os_error() != Some(libc::ENOSYS) {
            return Err(format!("nfsservctl returned {r} ({err}), not ENOSYS"));
        }
    }
    println!("nosys x {count}");
    Ok(())
}

/// Execs `path` with the string execve reads (and a kprobe on execve sees)
/// placed at the very end of a readable page, its NUL the page's last byte,
/// and nothing readable after it. A program that copies the name with a
/// fixed-size read faults here; one that copies up to the NUL does not.
fn exec_at_page_end(path: &str) -> Result<(), String> {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    let name = CString::new(path).map_err(|e| e.to_string())?;
    let bytes = name.as_bytes_with_nul();
    if bytes.len() > page {
        return Err(format!("{path} is longer than a page"));
    }
    // SAFETY: a fresh anonymous mapping of two pages; the second is made
    // inaccessible, the name is copied inside the first, and both stay
    // mapped until execv replaces the process (or fails and we return).
    unsafe {
        let base = libc::mmap(
            std::ptr::null_mut(),
            2 * page,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if base == libc::MAP_FAILED {
            return Err(format!("mmap: {}", std::io::Error::last_os_error()));
        }
        let base = base.cast::<u8>();
        if libc::mprotect(base.add(page).cast(), page, libc::PROT_NONE) != 0 {
            return Err(format!("mprotect: {}", std::io::Error::last_os_error()));
        }
        let at = base.add(page - bytes.len());
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), at, bytes.len());
        let argv = [at.cast::<libc::c_char>().cast_const(), std::ptr::null()];
        libc::execv(at.cast(), argv.as_ptr());
    }
    Err(format!("execv {path}: {}", std::io::Error::last_os_error()))
}

/// `count` calls of system call `nr` with every argument 0, whatever they
/// return: a workload that needs a number no program it runs would use.
fn raw(nr: libc::c_long, count: usize) -> Result<(), String> {
    for _ in 0..count {
        // SAFETY: the grader picks `nr` among calls that, with null and zero
        // arguments, touch no memory of this process (they fail with EFAULT
        // or EINVAL, or return a new file descriptor).
        unsafe { libc::syscall(nr, 0, 0, 0, 0, 0, 0) };
    }
    println!("syscall {nr} x {count}");
    Ok(())
}

/// System calls whose return values trip a careless tracer, made in this
/// very process (a tracer that does not follow children sees only these):
/// `count` calls that fail with ENOSYS, an lseek that returns `offset` (near
/// 4 GiB, a value whose low 32 bits look like an error when read as an
/// i32), then an exec of `argv`, which keeps the process.
fn odd_returns(count: usize, file: &str, offset: i64, argv: &[String]) -> Result<(), String> {
    nosys(count)?;
    let path = CString::new(file).map_err(|e| e.to_string())?;
    // SAFETY: `path` is NUL-terminated and outlives the calls; the file
    // descriptor is closed before the function returns.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC, 0o600);
        if fd < 0 {
            return Err(format!("open {file}: {}", std::io::Error::last_os_error()));
        }
        let at = libc::lseek(fd, offset, libc::SEEK_SET);
        let err = std::io::Error::last_os_error();
        libc::close(fd);
        libc::unlink(path.as_ptr());
        if at != offset {
            return Err(format!("lseek {file} to {offset} returned {at} ({err})"));
        }
    }
    let prog = CString::new(argv[0].as_bytes()).map_err(|e| e.to_string())?;
    let args: Vec<CString> =
        argv.iter().map(|a| CString::new(a.as_bytes())).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    let mut ptrs: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SAFETY: as in thread_exec; execv only returns on error.
    unsafe { libc::execv(prog.as_ptr(), ptrs.as_ptr()) };
    Err(format!("execv {}: {}", argv[0], std::io::Error::last_os_error()))
}

const MILLISECOND: libc::timespec = libc::timespec { tv_sec: 0, tv_nsec: 1_000_000 };

/// Makes system call `name` `count` times through `call`, then says so.
fn repeat(name: &str, count: usize, call: impl Fn() -> libc::c_long) -> Result<(), String> {
    for _ in 0..count {
        if call() != 0 {
            return Err(format!("{name}: {}", std::io::Error::last_os_error()));
        }
    }
    println!("{name} x {count}");
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("thread-exec") if args.len() >= 2 => thread_exec(&args[1..]),
        Some("threads") if args.len() == 4 => match (args[1].parse(), args[2].parse()) {
            (Ok(n), Ok(count)) => threads(n, count, &args[3]),
            _ => Err("threads N COUNT PATH: N and COUNT are numbers".into()),
        },
        Some("nanosleep") if args.len() == 2 => match args[1].parse() {
            Ok(count) => nanosleep(count),
            Err(_) => Err("nanosleep COUNT: COUNT is a number".into()),
        },
        Some("odd-returns") if args.len() >= 5 => match (args[1].parse(), args[3].parse()) {
            (Ok(count), Ok(offset)) => odd_returns(count, &args[2], offset, &args[4..]),
            _ => Err("odd-returns COUNT FILE OFFSET PROG [ARG...]: COUNT and OFFSET are numbers".into()),
        },
        Some("exec-at-page-end") if args.len() == 2 => exec_at_page_end(&args[1]),
        Some("raw") if args.len() == 3 => match (args[1].parse(), args[2].parse()) {
            (Ok(nr), Ok(count)) => raw(nr, count),
            _ => Err("raw NR COUNT: NR and COUNT are numbers".into()),
        },
        Some("nosys") if args.len() == 2 => match args[1].parse() {
            Ok(count) => nosys(count),
            Err(_) => Err("nosys COUNT: COUNT is a number".into()),
        },
        Some("clock_nanosleep") if args.len() == 2 => match args[1].parse() {
            Ok(count) => clock_nanosleep(count),
            Err(_) => Err("clock_nanosleep COUNT: COUNT is a number".into()),
        },
        Some("xdp") => workbook_agent::xdp::run(&args[1..]),
        _ => Err("usage: wb-workload thread-exec PATH [ARG...] | threads N COUNT PATH | nanosleep COUNT | clock_nanosleep COUNT | exec-at-page-end PATH | raw NR COUNT | nosys COUNT | odd-returns COUNT FILE OFFSET PROG [ARG...] | xdp JOB ...".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wb-workload: {e}");
            ExitCode::from(2)
        }
    }
}

//! `core-workload`: the grader's workload for lab 09 (given).
//!
//! It starts processes that exec, and records, without asking the
//! student's program, what an exec event must show: the new process's ID,
//! the program, the parent's process ID (tgid) and the ID of the thread
//! that forked it, the parent's name, and the parent's state at the moment
//! of the exec, read from /proc by the child just before it execs.
//!
//! ```text
//! core-workload run JOB...                 JOB is KIND:PATH, one after the other
//!     wait:PATH          the main thread forks; the child execs PATH once the parent sleeps in waitpid (S)
//!     thread:PATH        the same from a second thread: the parent's tid is not its tgid
//!     stop:PATH          the child stops its parent (SIGSTOP), execs PATH once it is stopped (T),
//!                        and PATH continues it
//!     exec-thread:PATH   the child execs PATH from a second thread of its own
//! core-workload child [cont]               what PATH runs (a link to this program): exits,
//!                                          after a SIGCONT to its parent with `cont`
//! core-workload thread-exec TID FD PATH    the exec-thread child: execs PATH from a new thread
//!                                          once thread TID of its parent sleeps
//! ```
//!
//! For each job it prints one line:
//! `exec pid=C program=NAME parent_tgid=P parent_tid=T parent_comm=X parent_state=S`.

use std::ffi::{CStr, CString};
use std::process::ExitCode;

/// How long a child waits for its parent to reach a state: 5000 looks, a
/// millisecond apart.
const LOOKS: usize = 5000;

fn tid() -> libc::pid_t {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as libc::pid_t }
}

/// Polls the state letter of /proc/PID/task/TID/stat until it is one of
/// `wanted`, and returns it (b'?' when it never was). Only system calls,
/// on the stack: it runs in a child forked from a process that may have
/// other threads, where allocating could deadlock.
///
/// # Safety
/// Only async-signal-safe calls; `path` is NUL-terminated.
unsafe fn await_state(path: &CStr, wanted: &[u8]) -> u8 {
    let mut buf = [0u8; 1024];
    for _ in 0..LOOKS {
        // SAFETY: path is a C string; buf is ours and as long as we say.
        let n = unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            let n = if fd >= 0 { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) } else { -1 };
            libc::close(fd);
            n
        };
        if n > 0 {
            // `pid (comm) S ...`: the comm may hold spaces and parentheses,
            // the state is two bytes after the last ')'.
            let text = &buf[..n as usize];
            let state = text.iter().rposition(|&b| b == b')').and_then(|i| text.get(i + 2));
            if let Some(&letter) = state.filter(|l| wanted.contains(l)) {
                return letter;
            }
        }
        let pause = libc::timespec { tv_sec: 0, tv_nsec: 1_000_000 };
        // SAFETY: a valid timespec; no remainder wanted.
        unsafe { libc::nanosleep(&pause, std::ptr::null_mut()) };
    }
    b'?'
}

/// A NUL-terminated argument vector that outlives the exec.
struct Argv {
    strings: Vec<CString>,
    pointers: Vec<*const libc::c_char>,
}

impl Argv {
    fn new(args: &[String]) -> Result<Self, String> {
        let strings: Vec<CString> =
            args.iter().map(|a| CString::new(a.as_bytes())).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
        let mut pointers: Vec<*const libc::c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        pointers.push(std::ptr::null());
        Ok(Argv { strings, pointers })
    }

    /// Execs the vector; returns only if that failed.
    fn exec(&self) {
        // SAFETY: every string is NUL-terminated and the array ends with a
        // null pointer; both live as long as self.
        unsafe { libc::execv(self.strings[0].as_ptr(), self.pointers.as_ptr()) };
    }
}

/// What the parent of one exec knows about it.
struct Record {
    pid: libc::pid_t,
    program: String,
    parent_tid: libc::pid_t,
    /// The comm of the thread that forked (read by that thread: a second
    /// thread is gone by the time the record is printed).
    parent_comm: String,
    parent_state: char,
}

/// Forks a child from this thread. The child stops this process first when
/// `stop`, waits (unless `wait` is empty) until this thread's state is one
/// of `wait`, writes that letter to a pipe and execs `argv`; this thread
/// waits for it to end. `argv` may name the pipe's write end as `{fd}`.
fn fork_exec(argv: &[String], stop: bool, wait: &'static [u8]) -> Result<Record, String> {
    let parent_tid = tid();
    let stat = CString::new(format!("/proc/{}/task/{parent_tid}/stat", std::process::id())).expect("no NUL");
    let mut pipe = [0; 2];
    // SAFETY: pipe fills the two descriptors.
    if unsafe { libc::pipe(pipe.as_mut_ptr()) } != 0 {
        return Err(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    let [read_end, write_end] = pipe;
    let args: Vec<String> = argv.iter().map(|a| a.replace("{fd}", &write_end.to_string())).collect();
    let exec = Argv::new(&args)?;
    // SAFETY: the child makes only async-signal-safe calls (await_state,
    // kill, write, execv, _exit) on memory prepared before the fork.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if child == 0 {
        // SAFETY: see above.
        unsafe {
            libc::close(read_end);
            if stop {
                libc::kill(libc::getppid(), libc::SIGSTOP);
            }
            if !wait.is_empty() {
                let letter = await_state(&stat, wait);
                libc::write(write_end, (&letter as *const u8).cast(), 1);
                libc::close(write_end);
            }
            exec.exec();
            libc::_exit(127);
        }
    }
    // SAFETY: our copy of the write end; the child has its own.
    unsafe { libc::close(write_end) };
    let mut status = 0;
    loop {
        // SAFETY: status is ours.
        let r = unsafe { libc::waitpid(child, &mut status, 0) };
        if r == child {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(format!("waitpid {child}: {err}"));
        }
    }
    let mut letter = [b'?'];
    // SAFETY: one byte into ours; the read end closes after.
    unsafe {
        libc::read(read_end, letter.as_mut_ptr().cast(), 1);
        libc::close(read_end);
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        return Err(format!("{} ended with status {status:#x}", args.join(" ")));
    }
    let parent_comm = std::fs::read_to_string("/proc/thread-self/comm")
        .map_err(|e| format!("reading this thread's comm: {e}"))?
        .trim_end()
        .to_string();
    let program = argv[0].rsplit('/').next().unwrap_or(&argv[0]).to_string();
    Ok(Record { pid: child, program, parent_tid, parent_comm, parent_state: char::from(letter[0]) })
}

/// Runs one `KIND:PATH` job and prints its record.
fn job(spec: &str, me: &str) -> Result<(), String> {
    let (kind, path) = spec.split_once(':').ok_or_else(|| format!("{spec}: a job is KIND:PATH"))?;
    let child =
        |extra: &[&str]| -> Vec<String> { [path, "child"].iter().chain(extra).map(|s| s.to_string()).collect() };
    let mut record = match kind {
        "wait" => fork_exec(&child(&[]), false, b"S")?,
        "thread" => {
            let argv = child(&[]);
            std::thread::spawn(move || fork_exec(&argv, false, b"S"))
                .join()
                .map_err(|_| "the forking thread panicked".to_string())??
        }
        "stop" => fork_exec(&child(&["cont"]), true, b"T")?,
        "exec-thread" => {
            let argv = [me, "thread-exec", &tid().to_string(), "{fd}", path].map(String::from);
            fork_exec(&argv, false, b"")?
        }
        other => return Err(format!("{other}: not a kind of job (wait, thread, stop, exec-thread)")),
    };
    if kind == "exec-thread" {
        record.program = path.rsplit('/').next().unwrap_or(path).to_string();
    }
    println!(
        "exec pid={} program={} parent_tgid={} parent_tid={} parent_comm={} parent_state={}",
        record.pid,
        record.program,
        std::process::id(),
        record.parent_tid,
        record.parent_comm,
        record.parent_state
    );
    Ok(())
}

/// The exec-thread child: a second thread waits until thread `parent_tid`
/// of the parent sleeps, writes that letter to `fd`, and execs `path`. In
/// the new program the process ID is unchanged, but the thread that called
/// exec had another ID until then.
fn thread_exec(parent_tid: &str, fd: &str, path: &str) -> Result<(), String> {
    let fd: libc::c_int = fd.parse().map_err(|_| format!("{fd}: not a descriptor"))?;
    // SAFETY: getppid cannot fail.
    let stat = CString::new(format!("/proc/{}/task/{parent_tid}/stat", unsafe { libc::getppid() })).expect("no NUL");
    let argv = [path.to_string(), "child".to_string()];
    let handle = std::thread::spawn(move || {
        let exec = match Argv::new(&argv) {
            Ok(exec) => exec,
            Err(e) => return e,
        };
        println!("thread-exec tgid={} tid={}", std::process::id(), tid());
        // SAFETY: a C string; one byte of ours to the pipe.
        unsafe {
            let letter = await_state(&stat, b"S");
            libc::write(fd, (&letter as *const u8).cast(), 1);
            libc::close(fd);
        }
        exec.exec();
        format!("execv {}: {}", argv[0], std::io::Error::last_os_error())
    });
    Err(handle.join().unwrap_or_else(|_| "the exec thread panicked".into()))
}

/// What each job's PATH runs.
fn child(cont: bool) -> Result<(), String> {
    if cont {
        // SAFETY: a signal to our parent, which stopped so that we could
        // see it stopped; nothing else continues it.
        if unsafe { libc::kill(libc::getppid(), libc::SIGCONT) } != 0 {
            return Err(format!("SIGCONT: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let me = std::env::current_exe().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
    let result = match args.get(1).map(String::as_str) {
        Some("run") if args.len() > 2 => args[2..].iter().try_for_each(|spec| job(spec, &me)),
        Some("child") if args.len() == 2 => child(false),
        Some("child") if args.len() == 3 && args[2] == "cont" => child(true),
        Some("thread-exec") if args.len() == 5 => thread_exec(&args[2], &args[3], &args[4]),
        _ => Err("usage: core-workload run KIND:PATH... | child [cont] | thread-exec TID FD PATH".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("core-workload: {e}");
            ExitCode::from(2)
        }
    }
}

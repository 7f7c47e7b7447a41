//! `probe TRIES PATH...`: the grader's probe (given; not part of the
//! exercise). Opens each PATH TRIES times, each time from a new thread, so
//! that the thread's ID is never the process's, and prints one line per
//! open with what the kernel answered:
//!
//! ```text
//! open pid=PID tid=TID uid=UID gid=GID path=PATH errno=N
//! ```
//!
//! `errno=0` when the open succeeded. That record, kept by the grader's
//! code, is what the refusals the BPF program reports are held against.

use std::thread;

use anyhow::{Context, bail};
use nix::unistd::{getgid, getpid, gettid, getuid};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((tries, paths)) = args.split_first() else {
        bail!("usage: probe TRIES PATH...");
    };
    let tries: u32 = tries.parse().context("TRIES must be a number")?;
    // ANCHOR: probe
    for path in paths {
        for _ in 0..tries {
            let owned = path.clone();
            let (tid, errno) = thread::spawn(move || {
                let errno = match std::fs::File::open(&owned) {
                    Ok(_) => 0,
                    Err(e) => e.raw_os_error().unwrap_or(-1),
                };
                (gettid().as_raw(), errno)
            })
            .join()
            .map_err(|_| anyhow::anyhow!("a probe thread panicked"))?;
            println!("open pid={} tid={tid} uid={} gid={} path={path} errno={errno}", getpid(), getuid(), getgid());
        }
    }
    // ANCHOR_END: probe
    Ok(())
}

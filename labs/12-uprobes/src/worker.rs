//! `worker SEED THREADS CALLS`: the program the lab traces (given; not part
//! of the exercise). THREADS threads share CALLS calls of `process_item`
//! between them, all at once, with arguments drawn from SEED. Each thread
//! prints its own record of every call it makes, one line per call: thread
//! ID, the two arguments, the return value, and two times in microseconds:
//! the function's body, timed from inside, and the whole call, timed by the
//! caller. A uprobe fires before the body's first line and a uretprobe after
//! its last, both inside the caller's window: the latency they measure lies
//! between the two. That record is what the grader holds the tracer's
//! events against.

use std::cell::Cell;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

// ANCHOR: function
/// What one unit of `size` keeps the shelf busy.
const UNIT: Duration = Duration::from_micros(100);

/// The one shelf every worker thread must hold to process an item: a
/// thread that finds it taken waits, so how long a call takes depends on
/// what the other threads are doing, not only on its own arguments.
static SHELF: Mutex<u64> = Mutex::new(0);

/// Processes an item of `size` units under `key`, and returns the item's
/// 64-bit digest: any i64, negative about half the time.
///
/// `no_mangle` keeps the symbol's name `process_item` in the binary (Rust
/// would otherwise mangle it), `extern "C"` passes the arguments as C does
/// (size in edi, key in rsi, the result in rax), and `inline(never)` keeps
/// a real function there, with a first instruction for the uprobe and a
/// return for the uretprobe.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn process_item(size: u32, key: i64) -> i64 {
    let began = Instant::now();
    let mut shelf = SHELF.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    thread::sleep(UNIT * size);
    let digest = digest(size, key);
    *shelf = shelf.wrapping_add(digest as u64);
    drop(shelf);
    BODY.set(began.elapsed());
    digest
}

thread_local! {
    /// How long the body of this thread's last call took.
    static BODY: Cell<Duration> = const { Cell::new(Duration::ZERO) };
}
// ANCHOR_END: function

/// splitmix64's finaliser: every bit of the result depends on every bit of
/// both inputs.
fn digest(size: u32, key: i64) -> i64 {
    let mut z = (key as u64) ^ u64::from(size).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) as i64
}

/// A small, seeded pseudo-random sequence (splitmix64): the same seed, the
/// same workload.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        digest(0, self.0 as i64) as u64
    }
}

/// The calls of each thread: `(size, key)`, drawn before any thread starts,
/// so that scheduling cannot change the workload.
fn plan(seed: u64, threads: usize, calls: usize) -> Vec<Vec<(u32, i64)>> {
    let mut rng = Rng(seed);
    let mut plan = vec![Vec::new(); threads];
    for i in 0..calls {
        // 5 to 40 units: 0.5 ms to 4 ms on the shelf.
        let size = 5 + (rng.next() % 36) as u32;
        plan[i % threads].push((size, rng.next() as i64));
    }
    plan
}

fn arg(args: &[String], at: usize, name: &str) -> anyhow::Result<u64> {
    args.get(at)
        .with_context(|| format!("usage: worker SEED THREADS CALLS (no {name})"))?
        .parse()
        .with_context(|| format!("{name} must be a number"))
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seed = arg(&args, 0, "SEED")?;
    let threads = arg(&args, 1, "THREADS")? as usize;
    let calls = arg(&args, 2, "CALLS")? as usize;
    if threads < 2 || calls < threads {
        bail!("worker: give at least 2 threads and a call for each");
    }
    let plan = plan(seed, threads, calls);
    println!("{:>7} {:>5} {:>20} {:>20} {:>12} {:>12}", "TID", "SIZE", "KEY", "RET", "BODY_US", "CALL_US");
    // All threads start together, so that their calls overlap.
    let start = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = plan
        .into_iter()
        .map(|calls| {
            let start = start.clone();
            thread::spawn(move || {
                let tid = nix::unistd::gettid();
                start.wait();
                // ANCHOR: record
                for (size, key) in calls {
                    let began = Instant::now();
                    let ret = process_item(size, key);
                    let call = began.elapsed();
                    let us = |d: Duration| d.as_nanos() as f64 / 1000.0;
                    // One println! is one line: stdout is locked per call.
                    println!("{tid:>7} {size:>5} {key:>20} {ret:>20} {:>12.3} {:>12.3}", us(BODY.get()), us(call));
                }
                // ANCHOR_END: record
            })
        })
        .collect();
    for h in handles {
        h.join().map_err(|_| anyhow::anyhow!("a worker thread panicked"))?;
    }
    Ok(())
}

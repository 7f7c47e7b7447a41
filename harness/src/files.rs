//! Files that several labctl processes (or threads) share: caches written
//! whole or not at all, and locks that say what they wait for.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};

use crate::error::{Error, Result};

/// Writes `path` through a temporary file in the same directory, renamed
/// over it at the end: a reader sees the old content or the new, never a
/// part. The temporary name is unique across processes and threads.
pub fn write_atomic_with(path: &Path, write: impl FnOnce(&mut BufWriter<File>) -> Result<()>) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(Error::io(format!("creating {}", dir.display())))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(Error::io(format!("creating a temporary file beside {}", path.display())))?;
    let (file, tmp_path) = tmp.into_parts();
    let mut w = BufWriter::new(file);
    write(&mut w)?;
    w.flush().map_err(Error::io(format!("writing {}", tmp_path.display())))?;
    tmp_path.persist(path).map_err(|e| Error::Io { context: format!("writing {}", path.display()), source: e.error })
}

/// [`write_atomic_with`] for bytes at hand.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| w.write_all(data).map_err(Error::io(format!("writing {}", path.display()))))
}

/// An exclusive lock on `path` (created if needed), held until dropped.
pub type Lock = Flock<File>;

fn open_lock_file(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(Error::io(format!("creating {}", dir.display())))?;
    }
    fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(Error::io(format!("opening {}", path.display())))
}

/// Takes the lock on `path`. When another process holds it, says so once
/// (`waiting_for` names what the holder is doing, unless `quiet`) and
/// waits, checking `interrupted` so that Ctrl-C ends the wait.
pub fn lock(path: &Path, waiting_for: &str, quiet: bool, interrupted: &AtomicBool) -> Result<Lock> {
    let mut file = open_lock_file(path)?;
    let mut said = false;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
            Err((f, nix::errno::Errno::EWOULDBLOCK)) | Err((f, nix::errno::Errno::EINTR)) => file = f,
            Err((_, e)) => {
                return Err(Error::Io { context: format!("locking {}", path.display()), source: e.into() });
            }
        }
        if interrupted.load(Ordering::SeqCst) {
            return Err(Error::Interrupted);
        }
        if !said && !quiet {
            eprintln!("Waiting for {waiting_for} (lock {}); Ctrl-C to stop.", path.display());
        }
        said = true;
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_from_many_threads_leave_one_whole_file_and_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.json");
        std::thread::scope(|s| {
            for i in 0..8 {
                let path = &path;
                s.spawn(move || {
                    for _ in 0..20 {
                        let body = format!("{{\"writer\": {i}, \"pad\": \"{}\"}}", "x".repeat(64 * 1024));
                        write_atomic(path, body.as_bytes()).unwrap();
                        let seen = fs::read_to_string(path).unwrap();
                        serde_json::from_str::<serde_json::Value>(&seen).expect("never a partial file");
                    }
                });
            }
        });
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("cache.json")]);
    }

    #[test]
    fn a_held_lock_is_waited_for_and_an_interrupt_ends_the_wait() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let never = AtomicBool::new(false);
        let held = lock(&path, "a test", true, &never).unwrap();
        let interrupted = AtomicBool::new(true);
        assert!(matches!(lock(&path, "a test", true, &interrupted), Err(Error::Interrupted)));
        drop(held);
        lock(&path, "a test", true, &never).unwrap();
    }
}

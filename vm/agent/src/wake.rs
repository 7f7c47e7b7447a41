//! A snapshot's agent: gets ready, waits for the host's word, and takes
//! the run's files from the work disk.
//!
//! The host saves the machine while the agent waits here, and every run
//! restores that saved machine: everything after the wait happens once per
//! run, in a fresh copy. Each copy's clock and RNG are still the saved
//! ones, so the agent sets the one and reseeds the other before anything
//! of the run starts.

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use workbook_agent::{WaitForWork, Wake, work_disk};

use crate::setup;

/// How long a saved machine waits for its host before it powers off: in
/// guest time, which stands still while the machine is saved. The host that
/// saves it quits it at once; this only ends a machine whose host is gone.
const WAIT_LIMIT: Duration = Duration::from_secs(600);
/// The longest line the host sends; anything longer is noise.
const MAX_LINE: usize = 4096;
/// Reads of the work disk: large, and a multiple of any block size.
const CHUNK: usize = 1 << 20;
/// `O_DIRECT` wants buffers, offsets and lengths aligned to the block size.
const ALIGN: usize = 4096;

/// `RNDADDENTROPY` and `RNDRESEEDCRNG` from `<linux/random.h>`, which the
/// libc crate does not carry.
const RNDADDENTROPY: libc::c_ulong = 0x4008_5203;
const RNDRESEEDCRNG: libc::c_ulong = 0x5207;

/// The wait instructions, when this boot is a snapshot's.
pub fn instructions(path: &str) -> Option<Result<WaitForWork, String>> {
    let text = fs::read_to_string(path).ok()?;
    Some(serde_json::from_str(&text).map_err(|e| format!("bad {path}: {e}")))
}

/// What must be in place before the machine is saved: the disk's driver,
/// and free memory that is all zeros.
pub fn prepare(wait: &WaitForWork) -> Result<(), String> {
    for module in &wait.modules {
        setup::load_module(module).map_err(|e| format!("loading module {module}: {e}"))?;
    }
    zero_free_memory();
    // The device node appears once the driver has probed the disk; devtmpfs
    // creates it, but probing may finish a moment after the module loads.
    for _ in 0..200 {
        if Path::new(&wait.disk).exists() {
            return Ok(());
        }
        let _ = poll(&mut [], PollTimeout::from(10u16));
    }
    Err(format!("{} did not appear after loading {:?}", wait.disk, wait.modules))
}

/// Memory the zeroing leaves alone, so that the kernel is never short.
const ZEROING_MARGIN: u64 = 16 << 20;

/// Takes most free pages and gives them back: the kernel clears each page
/// it hands to a process, so they return to the free list as zeros. The
/// boot left them dirty (the decompressed kernel, the unpacked initramfs),
/// and QEMU saves a zero page as a flag but a dirty one whole: this makes
/// the saved state, and so every restore, several times smaller.
fn zero_free_memory() {
    let free_kb = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().find_map(|l| l.strip_prefix("MemFree:")?.trim().strip_suffix("kB")?.trim().parse().ok())
        })
        .unwrap_or(0u64);
    let Some(len) = (free_kb * 1024).checked_sub(ZEROING_MARGIN).filter(|&n| n > 0) else { return };
    // SAFETY: a fresh private anonymous mapping, unmapped before returning
    // and never touched through a reference.
    unsafe {
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE | libc::MAP_NORESERVE;
        let addr = libc::mmap(std::ptr::null_mut(), len as usize, libc::PROT_READ | libc::PROT_WRITE, flags, -1, 0);
        if addr != libc::MAP_FAILED {
            libc::munmap(addr, len as usize);
        }
    }
}

/// This boot's id, which a restored copy keeps: the host's proof that the
/// machine it restored is the one it saved.
pub fn boot_id() -> String {
    fs::read_to_string("/proc/sys/kernel/random/boot_id").map(|s| s.trim().to_string()).unwrap_or_default()
}

/// Waits for the host's [`Wake`] line on `port`, then sets the clock, takes
/// the run's files from the disk and reseeds the RNG.
pub fn take_work(port: &File, wait: &WaitForWork) -> Result<(), String> {
    let wake = await_wake(port)?;
    set_clock(wake.unix_ns)?;
    let (header, archive) = read_disk(Path::new(&wait.disk))?;
    reseed(&header.entropy)?;
    unpack(&archive, Path::new("/"))
}

/// Reads lines from the port until one is a wake line. Anything else (a
/// line whose first bytes were lost in the restore) is skipped: the host
/// repeats its line until the agent answers.
fn await_wake(port: &File) -> Result<Wake, String> {
    let mut reader = port.try_clone().map_err(|e| format!("reading the events port: {e}"))?;
    let mut line = Vec::new();
    let mut waited = Duration::ZERO;
    let step = Duration::from_millis(500);
    loop {
        let mut fds = [PollFd::new(port.as_fd(), PollFlags::POLLIN)];
        let ready = poll(&mut fds, PollTimeout::from(step.as_millis() as u16)).map_err(|e| format!("poll: {e}"))?;
        if ready == 0 {
            waited += step;
            if waited >= WAIT_LIMIT {
                return Err(format!("no word from the host within {} s", WAIT_LIMIT.as_secs()));
            }
            continue;
        }
        let mut buf = [0u8; 512];
        let n = match reader.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("reading the events port: {e}")),
        };
        for &byte in &buf[..n] {
            if byte != b'\n' {
                if line.len() < MAX_LINE {
                    line.push(byte);
                }
                continue;
            }
            let text = String::from_utf8_lossy(&line);
            if let Ok(wake) = serde_json::from_str::<Wake>(text.trim()) {
                return Ok(wake);
            }
            line.clear();
        }
    }
}

fn set_clock(unix_ns: u64) -> Result<(), String> {
    let now = libc::timespec { tv_sec: (unix_ns / 1_000_000_000) as _, tv_nsec: (unix_ns % 1_000_000_000) as _ };
    // SAFETY: a valid timespec, read only during the call.
    if unsafe { libc::clock_settime(libc::CLOCK_REALTIME, &now) } != 0 {
        return Err(format!("setting the clock: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Reads the header and the archive with `O_DIRECT`: the kernel read the
/// disk's first blocks (a partition scan) before the machine was saved, and
/// the page cache still holds what the placeholder disk had there.
fn read_disk(disk: &Path) -> Result<(work_disk::Header, Vec<u8>), String> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(disk)
        .map_err(|e| format!("opening {}: {e}", disk.display()))?;
    let read = |offset: u64, len: usize| -> Result<Vec<u8>, String> {
        let padded = len.div_ceil(ALIGN) * ALIGN;
        // An aligned window inside a larger buffer: no unsafe allocation.
        let mut raw = vec![0u8; padded + ALIGN];
        let start = raw.as_ptr().align_offset(ALIGN);
        let window = &mut raw[start..start + padded];
        let mut done = 0;
        while done < padded {
            let end = (done + CHUNK).min(padded);
            match file.read_at(&mut window[done..end], offset + done as u64) {
                Ok(0) => return Err(format!("{} ends after {} bytes", disk.display(), offset + done as u64)),
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("reading {}: {e}", disk.display())),
            }
        }
        Ok(window[..len].to_vec())
    };
    let header = work_disk::Header::decode(&read(0, work_disk::HEADER_LEN)?)?;
    let len = usize::try_from(header.archive_len).map_err(|_| "the work archive is too large".to_string())?;
    let archive = read(work_disk::HEADER_LEN as u64, len)?;
    Ok((header, archive))
}

/// Mixes the host's bytes into the input pool and rekeys the CRNG from it
/// at once: without the rekey the saved key would serve until the kernel's
/// next scheduled reseed.
fn reseed(entropy: &[u8]) -> Result<(), String> {
    let random = OpenOptions::new().write(true).open("/dev/urandom").map_err(|e| format!("/dev/urandom: {e}"))?;
    // struct rand_pool_info { int entropy_count; int buf_size; __u32 buf[]; }
    let mut info = Vec::with_capacity(8 + entropy.len());
    info.extend_from_slice(&((entropy.len() * 8) as i32).to_ne_bytes());
    info.extend_from_slice(&(entropy.len() as i32).to_ne_bytes());
    info.extend_from_slice(entropy);
    let fd = std::os::fd::AsRawFd::as_raw_fd(&random);
    // SAFETY: `info` is a complete rand_pool_info that outlives the call.
    if unsafe { libc::ioctl(fd, RNDADDENTROPY as _, info.as_ptr()) } != 0 {
        return Err(format!("RNDADDENTROPY: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: RNDRESEEDCRNG takes no argument.
    if unsafe { libc::ioctl(fd, RNDRESEEDCRNG as _) } != 0 {
        return Err(format!("RNDRESEEDCRNG: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Unpacks a `newc` cpio under `root`, as the kernel unpacks an initramfs:
/// directories, files with their modes, symbolic links.
pub fn unpack(archive: &[u8], root: &Path) -> Result<(), String> {
    let mut rest = archive;
    loop {
        let mut entry = cpio::newc::Reader::new(rest).map_err(|e| format!("reading the work archive: {e}"))?;
        if entry.entry().is_trailer() {
            return Ok(());
        }
        let name = entry.entry().name().trim_start_matches('/').to_string();
        let mode = entry.entry().mode();
        let path = root.join(&name);
        let mut data = Vec::with_capacity(entry.entry().file_size() as usize);
        entry.read_to_end(&mut data).map_err(|e| format!("reading {name} from the work archive: {e}"))?;
        let fail = |e: std::io::Error| format!("unpacking {name}: {e}");
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(fail)?;
        }
        match mode & 0o170000 {
            0o040000 => fs::create_dir_all(&path).map_err(fail)?,
            0o120000 => {
                let target = String::from_utf8_lossy(&data).into_owned();
                let _ = fs::remove_file(&path);
                std::os::unix::fs::symlink(target, &path).map_err(fail)?;
            }
            _ => {
                fs::write(&path, &data).map_err(fail)?;
                fs::set_permissions(&path, fs::Permissions::from_mode(mode & 0o7777)).map_err(fail)?;
            }
        }
        rest = entry.finish().map_err(|e| format!("reading the work archive: {e}"))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn newc(entries: &[(&str, u32, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, (name, mode, data)) in entries.iter().enumerate() {
            let mut w = cpio::newc::Builder::new(name).ino(i as u32 + 1).mode(*mode).write(out, data.len() as u32);
            std::io::Write::write_all(&mut w, data).unwrap();
            out = w.finish().unwrap();
        }
        cpio::newc::trailer(out).unwrap()
    }

    #[test]
    fn unpacking_makes_dirs_files_with_modes_and_links() {
        let dir = tempfile::tempdir().unwrap();
        let archive = newc(&[
            ("lab", 0o040755, b""),
            ("lab/bin", 0o040755, b""),
            ("lab/bin/hello", 0o100755, b"#!/bin/sh\n"),
            ("workbook/plan.json", 0o100644, b"{}"),
            ("lib/libx.so", 0o120777, b"libx.so.1"),
        ]);
        unpack(&archive, dir.path()).unwrap();
        let hello = dir.path().join("lab/bin/hello");
        assert_eq!(fs::read(&hello).unwrap(), b"#!/bin/sh\n");
        assert_eq!(fs::metadata(&hello).unwrap().permissions().mode() & 0o7777, 0o755);
        assert_eq!(fs::read(dir.path().join("workbook/plan.json")).unwrap(), b"{}");
        assert_eq!(fs::read_link(dir.path().join("lib/libx.so")).unwrap(), Path::new("libx.so.1"));
    }

    #[test]
    fn a_cut_archive_is_an_error_not_a_partial_success() {
        let dir = tempfile::tempdir().unwrap();
        let archive = newc(&[("a", 0o100644, b"0123456789")]);
        assert!(unpack(&archive[..archive.len() / 2], dir.path()).is_err());
    }
}

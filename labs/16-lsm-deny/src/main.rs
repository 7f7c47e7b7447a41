//! `vault PATH`: loads the BPF LSM program, tells it which file to guard
//! (PATH, by its inode and device), attaches it to the LSM hook file_open,
//! and prints every refusal the program reports through the ring buffer,
//! until interrupted.

mod event;

use std::mem::MaybeUninit;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use libbpf_rs::RingBufferBuilder;
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use nix::sys::stat::{major, minor};

use event::Event;

mod vault {
    include!(concat!(env!("OUT_DIR"), "/vault.skel.rs"));
}

/// The longest wait for an event before checking for Ctrl-C again.
const POLL: Duration = Duration::from_millis(100);

// ANCHOR: main
fn main() -> anyhow::Result<()> {
    let Some(path) = std::env::args_os().nth(1).map(PathBuf::from) else {
        bail!("usage: vault PATH");
    };
    // The program knows the file by its inode on its filesystem. stat(2)
    // gives the device as user space encodes it; the kernel's struct
    // super_block holds MKDEV(major, minor), with the major number above
    // bit 20, and that is what the program compares with.
    let meta = std::fs::metadata(&path).with_context(|| format!("cannot stat {}", path.display()))?;
    let (dev_major, dev_minor) = (major(meta.dev()), minor(meta.dev()));
    let kernel_dev = u32::try_from((dev_major << 20) | dev_minor).context("a device number beyond 32 bits")?;

    let stop = Arc::new(AtomicBool::new(false));
    let on_signal = stop.clone();
    ctrlc::set_handler(move || on_signal.store(true, Ordering::Relaxed))
        .context("failed to install the Ctrl-C handler")?;

    let mut storage = MaybeUninit::uninit();
    let mut open = vault::VaultSkelBuilder::default().open(&mut storage).context("failed to open the BPF object")?;
    let rodata = open.maps.rodata_data.as_deref_mut().context("the BPF object has no .rodata")?;
    rodata.protected_ino = meta.ino();
    rodata.protected_dev = kernel_dev;
    let skel = open.load().context("failed to load the BPF program (is this running as root?)")?;
    // An LSM program is attached to its hook by a BPF link: from now on the
    // kernel asks it at every file_open, until the link is closed.
    let _link = skel
        .progs
        .deny_open
        .attach_lsm()
        .context("failed to attach to the LSM hook file_open (is `bpf` in the kernel's lsm= list?)")?;

    let mut builder = RingBufferBuilder::new();
    builder
        .add(&skel.maps.events, |bytes: &[u8]| {
            match Event::parse(bytes) {
                Ok(event) => println!("{event}"),
                Err(e) => eprintln!("vault: a bad event: {e:#}"),
            }
            0
        })
        .context("failed to add the ring buffer")?;
    let ring = builder.build().context("failed to set up the ring buffer")?;

    eprintln!(
        "Attached to file_open: guarding {} (inode {} on device {dev_major}:{dev_minor}). Press Ctrl-C to stop.",
        path.display(),
        meta.ino()
    );
    while !stop.load(Ordering::Relaxed) {
        match ring.poll(POLL) {
            Err(e) if e.kind() != libbpf_rs::ErrorKind::Interrupted => {
                return Err(e).context("polling the ring buffer");
            }
            _ => {}
        }
    }
    ring.consume().context("draining the ring buffer")?;
    Ok(())
}
// ANCHOR_END: main

//! What PID 1 sets up before running anything: filesystems, the events
//! port, modules; and the final power-off.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::os::fd::AsFd;
use std::sync::Mutex;

use nix::mount::{MsFlags, mount};
use nix::sys::termios;

static WARNINGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn warn(message: String) {
    WARNINGS.lock().unwrap_or_else(|p| p.into_inner()).push(message);
}

/// Warnings gathered before the events channel was open.
pub fn take_warnings() -> Vec<String> {
    std::mem::take(&mut *WARNINGS.lock().unwrap_or_else(|p| p.into_inner()))
}

/// The filesystems labs rely on. A failed mount is a warning, not the end:
/// a lab that does not need it can still run.
pub fn mount_filesystems() {
    const MOUNTS: &[(&str, &str, &str)] = &[
        ("proc", "/proc", "proc"),
        ("sysfs", "/sys", "sysfs"),
        ("devtmpfs", "/dev", "devtmpfs"),
        ("tmpfs", "/tmp", "tmpfs"),
        ("tmpfs", "/run", "tmpfs"),
        ("tracefs", "/sys/kernel/tracing", "tracefs"),
        ("debugfs", "/sys/kernel/debug", "debugfs"),
        ("bpf", "/sys/fs/bpf", "bpf"),
        ("devpts", "/dev/pts", "devpts"),
    ];
    for (source, target, fstype) in MOUNTS {
        let _ = std::fs::create_dir_all(target);
        if let Err(e) = mount(Some(*source), *target, Some(*fstype), MsFlags::empty(), None::<&str>) {
            warn(format!("mounting {fstype} on {target}: {e}"));
        }
    }
}

/// Opens the events port in raw mode, so that `\n` is not turned into `\r\n`
/// and nothing is echoed back.
pub fn open_events(path: &str) -> std::io::Result<File> {
    let file = OpenOptions::new().read(true).write(true).open(path)?;
    let mut attrs = termios::tcgetattr(file.as_fd())?;
    termios::cfmakeraw(&mut attrs);
    termios::tcsetattr(file.as_fd(), termios::SetArg::TCSANOW, &attrs)?;
    Ok(file)
}

/// Writes a line to the kernel console (the first serial port).
pub fn console_line(line: &str) {
    use std::io::Write;
    if let Ok(mut console) = OpenOptions::new().write(true).open("/dev/console") {
        let _ = writeln!(console, "{line}");
    }
}

pub fn kernel_release() -> String {
    nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_else(|_| "unknown".into())
}

pub fn uptime_ms() -> u64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|f| f.parse::<f64>().ok()))
        .map(|secs| (secs * 1000.0) as u64)
        .unwrap_or(0)
}

/// `MODULE_INIT_COMPRESSED_FILE` (Linux 5.17), which nix does not name: the
/// kernel decompresses the module itself.
const MODULE_INIT_COMPRESSED_FILE: libc::c_uint = 4;

pub fn load_module(path: &str) -> Result<(), String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let params = CString::default();
    // Newer Debian kernels ship their modules compressed.
    let flags = if [".ko.xz", ".ko.zst", ".ko.gz"].iter().any(|ext| path.ends_with(ext)) {
        nix::kmod::ModuleInitFlags::from_bits_retain(MODULE_INIT_COMPRESSED_FILE)
    } else {
        nix::kmod::ModuleInitFlags::empty()
    };
    match nix::kmod::finit_module(file, &params, flags) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

pub fn power_off() -> ! {
    nix::unistd::sync();
    let _ = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_POWER_OFF);
    // Only reached if the reboot call failed; PID 1 must not return.
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

//! QEMU's command line, built by small pure functions so that every
//! argument is tested and explained in one place.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// How the guest's CPU is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// Where the guest's console goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Console {
    /// To labctl through QEMU's stdout, to be logged and watched.
    Captured,
    /// To the user's terminal, for `labctl shell`.
    Interactive,
}

/// Everything needed to start one VM.
#[derive(Debug, Clone)]
pub struct VmSpec {
    pub qemu: PathBuf,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub accel: Accel,
    pub memory_mb: u32,
    pub cpus: u32,
    pub console: Console,
    /// A Unix socket labctl listens on; QEMU connects the guest's ttyS1 to it.
    pub events_socket: PathBuf,
    /// Kernel parameters a lab adds to the command line (its
    /// `kernel_cmdline`, e.g. `lsm=...,bpf`).
    pub cmdline_extra: Vec<String>,
    /// A raw image on a read-only virtio-blk disk: a snapshot's work disk.
    /// The device is part of the saved machine, so a restore must have it
    /// too, with a file of the same size.
    pub work_disk: Option<PathBuf>,
    /// Start from this saved machine instead of booting the kernel.
    pub incoming: Option<PathBuf>,
    /// A socket labctl listens on for QEMU's control protocol (QMP), to
    /// save the machine; QEMU connects as the client.
    pub qmp_socket: Option<PathBuf>,
}

fn os(items: &[&str]) -> Vec<OsString> {
    items.iter().map(OsString::from).collect()
}

/// A bare machine: no default devices, no display, no network, and an exit
/// instead of a reboot so that a guest panic ends the run at once.
pub fn machine_args() -> Vec<OsString> {
    os(&["-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"])
}

pub fn accel_args(accel: Accel) -> Vec<OsString> {
    match accel {
        // The host CPU model: TCG cannot offer it, KVM runs it natively.
        Accel::Kvm => os(&["-accel", "kvm", "-cpu", "host"]),
        // QEMU's default CPU model is the cheapest to emulate.
        Accel::Tcg => os(&["-accel", "tcg"]),
    }
}

pub fn resource_args(memory_mb: u32, cpus: u32) -> Vec<OsString> {
    vec!["-m".into(), memory_mb.to_string().into(), "-smp".into(), cpus.to_string().into()]
}

/// The kernel command line.
pub fn kernel_cmdline(console: Console) -> String {
    let mut items = vec![
        // The first UART carries the kernel log and, for `shell`, the shell.
        "console=ttyS0",
        // Reboot immediately on a panic; with -no-reboot QEMU then exits.
        "panic=-1",
        // Nothing to gain from Spectre mitigations in a throwaway VM, and
        // they slow down emulated CPUs.
        "mitigations=off",
        // The emulated TSC is stable; skip the boot-time calibration.
        "tsc=reliable",
        "no_timer_check",
        // The guest has no entropy source worth waiting for.
        "random.trust_cpu=on",
        // Crypto self-tests and the audit subsystem cost boot time under
        // TCG and nothing here uses their results.
        "cryptomgr.notests",
        "audit=0",
        // Only warnings and errors on the serial console: every byte of it
        // is an emulated UART write, and a panic still prints in full.
        "quiet",
    ];
    if console == Console::Interactive {
        // Keep the terminal for the shell: not even warnings.
        items.push("loglevel=3");
    }
    items.join(" ")
}

/// `cmdline` with a lab's parameters after labctl's own: the kernel takes
/// the last of a repeated parameter, so the lab's win.
pub fn cmdline_with(cmdline: String, extra: &[String]) -> String {
    std::iter::once(cmdline).chain(extra.iter().cloned()).collect::<Vec<_>>().join(" ")
}

pub fn kernel_args(kernel: &Path, initrd: &Path, cmdline: &str) -> Vec<OsString> {
    vec!["-kernel".into(), kernel.into(), "-initrd".into(), initrd.into(), "-append".into(), cmdline.into()]
}

/// ttyS0: the console, on QEMU's stdio. ttyS1: the agent's events, on a
/// socket labctl listens on (QEMU connects as the client).
pub fn serial_args(console: Console, events_socket: &Path) -> Vec<OsString> {
    let stdio = match console {
        Console::Captured => "stdio,id=console",
        // Ctrl-C goes to the guest's shell, not to QEMU.
        Console::Interactive => "stdio,id=console,signal=off",
    };
    let mut socket = OsString::from("socket,id=events,server=off,path=");
    socket.push(events_socket);
    vec![
        "-chardev".into(),
        stdio.into(),
        "-serial".into(),
        "chardev:console".into(),
        "-chardev".into(),
        socket,
        "-serial".into(),
        "chardev:events".into(),
    ]
}

/// A path inside a `-drive` or `-chardev` option list, where a comma
/// would start the next option unless doubled.
fn option_path(path: &Path) -> OsString {
    OsString::from(path.to_string_lossy().replace(',', ",,"))
}

/// `path` as one word of a `sh -c` command line.
pub fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.to_string_lossy().replace('\'', "'\\''"))
}

/// The work disk: read-only (the guest never writes to it, and each run's
/// file is thrown away), raw (the guest reads a header and an archive at
/// fixed offsets), on a virtio-blk device that the snapshot's guest probed
/// before it was saved.
pub fn work_disk_args(disk: &Path) -> Vec<OsString> {
    let mut drive = OsString::from("file=");
    drive.push(option_path(disk));
    drive.push(",if=none,id=work,format=raw,readonly=on");
    vec!["-drive".into(), drive, "-device".into(), "virtio-blk-pci,drive=work,id=workdisk".into()]
}

/// QMP on a socket labctl listens on, like the events port.
pub fn qmp_args(socket: &Path) -> Vec<OsString> {
    let mut chardev = OsString::from("socket,id=qmp,server=off,path=");
    chardev.push(option_path(socket));
    vec!["-chardev".into(), chardev, "-mon".into(), "chardev=qmp,mode=control".into()]
}

/// Where a save goes: QEMU 7.2 has no `file:` migration, so through `cat`.
pub fn migrate_uri(state: &Path) -> String {
    format!("exec:cat > {}", shell_quote(state))
}

/// Restore from `state` instead of booting.
pub fn incoming_args(state: &Path) -> Vec<OsString> {
    vec!["-incoming".into(), format!("exec:cat {}", shell_quote(state)).into()]
}

/// The whole argument list for `spec`.
pub fn qemu_args(spec: &VmSpec) -> Vec<OsString> {
    let mut args = machine_args();
    args.extend(accel_args(spec.accel));
    args.extend(resource_args(spec.memory_mb, spec.cpus));
    let cmdline = cmdline_with(kernel_cmdline(spec.console), &spec.cmdline_extra);
    args.extend(kernel_args(&spec.kernel, &spec.initrd, &cmdline));
    args.extend(serial_args(spec.console, &spec.events_socket));
    if let Some(disk) = &spec.work_disk {
        args.extend(work_disk_args(disk));
    }
    if let Some(socket) = &spec.qmp_socket {
        args.extend(qmp_args(socket));
    }
    if let Some(state) = &spec.incoming {
        args.extend(incoming_args(state));
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(accel: Accel, console: Console) -> VmSpec {
        VmSpec {
            qemu: "qemu-system-x86_64".into(),
            kernel: "/k/vmlinuz".into(),
            initrd: "/k/initrd.cpio".into(),
            accel,
            memory_mb: 512,
            cpus: 1,
            console,
            events_socket: "/run/x/events.sock".into(),
            cmdline_extra: Vec::new(),
            work_disk: None,
            incoming: None,
            qmp_socket: None,
        }
    }

    fn strings(args: &[OsString]) -> Vec<String> {
        args.iter().map(|a| a.to_string_lossy().into_owned()).collect()
    }

    fn value_after<'a>(args: &'a [String], flag: &str) -> &'a str {
        let i = args.iter().position(|a| a == flag).unwrap_or_else(|| panic!("no {flag} in {args:?}"));
        &args[i + 1]
    }

    #[test]
    fn tcg_never_asks_for_the_host_cpu() {
        let args = strings(&qemu_args(&spec(Accel::Tcg, Console::Captured)));
        assert_eq!(value_after(&args, "-accel"), "tcg");
        assert!(!args.contains(&"host".to_string()));
        let kvm = strings(&accel_args(Accel::Kvm));
        assert_eq!(kvm, ["-accel", "kvm", "-cpu", "host"]);
    }

    #[test]
    fn a_panic_ends_the_vm_instead_of_rebooting_it() {
        let args = strings(&qemu_args(&spec(Accel::Tcg, Console::Captured)));
        assert!(args.contains(&"-no-reboot".to_string()));
        assert!(value_after(&args, "-append").split(' ').any(|i| i == "panic=-1"));
    }

    #[test]
    fn a_labs_kernel_parameters_come_after_labctls_own() {
        let mut spec = spec(Accel::Tcg, Console::Captured);
        let plain = strings(&qemu_args(&spec));
        assert_eq!(value_after(&plain, "-append"), kernel_cmdline(Console::Captured));
        spec.cmdline_extra = vec!["lsm=lockdown,capability,bpf".into(), "bpf_jit_harden=2".into()];
        let args = strings(&qemu_args(&spec));
        assert_eq!(
            value_after(&args, "-append"),
            format!("{} lsm=lockdown,capability,bpf bpf_jit_harden=2", kernel_cmdline(Console::Captured))
        );
    }

    #[test]
    fn kernel_initrd_and_memory_are_passed_through() {
        let args = strings(&qemu_args(&spec(Accel::Tcg, Console::Captured)));
        assert_eq!(value_after(&args, "-kernel"), "/k/vmlinuz");
        assert_eq!(value_after(&args, "-initrd"), "/k/initrd.cpio");
        assert_eq!(value_after(&args, "-m"), "512");
        assert!(value_after(&args, "-append").starts_with("console=ttyS0 "));
    }

    #[test]
    fn the_console_is_stdio_and_events_go_to_the_socket_as_a_client() {
        let args = strings(&serial_args(Console::Captured, Path::new("/run/x/events.sock")));
        assert_eq!(
            args,
            [
                "-chardev",
                "stdio,id=console",
                "-serial",
                "chardev:console",
                "-chardev",
                "socket,id=events,server=off,path=/run/x/events.sock",
                "-serial",
                "chardev:events"
            ]
        );
        let interactive = strings(&serial_args(Console::Interactive, Path::new("/s")));
        assert_eq!(interactive[1], "stdio,id=console,signal=off");
        assert!(kernel_cmdline(Console::Interactive).ends_with(" quiet loglevel=3"));
        assert!(!kernel_cmdline(Console::Captured).contains("loglevel"));
    }

    #[test]
    fn a_plain_boot_has_no_disk_monitor_or_saved_state() {
        let args = strings(&qemu_args(&spec(Accel::Tcg, Console::Captured)));
        for flag in ["-drive", "-device", "-mon", "-incoming"] {
            assert!(!args.iter().any(|a| a == flag), "{flag} in {args:?}");
        }
    }

    #[test]
    fn a_restore_differs_from_the_saved_boot_only_in_its_disk_file_and_incoming_state() {
        let mut saved = spec(Accel::Tcg, Console::Captured);
        saved.work_disk = Some("/snap/placeholder.img".into());
        saved.qmp_socket = Some("/run/x/qmp.sock".into());
        let mut restored = saved.clone();
        restored.work_disk = Some("/run/x/lab01.work".into());
        restored.qmp_socket = None;
        restored.incoming = Some("/snap/state".into());
        let saved = strings(&qemu_args(&saved));
        let restored = strings(&qemu_args(&restored));
        assert_eq!(value_after(&saved, "-drive"), "file=/snap/placeholder.img,if=none,id=work,format=raw,readonly=on");
        assert_eq!(value_after(&restored, "-drive"), "file=/run/x/lab01.work,if=none,id=work,format=raw,readonly=on");
        assert_eq!(value_after(&restored, "-device"), value_after(&saved, "-device"));
        assert_eq!(value_after(&saved, "-mon"), "chardev=qmp,mode=control");
        assert_eq!(value_after(&restored, "-incoming"), "exec:cat '/snap/state'");
        // Everything before the disk (machine, kernel, serial ports) is the same.
        let before_disk = |a: &[String]| a[..a.iter().position(|x| x == "-drive").unwrap()].to_vec();
        assert_eq!(before_disk(&saved), before_disk(&restored));
    }

    #[test]
    fn paths_are_quoted_for_the_shell_and_commas_doubled_in_option_lists() {
        assert_eq!(migrate_uri(Path::new("/c/it's here/state")), "exec:cat > '/c/it'\\''s here/state'");
        let disk = strings(&work_disk_args(Path::new("/a,b/work.img")));
        assert_eq!(disk[1], "file=/a,,b/work.img,if=none,id=work,format=raw,readonly=on");
        let qmp = strings(&qmp_args(Path::new("/r/q,1.sock")));
        assert_eq!(qmp[1], "socket,id=qmp,server=off,path=/r/q,,1.sock");
    }
}

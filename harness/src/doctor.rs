//! `labctl doctor`: every prerequisite, and how to install what is missing.

use std::path::{Path, PathBuf};

use crate::accel;
use crate::kernels;
use crate::workspace::Workspace;

/// The Debian package (or other install command) that provides `program`.
pub fn install_hint(program: &str) -> String {
    let apt = |pkg: &str| format!("sudo apt-get install {pkg}   (or run ./setup.sh)");
    match program {
        "qemu-system-x86_64" => apt("qemu-system-x86"),
        "clang" => apt("clang"),
        "bpftool" => apt("bpftool"),
        "strace" => apt("strace"),
        "busybox" => apt("busybox-static"),
        "ip" => apt("iproute2"),
        "ldd" => apt("libc-bin"),
        "strip" => apt("binutils"),
        "depmod" => apt("kmod"),
        "dpkg-deb" | "apt-get" => "a Debian or Ubuntu system (dpkg and apt)".into(),
        "pkg-config" => apt("pkg-config"),
        "mdbook" => "cargo install --locked mdbook   (or run ./setup.sh)".into(),
        "just" => "cargo install --locked just   (or run ./setup.sh)".into(),
        "chromium" => apt("chromium"),
        "cargo" => "rustup (https://rustup.rs), stable toolchain".into(),
        other => format!("install {other} (./setup.sh installs everything the project needs)"),
    }
}

/// `program` on PATH (or as given, if it is a path).
pub fn find_in_path(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Path::new(program).is_file().then(|| PathBuf::from(program));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(program)).find(|p| p.is_file())
}

/// One line of the doctor's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub what: String,
    pub ok: bool,
    pub detail: String,
}

pub fn findings(ws: &Workspace) -> Vec<Finding> {
    let mut out = Vec::new();
    let programs = [
        ("qemu-system-x86_64", "boots the lab VM"),
        ("clang", "compiles BPF C"),
        ("pkg-config", "finds libelf and zlib for libbpf-sys"),
        ("cargo", "builds labs"),
        ("ldd", "finds the shared libraries to copy into the guest"),
        ("strip", "keeps the guest image small"),
        ("dpkg-deb", "unpacks kernel packages"),
        ("depmod", "indexes the guest kernels' modules"),
        ("apt-get", "downloads kernel packages"),
        ("busybox", "the guest's shell and tools"),
        ("strace", "copied into the guest"),
        ("bpftool", "copied into the guest"),
        ("ip", "copied into the guest"),
        ("mdbook", "builds the book"),
        ("just", "the project's commands"),
        ("chromium", "the book's browser test"),
    ];
    for (program, why) in programs {
        let found = find_in_path(program)
            .or_else(|| ["/usr/sbin", "/sbin"].iter().map(|d| Path::new(d).join(program)).find(|p| p.is_file()));
        out.push(match found {
            Some(p) => Finding { what: program.into(), ok: true, detail: format!("{} ({why})", p.display()) },
            None => Finding {
                what: program.into(),
                ok: false,
                detail: format!("missing ({why}); install: {}", install_hint(program)),
            },
        });
    }
    for lib in ["libelf", "zlib"] {
        let ok = std::process::Command::new("pkg-config").args(["--exists", lib]).status().is_ok_and(|s| s.success());
        let pkg = if lib == "libelf" { "libelf-dev" } else { "zlib1g-dev" };
        out.push(Finding {
            what: lib.into(),
            ok,
            detail: if ok { "headers found".into() } else { format!("missing; install: sudo apt-get install {pkg}") },
        });
    }
    match ws.kernels() {
        Ok(matrix) => {
            for spec in &matrix.kernels {
                let what = format!("kernel {}", spec.name);
                out.push(match kernels::state(spec, &ws.cache_dir()) {
                    Ok(state) if state.fetched => Finding { what, ok: true, detail: state.describe() },
                    Ok(state) => Finding {
                        what,
                        ok: false,
                        detail: format!(
                            "not fetched ({} from {}); run: labctl kernels --fetch   (or ./setup.sh)",
                            state.describe(),
                            spec.suite
                        ),
                    },
                    Err(e) => Finding { what, ok: false, detail: e.to_string() },
                });
            }
        }
        Err(e) => out.push(Finding { what: "vm/kernels.toml".into(), ok: false, detail: e.to_string() }),
    }
    let kvm = accel::kvm_device_usable();
    out.push(Finding {
        what: "kvm".into(),
        ok: true,
        detail: if kvm {
            "/dev/kvm is usable; labctl probes it once before trusting it".into()
        } else {
            "no usable /dev/kvm: VMs run under TCG (slower, but fine)".into()
        },
    });
    out
}

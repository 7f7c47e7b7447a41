//! Host programs labctl needs: where to find them, and how to install the
//! ones that are missing. `labctl doctor`, the builder and every spawn
//! error give the same advice from here.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

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
        "patch" => apt("patch"),
        "depmod" => apt("kmod"),
        "dpkg-deb" | "apt-get" => "a Debian or Ubuntu system (dpkg and apt)".into(),
        "pkg-config" => apt("pkg-config"),
        "libelf" => apt("libelf-dev"),
        "zlib" => apt("zlib1g-dev"),
        "mdbook" => "cargo install --locked mdbook   (or run ./setup.sh)".into(),
        "just" => "cargo install --locked just   (or run ./setup.sh)".into(),
        "chromium" => apt("chromium"),
        "cargo" | "rustc" => "rustup (https://rustup.rs), stable toolchain".into(),
        "cc" => apt("gcc"),
        "make" => apt("make"),
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

/// `program` on PATH or in the sbin directories a user's PATH may lack.
pub fn find(program: &str) -> Option<PathBuf> {
    find_in_path(program)
        .or_else(|| ["/usr/sbin", "/sbin"].iter().map(|d| Path::new(d).join(program)).find(|p| p.is_file()))
}

/// `program`, or the error that names it and says how to install it.
pub fn require(program: &str) -> Result<PathBuf> {
    find(program).ok_or_else(|| missing(program))
}

/// The error for a missing `program` (or library, for `libelf`, `zlib`).
pub fn missing(program: &str) -> Error {
    Error::Missing { what: program.into(), fix: install_hint(program) }
}

/// A C library that pkg-config must find, by its pkg-config name.
pub fn pkg_config_has(library: &str) -> bool {
    std::process::Command::new("pkg-config")
        .args(["--exists", library])
        .stdin(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// What building a lab with BPF C in it needs on the host: clang for the
/// BPF objects, pkg-config with libelf and zlib for libbpf-sys.
pub fn check_bpf_toolchain() -> Result<()> {
    require("clang")?;
    require("pkg-config")?;
    for library in ["libelf", "zlib"] {
        if !pkg_config_has(library) {
            return Err(Error::Missing {
                what: format!("{library} (its development files, for libbpf-sys)"),
                fix: install_hint(library),
            });
        }
    }
    Ok(())
}

/// The error for a build that `tool` broke: missing, or present but not
/// usable (a library without its headers); `output` is what the build said.
pub fn missing_or_broken(tool: &str, output: &str) -> Error {
    let what = match tool {
        "libelf" | "zlib" => format!("{tool} (its development files, which libbpf-sys builds against)"),
        "cc" => "a C compiler and linker (cc)".to_string(),
        other if find(other).is_some() => {
            let line = output.lines().find(|l| l.contains(other)).unwrap_or_default().trim();
            return Error::Missing {
                what: format!("a working {other} (the build could not use it: {line})"),
                fix: install_hint(other),
            };
        }
        other => other.to_string(),
    };
    Error::Missing { what, fix: install_hint(tool) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hint_names_a_way_to_install() {
        for program in ["clang", "pkg-config", "libelf", "zlib", "qemu-system-x86_64", "mystery"] {
            let hint = install_hint(program);
            assert!(hint.contains("apt-get install") || hint.contains("setup.sh"), "{program}: {hint}");
        }
        assert!(install_hint("libelf").contains("libelf-dev"));
    }
}

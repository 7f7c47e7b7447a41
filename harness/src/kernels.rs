//! The kernel matrix (`vm/kernels.toml`) and fetching its kernels.
//!
//! Kernels are Debian's cloud images: BTF, kprobes and BPF LSM built in,
//! a serial console, modules for the rest. They are fetched with the
//! machine's own apt: for a suite its sources do not list, a private apt
//! configuration reuses the URIs of its Debian sources, so no mirror is
//! ever named in this repository.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::exec;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matrix {
    /// The kernel used when none is asked for.
    pub default: String,
    #[serde(rename = "kernel")]
    pub kernels: Vec<KernelSpec>,
}

/// One pinned kernel package.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelSpec {
    /// What users type: `--kernel 6.1`.
    pub name: String,
    /// The Debian suite that ships it.
    pub suite: String,
    pub package: String,
    pub version: String,
    /// Of the .deb file.
    pub sha256: String,
    /// `uname -r` inside the guest.
    pub release: String,
}

/// A kernel ready to boot.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// The matrix name, or the path given with `--kernel PATH`.
    pub name: String,
    pub image: PathBuf,
    /// `lib/modules/<release>` when known.
    pub modules_dir: Option<PathBuf>,
    pub release: Option<String>,
}

impl Matrix {
    pub fn load(path: &Path) -> Result<Self> {
        let text = fs::read_to_string(path).map_err(Error::io(format!("reading {}", path.display())))?;
        let m: Matrix = toml::from_str(&text).map_err(|e| Error::Kernel(format!("{}: {e}", path.display())))?;
        if !m.kernels.iter().any(|k| k.name == m.default) {
            return Err(Error::Kernel(format!(
                "{}: default {:?} is not one of the kernels",
                path.display(),
                m.default
            )));
        }
        Ok(m)
    }

    pub fn names(&self) -> Vec<String> {
        self.kernels.iter().map(|k| k.name.clone()).collect()
    }

    pub fn get(&self, name: &str) -> Option<&KernelSpec> {
        self.kernels.iter().find(|k| k.name == name)
    }
}

/// Where a matrix kernel is unpacked.
pub fn kernel_dir(cache: &Path, spec: &KernelSpec) -> PathBuf {
    cache.join("kernels").join(format!("{}-{}", spec.name, spec.version))
}

/// Resolves `--kernel` (a matrix name, or a path to a bzImage) to a kernel
/// on disk, fetching it if needed.
pub fn resolve(matrix: &Matrix, cache: &Path, wanted: Option<&str>, quiet: bool) -> Result<Kernel> {
    let name = wanted.unwrap_or(&matrix.default);
    if let Some(spec) = matrix.get(name) {
        return fetch(spec, cache, None, quiet);
    }
    let path = Path::new(name);
    if name.contains('/') || path.is_file() {
        return kernel_file(path);
    }
    Err(Error::Usage(format!(
        "--kernel {name}: not a kernel of the matrix ({}) nor a kernel file",
        matrix.names().join(", ")
    )))
}

/// A kernel image given by path: it must at least look like a bzImage, so
/// that a wrong file is reported here and not as a mysterious boot failure.
pub fn kernel_file(path: &Path) -> Result<Kernel> {
    let mut header = [0u8; 0x206];
    let mut file = fs::File::open(path).map_err(|e| Error::Kernel(format!("cannot open {}: {e}", path.display())))?;
    let n = file.read(&mut header).map_err(Error::io(format!("reading {}", path.display())))?;
    // The x86 boot protocol puts "HdrS" at offset 0x202 of every bzImage.
    if n < header.len() || &header[0x202..0x206] != b"HdrS" {
        return Err(Error::Kernel(format!(
            "{} is not a Linux kernel image (no x86 boot header); give a bzImage such as /boot/vmlinuz-*",
            path.display()
        )));
    }
    Ok(Kernel { name: path.display().to_string(), image: path.to_path_buf(), modules_dir: None, release: None })
}

/// Downloads and unpacks one pinned kernel unless it already is. `mirror`
/// (else `$WORKBOOK_DEBIAN_MIRROR`) is a Debian archive URL for machines
/// whose apt has no Debian sources.
pub fn fetch(spec: &KernelSpec, cache: &Path, mirror: Option<&str>, quiet: bool) -> Result<Kernel> {
    let dir = kernel_dir(cache, spec);
    let image = dir.join("boot").join(format!("vmlinuz-{}", spec.release));
    let modules = dir.join("lib/modules").join(&spec.release);
    let stamp = dir.join(".sha256");
    let kernel = Kernel {
        name: spec.name.clone(),
        image: image.clone(),
        modules_dir: Some(modules),
        release: Some(spec.release.clone()),
    };
    if image.is_file() && fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == spec.sha256) {
        return Ok(kernel);
    }
    if !quiet {
        eprintln!("Fetching kernel {} ({} {} from Debian {})", spec.name, spec.package, spec.version, spec.suite);
    }
    let downloads = cache.join("downloads");
    fs::create_dir_all(&downloads).map_err(Error::io(format!("creating {}", downloads.display())))?;
    let deb = download(spec, cache, &downloads, mirror, quiet)?;
    let actual = sha256_file(&deb)?;
    if actual != spec.sha256 {
        return Err(Error::Kernel(format!(
            "{} has sha256 {actual}, but vm/kernels.toml pins {}; the download is corrupt or the pin is stale",
            deb.display(),
            spec.sha256
        )));
    }
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(Error::io(format!("creating {}", dir.display())))?;
    exec::output(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&dir), quiet)?;
    if !image.is_file() {
        return Err(Error::Kernel(format!("{} holds no {}", deb.display(), image.display())));
    }
    fs::write(&stamp, &spec.sha256).map_err(Error::io(format!("writing {}", stamp.display())))?;
    Ok(kernel)
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = fs::File::open(path).map_err(Error::io(format!("opening {}", path.display())))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(Error::io(format!("reading {}", path.display())))?;
    Ok(hex::encode(hasher.finalize()))
}

fn deb_name(spec: &KernelSpec) -> String {
    // apt writes ':' in epochs as %3a; cloud kernels have none.
    format!("{}_{}_amd64.deb", spec.package, spec.version)
}

fn download(spec: &KernelSpec, cache: &Path, downloads: &Path, mirror: Option<&str>, quiet: bool) -> Result<PathBuf> {
    let deb = downloads.join(deb_name(spec));
    if deb.is_file() && sha256_file(&deb)? == spec.sha256 {
        return Ok(deb);
    }
    let wanted = format!("{}={}", spec.package, spec.version);
    // The machine's own apt first: no extra index to fetch.
    let mut plain = Command::new("apt-get");
    plain.current_dir(downloads).args(["download", "-q", &wanted]);
    if exec::output(&mut plain, quiet).is_ok() && deb.is_file() {
        return Ok(deb);
    }
    let options = private_apt(spec, cache, mirror, quiet)?;
    let mut private = Command::new("apt-get");
    private.current_dir(downloads).args(&options).args(["download", "-q", &wanted]);
    exec::output(&mut private, quiet).map_err(|e| {
        Error::Kernel(format!(
            "cannot download {wanted} from Debian {}: {e}\n  If Debian has moved on from this version, update the pin in vm/kernels.toml.",
            spec.suite
        ))
    })?;
    Ok(deb)
}

/// Options for apt-get that point it at `spec.suite` through the Debian
/// archive URIs of the machine's own apt sources, with state of its own.
fn private_apt(spec: &KernelSpec, cache: &Path, mirror: Option<&str>, quiet: bool) -> Result<Vec<String>> {
    let from_env = std::env::var("WORKBOOK_DEBIAN_MIRROR").ok().filter(|u| !u.is_empty());
    let uris = match mirror.map(str::to_string).or(from_env) {
        Some(uri) => vec![uri],
        None => debian_archive_uris(Path::new("/etc/apt")),
    };
    if uris.is_empty() {
        return Err(Error::Kernel(format!(
            "this machine's apt has no Debian archive sources (Ubuntu?), so Debian {} cannot be reached through it.\n  \
             Give a Debian mirror URL (ending in /debian): labctl kernels --fetch --mirror URL (or WORKBOOK_DEBIAN_MIRROR=URL),\n  \
             or boot a kernel file of your own: --kernel /path/to/bzImage.",
            spec.suite
        )));
    }
    let root = cache.join("apt").join(&spec.suite);
    for sub in ["lists/partial", "archives/partial"] {
        fs::create_dir_all(root.join(sub)).map_err(Error::io(format!("creating {}", root.display())))?;
    }
    let keyring = "/usr/share/keyrings/debian-archive-keyring.gpg";
    let sources: String = uris.iter().map(|u| format!("deb [signed-by={keyring}] {u} {} main\n", spec.suite)).collect();
    let list = root.join("sources.list");
    fs::write(&list, sources).map_err(Error::io(format!("writing {}", list.display())))?;
    let options = vec![
        "-o".into(),
        format!("Dir::Etc::SourceList={}", list.display()),
        "-o".into(),
        "Dir::Etc::SourceParts=/nonexistent".into(),
        "-o".into(),
        format!("Dir::State::Lists={}", root.join("lists").display()),
        "-o".into(),
        format!("Dir::Cache={}", root.display()),
        "-o".into(),
        "Dir::State::status=/dev/null".into(),
        "-o".into(),
        "Debug::NoLocking=1".into(),
        "-o".into(),
        "APT::Sandbox::User=root".into(),
    ];
    exec::output(Command::new("apt-get").args(&options).args(["-q", "update"]), quiet)?;
    Ok(options)
}

/// The URIs of the Debian archive (not security, not third parties) in the
/// apt sources under `etc` (`sources.list`, `sources.list.d/*.list|*.sources`).
pub fn debian_archive_uris(etc: &Path) -> Vec<String> {
    let mut files = vec![etc.join("sources.list")];
    if let Ok(entries) = fs::read_dir(etc.join("sources.list.d")) {
        let mut more: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        more.sort();
        files.extend(more.into_iter().filter(|p| p.extension().is_some_and(|x| x == "list" || x == "sources")));
    }
    let mut uris = BTreeSet::new();
    for file in files {
        let Ok(text) = fs::read_to_string(&file) else { continue };
        for line in text.lines().map(str::trim) {
            let candidates: Vec<&str> = if let Some(rest) = line.strip_prefix("URIs:") {
                rest.split_whitespace().collect()
            } else if line.starts_with("deb ") {
                // One-line style: deb [options] URI suite components
                line.split_whitespace()
                    .skip(1)
                    .skip_while(|w| w.starts_with('[') || !w.contains("://"))
                    .take(1)
                    .collect()
            } else {
                Vec::new()
            };
            uris.extend(
                candidates.into_iter().filter(|u| u.trim_end_matches('/').ends_with("/debian")).map(String::from),
            );
        }
    }
    uris.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_debian_archive_uris_in_both_source_styles() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("sources.list.d")).unwrap();
        fs::write(dir.path().join("sources.list"), "deb [arch=amd64] http://example.test/debian bookworm main\n")
            .unwrap();
        fs::write(
            dir.path().join("sources.list.d/debian.sources"),
            "Types: deb\nURIs: http://mirror.test/debian\nSuites: bookworm\n\nTypes: deb\nURIs: http://mirror.test/debian-security\n",
        )
        .unwrap();
        fs::write(dir.path().join("sources.list.d/other.list"), "deb http://vendor.test/apt stable main\n").unwrap();
        assert_eq!(debian_archive_uris(dir.path()), vec!["http://example.test/debian", "http://mirror.test/debian"]);
    }

    #[test]
    fn a_file_that_is_not_a_kernel_is_refused_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let bogus = dir.path().join("vmlinuz-bogus");
        fs::write(&bogus, vec![0u8; 4096]).unwrap();
        let err = kernel_file(&bogus).unwrap_err().to_string();
        assert!(err.contains("vmlinuz-bogus") && err.contains("not a Linux kernel image"), "{err}");
    }
}

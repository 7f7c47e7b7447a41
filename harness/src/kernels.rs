//! The kernel matrix (`vm/kernels.toml`) and fetching its kernels.
//!
//! Kernels are Debian's cloud images: BTF, kprobes and BPF LSM built in,
//! a serial console, modules for the rest. They are fetched with the
//! machine's own apt: for a suite its sources do not list, a private apt
//! configuration reuses the URIs of its Debian sources, so no mirror is
//! ever named in this repository.
//!
//! Pins rot: Debian removes a kernel package from its suite when the next
//! ABI replaces it. So each kernel names its suite and series, and when
//! the pinned version is gone, fetching takes the newest package of the
//! same series from the same suite (chosen from apt's signed index), says
//! so in one line, and records what it took in `vm/cache/kernels.lock`;
//! `labctl kernels --update` then writes it into `vm/kernels.toml`.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::exec;

/// What a fallback is recorded in, under the cache directory.
pub const LOCK_FILE: &str = "kernels.lock";
/// Bound on waiting for another labctl that is fetching a kernel.
const FETCH_LOCK_TIMEOUT: Duration = Duration::from_secs(900);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matrix {
    /// The kernel used when none is asked for.
    pub default: String,
    #[serde(rename = "kernel")]
    pub kernels: Vec<KernelSpec>,
}

/// One pinned kernel: where it comes from, and exactly which files.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KernelSpec {
    /// What users type: `--kernel 6.1`.
    pub name: String,
    /// The Debian suite that ships it.
    pub suite: String,
    /// The upstream versions that may replace the pin when it is gone
    /// from its suite: `6.1` takes 6.1.x (never 6.12), `7` any 7.x.
    pub series: String,
    /// The package holding the kernel image: `linux-image-<release>`, or
    /// `linux-binary-<release>` where `linux-image-*` is a meta package.
    pub package: String,
    /// Debian version of the package(s).
    pub version: String,
    /// Of the .deb file.
    pub sha256: String,
    /// `uname -r` inside the guest.
    pub release: String,
    /// The package holding the modules, when it is not `package`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modules_package: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modules_sha256: Option<String>,
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
        m.validate().map_err(|e| Error::Kernel(format!("{}: {e}", path.display())))?;
        Ok(m)
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if !self.kernels.iter().any(|k| k.name == self.default) {
            return Err(format!("default {:?} is not one of the kernels", self.default));
        }
        let mut seen = BTreeSet::new();
        for k in &self.kernels {
            if k.name == "all" || !seen.insert(&k.name) {
                return Err(format!("kernel name {:?} is reserved or used twice", k.name));
            }
            if !in_series(&k.version, &k.series) {
                return Err(format!("kernel {}: version {} is not of series {}", k.name, k.version, k.series));
            }
            if k.modules_package.is_some() != k.modules_sha256.is_some() {
                return Err(format!("kernel {}: modules_package and modules_sha256 go together", k.name));
            }
            for (package, sha) in k.debs() {
                if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(format!("kernel {}: the sha256 of {package} is not 64 hex digits", k.name));
                }
            }
        }
        Ok(())
    }

    pub fn names(&self) -> Vec<String> {
        self.kernels.iter().map(|k| k.name.clone()).collect()
    }

    pub fn get(&self, name: &str) -> Option<&KernelSpec> {
        self.kernels.iter().find(|k| k.name == name)
    }
}

impl KernelSpec {
    /// Every .deb of the kernel with its sha256: the image, then the modules.
    pub fn debs(&self) -> Vec<(&str, &str)> {
        let mut debs = vec![(self.package.as_str(), self.sha256.as_str())];
        if let (Some(p), Some(s)) = (&self.modules_package, &self.modules_sha256) {
            debs.push((p.as_str(), s.as_str()));
        }
        debs
    }

    /// The release without its flavour: `6.1.0-56`, `7.3.4+deb13`.
    pub fn abi(&self) -> &str {
        abi(&self.release)
    }
}

/// `6.1.0-56-cloud-amd64` -> `6.1.0-56`: the leading dash-separated parts
/// that start with a digit.
pub fn abi(release: &str) -> &str {
    let mut end = 0;
    for part in release.split('-') {
        if !part.starts_with(|c: char| c.is_ascii_digit()) {
            break;
        }
        end += part.len() + usize::from(end > 0);
    }
    &release[..end]
}

/// `6.1.0-56-cloud-amd64` -> `cloud-amd64`.
pub fn flavour(release: &str) -> &str {
    release[abi(release).len()..].trim_start_matches('-')
}

/// Whether Debian version `version` belongs to `series`: `6.1.192-2` is of
/// 6.1 and of 6, not of 6.12.
pub fn in_series(version: &str, series: &str) -> bool {
    let upstream = version.split_once(':').map_or(version, |(_, rest)| rest);
    upstream.strip_prefix(series).is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '-', '~', '+']))
}

/// Debian's version order (deb-version(7)): epoch, then upstream version
/// and revision compared part by part, `~` before anything, even the end.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    fn split(v: &str) -> (u64, &str, &str) {
        let (epoch, rest) = match v.split_once(':') {
            Some((e, rest)) => (e.parse().unwrap_or(0), rest),
            None => (0, v),
        };
        match rest.rsplit_once('-') {
            Some((upstream, revision)) => (epoch, upstream, revision),
            None => (epoch, rest, ""),
        }
    }
    fn order(c: Option<&u8>) -> i32 {
        match c {
            None => 0,
            Some(b'~') => -1,
            Some(c) if c.is_ascii_digit() => 0,
            Some(c) if c.is_ascii_alphabetic() => i32::from(*c),
            Some(c) => i32::from(*c) + 256,
        }
    }
    fn part(a: &[u8], b: &[u8]) -> Ordering {
        let (mut i, mut j) = (0, 0);
        while i < a.len() || j < b.len() {
            while a.get(i).is_some_and(|c| !c.is_ascii_digit()) || b.get(j).is_some_and(|c| !c.is_ascii_digit()) {
                let (x, y) = (order(a.get(i)), order(b.get(j)));
                if x != y {
                    return x.cmp(&y);
                }
                i += 1;
                j += 1;
            }
            while a.get(i) == Some(&b'0') {
                i += 1;
            }
            while b.get(j) == Some(&b'0') {
                j += 1;
            }
            let mut first_difference = Ordering::Equal;
            while a.get(i).is_some_and(u8::is_ascii_digit) && b.get(j).is_some_and(u8::is_ascii_digit) {
                if first_difference == Ordering::Equal {
                    first_difference = a[i].cmp(&b[j]);
                }
                i += 1;
                j += 1;
            }
            if a.get(i).is_some_and(u8::is_ascii_digit) {
                return Ordering::Greater;
            }
            if b.get(j).is_some_and(u8::is_ascii_digit) {
                return Ordering::Less;
            }
            if first_difference != Ordering::Equal {
                return first_difference;
            }
        }
        Ordering::Equal
    }
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb).then_with(|| part(ua.as_bytes(), ub.as_bytes())).then_with(|| part(ra.as_bytes(), rb.as_bytes()))
}

/// One package version as `apt-cache show` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stanza {
    pub package: String,
    pub version: String,
    pub sha256: String,
}

/// The stanzas of `apt-cache show` output that have a package, a version
/// and a checksum.
pub fn parse_stanzas(text: &str) -> Vec<Stanza> {
    text.split("\n\n")
        .filter_map(|block| {
            let field = |name: &str| {
                block.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':').map(|v| v.trim().to_string()))
            };
            Some(Stanza { package: field("Package")?, version: field("Version")?, sha256: field("SHA256")? })
        })
        .collect()
}

/// The newest kernel of `series` and `flavour` among `stanzas`, as the
/// spec that would pin it. Where a version has both `linux-image-R` and
/// `linux-binary-R` (Debian's 7.x layout, in which `linux-image-R` is a
/// meta package), the image is in `linux-binary-R` and the modules in
/// `linux-modules-R`.
pub fn newest_of_series(stanzas: &[Stanza], pinned: &KernelSpec) -> Option<KernelSpec> {
    let wanted_flavour = flavour(&pinned.release);
    fn release_of<'a>(package: &'a str, wanted_flavour: &str) -> Option<&'a str> {
        let release = package.strip_prefix("linux-image-").or_else(|| package.strip_prefix("linux-binary-"))?;
        let abi = abi(release);
        // A real release has a full upstream version (6.1.0, 7.3.4+deb13);
        // `linux-image-6.12-cloud-amd64` is a meta package.
        let full = abi.split('-').next().is_some_and(|v| v.matches('.').count() >= 2);
        (full && flavour(release) == wanted_flavour).then_some(release)
    }
    let best = stanzas
        .iter()
        .filter(|s| release_of(&s.package, wanted_flavour).is_some() && in_series(&s.version, &pinned.series))
        .max_by(|a, b| compare_versions(&a.version, &b.version))?;
    let release = release_of(&best.package, wanted_flavour)?.to_string();
    let find = |package: String| stanzas.iter().find(|s| s.package == package && s.version == best.version);
    let (image, modules) = match find(format!("linux-binary-{release}")) {
        Some(binary) => (binary, find(format!("linux-modules-{release}"))),
        None => (find(format!("linux-image-{release}"))?, None),
    };
    Some(KernelSpec {
        name: pinned.name.clone(),
        suite: pinned.suite.clone(),
        series: pinned.series.clone(),
        package: image.package.clone(),
        version: image.version.clone(),
        sha256: image.sha256.clone(),
        release,
        modules_package: modules.map(|m| m.package.clone()),
        modules_sha256: modules.map(|m| m.sha256.clone()),
    })
}

/// The one line printed when a pin is gone and another kernel is taken.
pub fn fallback_notice(pinned: &KernelSpec, taken: &KernelSpec) -> String {
    format!(
        "{}: {} is gone from {}; using {} ({}); `labctl kernels --update` pins it",
        pinned.name,
        pinned.abi(),
        pinned.suite,
        taken.abi(),
        taken.version
    )
}

/// A kernel taken in place of a pin that is gone from its suite.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Fallback {
    pub name: String,
    /// The version and checksum vm/kernels.toml pinned when this was
    /// taken: a new pin makes the entry void.
    pub pinned_version: String,
    pub pinned_sha256: String,
    pub taken: KernelSpec,
}

/// `vm/cache/kernels.lock`: what fetching took in place of vanished pins.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Lockfile {
    #[serde(default, rename = "fallback")]
    pub fallbacks: Vec<Fallback>,
}

impl Lockfile {
    pub fn path(cache: &Path) -> PathBuf {
        cache.join(LOCK_FILE)
    }

    pub fn load(cache: &Path) -> Result<Self> {
        let path = Self::path(cache);
        match fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|e| {
                Error::Kernel(format!("{}: {e}\n  It is written by labctl: delete it to start afresh.", path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(Error::Io { context: format!("reading {}", path.display()), source: e }),
        }
    }

    /// Writes the file, or removes it when nothing has fallen back.
    pub fn save(&self, cache: &Path) -> Result<()> {
        let path = Self::path(cache);
        if self.fallbacks.is_empty() {
            return match fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(Error::Io { context: format!("removing {}", path.display()), source: e })
                }
                _ => Ok(()),
            };
        }
        let body = toml::to_string(self).map_err(|e| Error::Kernel(format!("serialising {}: {e}", path.display())))?;
        let text = format!(
            "# Written by labctl: kernels fetched in place of pins that are gone from their\n\
             # suites. `labctl kernels --update` writes them into vm/kernels.toml.\n\n{body}"
        );
        write_atomically(&path, text.as_bytes())
    }

    /// The fallback that applies to `spec` as it is pinned now.
    pub fn fallback_for(&self, spec: &KernelSpec) -> Option<&Fallback> {
        self.fallbacks
            .iter()
            .find(|f| f.name == spec.name && f.pinned_version == spec.version && f.pinned_sha256 == spec.sha256)
    }

    fn record(&mut self, pinned: &KernelSpec, taken: &KernelSpec) {
        self.fallbacks.retain(|f| f.name != pinned.name);
        self.fallbacks.push(Fallback {
            name: pinned.name.clone(),
            pinned_version: pinned.version.clone(),
            pinned_sha256: pinned.sha256.clone(),
            taken: taken.clone(),
        });
    }
}

/// The kernel fetching uses for `spec`: its pin, or what was taken in its
/// place.
pub fn effective(spec: &KernelSpec, lock: &Lockfile) -> KernelSpec {
    lock.fallback_for(spec).map_or_else(|| spec.clone(), |f| f.taken.clone())
}

/// Where a kernel is unpacked.
pub fn kernel_dir(cache: &Path, spec: &KernelSpec) -> PathBuf {
    cache.join("kernels").join(format!("{}-{}", spec.name, spec.version))
}

/// The kernel image in an unpacked tree: `boot/vmlinuz-R`, or
/// `usr/lib/modules/R/vmlinuz` in Debian's 7.x layout.
fn image_in(dir: &Path, release: &str) -> Option<PathBuf> {
    [
        dir.join("boot").join(format!("vmlinuz-{release}")),
        dir.join("usr/lib/modules").join(release).join("vmlinuz"),
        dir.join("lib/modules").join(release).join("vmlinuz"),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

fn stamp_text(spec: &KernelSpec) -> String {
    spec.debs().iter().map(|(_, sha)| format!("{sha}\n")).collect()
}

/// The kernel, if it is unpacked with the checksums of `spec`. Trees are
/// only ever renamed into place whole, so a tree that is there is complete.
fn ready(spec: &KernelSpec, cache: &Path) -> Option<Kernel> {
    let dir = kernel_dir(cache, spec);
    if fs::read_to_string(dir.join(".sha256")).ok()? != stamp_text(spec) {
        return None;
    }
    Some(Kernel {
        name: spec.name.clone(),
        image: image_in(&dir, &spec.release)?,
        modules_dir: Some(dir.join("lib/modules").join(&spec.release)),
        release: Some(spec.release.clone()),
    })
}

/// What `labctl kernels` and `labctl doctor` say about one kernel.
#[derive(Debug, Clone)]
pub struct KernelState {
    pub pinned: KernelSpec,
    /// What is used: the pin, or the kernel taken in its place.
    pub used: KernelSpec,
    pub fetched: bool,
    pub fell_back: bool,
}

pub fn state(spec: &KernelSpec, cache: &Path) -> Result<KernelState> {
    let lock = Lockfile::load(cache)?;
    let used = effective(spec, &lock);
    Ok(KernelState { fetched: ready(&used, cache).is_some(), fell_back: used != *spec, pinned: spec.clone(), used })
}

impl KernelState {
    /// `6.1.0-56 (6.1.192-2), pinned` or `6.1.0-57 (6.1.193-1), fallen back from 6.1.0-56`.
    pub fn describe(&self) -> String {
        let what = format!("{} ({})", self.used.abi(), self.used.version);
        if self.fell_back {
            format!(
                "{what}, fallen back from {} (gone from {}; `labctl kernels --update` pins it)",
                self.pinned.abi(),
                self.pinned.suite
            )
        } else {
            format!("{what}, pinned")
        }
    }
}

/// Resolves `--kernel` (a matrix name, or a path to a bzImage) to a kernel
/// on disk, fetching it if needed.
pub fn resolve(matrix: &Matrix, cache: &Path, wanted: Option<&str>, quiet: bool) -> Result<Kernel> {
    let name = wanted.unwrap_or(&matrix.default);
    if name == crate::matrix::ALL {
        return Err(Error::Usage(
            "--kernel all runs the whole matrix, which only `labctl verify` and `labctl grade` do".into(),
        ));
    }
    if let Some(spec) = matrix.get(name) {
        return fetch(spec, cache, &FetchOptions { mirror: None, quiet });
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

#[derive(Debug, Clone, Copy, Default)]
pub struct FetchOptions<'a> {
    /// A Debian archive URL (else `$WORKBOOK_DEBIAN_MIRROR`), for machines
    /// whose apt has no Debian sources.
    pub mirror: Option<&'a str>,
    pub quiet: bool,
}

/// Downloads and unpacks one kernel of the matrix unless it already is:
/// the pinned one, or, when the pin is gone from its suite, the newest of
/// its series there (recorded in the lock file, with a notice).
pub fn fetch(spec: &KernelSpec, cache: &Path, opts: &FetchOptions<'_>) -> Result<Kernel> {
    if let Some(kernel) = ready(&effective(spec, &Lockfile::load(cache)?), cache) {
        return Ok(kernel);
    }
    let kernels = cache.join("kernels");
    fs::create_dir_all(&kernels).map_err(Error::io(format!("creating {}", kernels.display())))?;
    let _guard = lock_exclusive(&kernels.join(".fetch.lock"), opts.quiet)?;
    // Another labctl may have fetched it, or fallen back, while this one
    // waited for the lock.
    let mut lock = Lockfile::load(cache)?;
    let current = effective(spec, &lock);
    if let Some(kernel) = ready(&current, cache) {
        return Ok(kernel);
    }
    if !opts.quiet {
        eprintln!("Fetching kernel {} ({} {} from Debian {})", spec.name, current.package, current.version, spec.suite);
    }
    let downloads = cache.join("downloads");
    fs::create_dir_all(&downloads).map_err(Error::io(format!("creating {}", downloads.display())))?;
    let mut apt = Apt { cache, suite: &spec.suite, opts, options: None };
    let (used, debs) = match download(&current, &downloads, &mut apt)? {
        Some(debs) => (current, debs),
        None => {
            let taken = apt.newest_of_series(spec)?;
            eprintln!("{}", fallback_notice(spec, &taken));
            let debs = download(&taken, &downloads, &mut apt)?.ok_or_else(|| {
                Error::Kernel(format!(
                    "{} {} vanished from Debian {} while fetching it",
                    taken.package, taken.version, spec.suite
                ))
            })?;
            lock.record(spec, &taken);
            lock.save(cache)?;
            (taken, debs)
        }
    };
    unpack(&used, &debs, &kernel_dir(cache, &used), opts.quiet)?;
    ready(&used, cache).ok_or_else(|| Error::Kernel(format!("kernel {} was unpacked but is not usable", spec.name)))
}

/// The .debs of `spec`, checked against its checksums; None when its
/// version is no longer in its suite.
fn download(spec: &KernelSpec, downloads: &Path, apt: &mut Apt<'_>) -> Result<Option<Vec<PathBuf>>> {
    let mut debs = Vec::new();
    for (package, sha256) in spec.debs() {
        let deb = downloads.join(deb_name(package, &spec.version));
        let wanted = format!("{package}={}", spec.version);
        let good = |deb: &Path| deb.is_file() && sha256_file(deb).is_ok_and(|s| s == sha256);
        if !good(&deb) {
            // The machine's own apt first: it needs no index of its own.
            let mut plain = Command::new("apt-get");
            plain.current_dir(downloads).args(["download", "-q", &wanted]);
            let _ = exec::output(&mut plain, apt.opts.quiet);
        }
        if !good(&deb) {
            if !apt.has(package, &spec.version)? {
                return Ok(None);
            }
            apt.download(&wanted, downloads)?;
            let actual = sha256_file(&deb)?;
            if actual != sha256 {
                return Err(Error::Kernel(format!(
                    "{} has sha256 {actual}, but {sha256} is expected; the download is corrupt or the pin is wrong",
                    deb.display()
                )));
            }
        }
        debs.push(deb);
    }
    Ok(Some(debs))
}

/// apt pointed at one suite through a private configuration, set up (and
/// its index updated) the first time it is needed.
struct Apt<'a> {
    cache: &'a Path,
    suite: &'a str,
    opts: &'a FetchOptions<'a>,
    options: Option<Vec<String>>,
}

impl Apt<'_> {
    fn options(&mut self) -> Result<Vec<String>> {
        if self.options.is_none() {
            self.options = Some(private_apt(self.suite, self.cache, self.opts.mirror, self.opts.quiet)?);
        }
        Ok(self.options.clone().unwrap_or_default())
    }

    /// `apt-cache show` of the given packages in the suite; a package the
    /// suite does not have is no error, just no stanza.
    fn show(&mut self, packages: &[String]) -> Result<Vec<Stanza>> {
        if packages.is_empty() {
            return Ok(Vec::new());
        }
        let mut cmd = Command::new("apt-cache");
        cmd.args(self.options()?).arg("show").args(packages);
        exec::announce(&cmd, self.opts.quiet);
        let out = cmd.output().map_err(|e| exec::spawn_error(&cmd, e))?;
        Ok(parse_stanzas(&String::from_utf8_lossy(&out.stdout)))
    }

    fn has(&mut self, package: &str, version: &str) -> Result<bool> {
        Ok(self.show(&[package.to_string()])?.iter().any(|s| s.version == version))
    }

    fn download(&mut self, wanted: &str, downloads: &Path) -> Result<()> {
        let mut cmd = Command::new("apt-get");
        cmd.current_dir(downloads).args(self.options()?).args(["download", "-q", wanted]);
        exec::output(&mut cmd, self.opts.quiet)
            .map_err(|e| Error::Kernel(format!("cannot download {wanted} from Debian {}: {e}", self.suite)))?;
        Ok(())
    }

    /// The newest kernel of `pinned`'s series and flavour in the suite.
    fn newest_of_series(&mut self, pinned: &KernelSpec) -> Result<KernelSpec> {
        let pattern = format!("^linux-(image|binary|modules)-[0-9].*-{}$", flavour(&pinned.release));
        let mut cmd = Command::new("apt-cache");
        cmd.args(self.options()?).args(["search", "--names-only", &pattern]);
        let out = exec::output(&mut cmd, self.opts.quiet)?;
        let names: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(String::from))
            .collect();
        let stanzas = self.show(&names)?;
        newest_of_series(&stanzas, pinned).ok_or_else(|| {
            Error::Kernel(format!(
                "kernel {}: {} {} is gone from Debian {}, and the suite has no other kernel of series {}; \
                 change its entry in vm/kernels.toml",
                pinned.name, pinned.package, pinned.version, pinned.suite, pinned.series
            ))
        })
    }
}

/// Unpacks `debs` into `dir` atomically: into a temporary directory beside
/// it, then renamed, so that a reader sees the whole tree or none of it.
fn unpack(spec: &KernelSpec, debs: &[PathBuf], dir: &Path, quiet: bool) -> Result<()> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".unpack-")
        .tempdir_in(parent)
        .map_err(Error::io(format!("creating a directory in {}", parent.display())))?;
    for deb in debs {
        exec::output(Command::new("dpkg-deb").arg("-x").arg(deb).arg(tmp.path()), quiet)?;
    }
    let root = tmp.path();
    if image_in(root, &spec.release).is_none() {
        return Err(Error::Kernel(format!(
            "{} holds no kernel image for {}",
            debs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(" and "),
            spec.release
        )));
    }
    // Newer packages put modules under usr/lib only; one path for both
    // layouts, and the one depmod looks at.
    if !root.join("lib").exists() && root.join("usr/lib/modules").is_dir() {
        std::os::unix::fs::symlink("usr/lib", root.join("lib")).map_err(Error::io("linking lib to usr/lib"))?;
    }
    // Debian's packages do not ship modules.dep (it is made when they are
    // installed); loading modules in the guest needs it.
    if root.join("lib/modules").join(&spec.release).join("kernel").is_dir() {
        let depmod = crate::tools::find("depmod");
        match depmod {
            Some(depmod) => {
                exec::output(Command::new(depmod).arg("-b").arg(root).arg(&spec.release), quiet)?;
            }
            None => eprintln!(
                "warning: depmod is missing (sudo apt-get install kmod): labs that load modules cannot run on kernel {}",
                spec.name
            ),
        }
    }
    let stamp = root.join(".sha256");
    fs::write(&stamp, stamp_text(spec)).map_err(Error::io(format!("writing {}", stamp.display())))?;
    if dir.exists() {
        fs::remove_dir_all(dir).map_err(Error::io(format!("removing {}", dir.display())))?;
    }
    let kept = tmp.keep();
    fs::rename(&kept, dir).map_err(|e| {
        let _ = fs::remove_dir_all(&kept);
        Error::Io { context: format!("renaming {} to {}", kept.display(), dir.display()), source: e }
    })
}

/// An exclusive lock on `path`, held until the guard is dropped; waits for
/// another labctl that holds it, but not forever.
fn lock_exclusive(path: &Path, quiet: bool) -> Result<nix::fcntl::Flock<fs::File>> {
    use nix::fcntl::{Flock, FlockArg};
    let started = Instant::now();
    let mut told = false;
    let mut file = fs::File::create(path).map_err(Error::io(format!("creating {}", path.display())))?;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(guard) => return Ok(guard),
            Err((f, nix::errno::Errno::EWOULDBLOCK)) => file = f,
            Err((_, e)) => return Err(Error::Io { context: format!("locking {}", path.display()), source: e.into() }),
        }
        if crate::INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::Interrupted);
        }
        if started.elapsed() > FETCH_LOCK_TIMEOUT {
            return Err(Error::Kernel(format!(
                "another labctl has been fetching kernels for {} s ({} is locked)",
                FETCH_LOCK_TIMEOUT.as_secs(),
                path.display()
            )));
        }
        if !told && !quiet {
            eprintln!("Waiting for another labctl that is fetching a kernel...");
            told = true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Writes `path` through a temporary file and a rename: never half a file.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    // A temporary name unique across processes and threads, not the pid.
    crate::files::write_atomic(path, bytes)
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = fs::File::open(path).map_err(Error::io(format!("opening {}", path.display())))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(Error::io(format!("reading {}", path.display())))?;
    Ok(hex::encode(hasher.finalize()))
}

/// The file name `apt-get download` gives a package.
fn deb_name(package: &str, version: &str) -> String {
    // apt writes the ':' of an epoch as %3a; kernels have none.
    format!("{package}_{}_amd64.deb", version.replace(':', "%3a"))
}

/// Options for apt-get that point it at `suite` through the Debian archive
/// URIs of the machine's own apt sources, with state of its own.
fn private_apt(suite: &str, cache: &Path, mirror: Option<&str>, quiet: bool) -> Result<Vec<String>> {
    let from_env = std::env::var("WORKBOOK_DEBIAN_MIRROR").ok().filter(|u| !u.is_empty());
    let uris = match mirror.map(str::to_string).or(from_env) {
        Some(uri) => vec![suite_uri(&uri, suite)],
        None => archive_uris_for(&debian_archive_uris(Path::new("/etc/apt")), suite),
    };
    if uris.is_empty() {
        return Err(Error::Kernel(format!(
            "this machine's apt has no Debian archive sources (Ubuntu?), so Debian {suite} cannot be reached through it.\n  \
             Give a Debian mirror URL (ending in /debian): labctl kernels --fetch --mirror URL (or WORKBOOK_DEBIAN_MIRROR=URL),\n  \
             or boot a kernel file of your own: --kernel /path/to/bzImage."
        )));
    }
    let root = cache.join("apt").join(suite);
    for sub in ["lists/partial", "archives/partial"] {
        fs::create_dir_all(root.join(sub)).map_err(Error::io(format!("creating {}", root.display())))?;
    }
    let keyring = "/usr/share/keyrings/debian-archive-keyring.gpg";
    let sources: String = uris.iter().map(|u| format!("deb [signed-by={keyring}] {u} {suite} main\n")).collect();
    let list = root.join("sources.list");
    fs::write(&list, sources).map_err(Error::io(format!("writing {}", list.display())))?;
    // A configuration file read after the machine's own (so its proxy
    // settings still apply): the suite's sources, and state of its own.
    let settings = [
        ("Dir::Etc::SourceList", list.display().to_string()),
        ("Dir::Etc::SourceParts", "/nonexistent".into()),
        ("Dir::State::Lists", root.join("lists").display().to_string()),
        ("Dir::Cache", root.display().to_string()),
        ("Dir::State::status", "/dev/null".into()),
        ("Debug::NoLocking", "true".into()),
        ("APT::Sandbox::User", "root".into()),
        // Only the package index: no translations, no AppStream metadata.
        ("Acquire::Languages", "none".into()),
        ("Acquire::IndexTargets::deb::DEP-11::DefaultEnabled", "false".into()),
        ("Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled", "false".into()),
        ("Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled", "false".into()),
        ("Acquire::IndexTargets::deb::DEP-11-icons-hidpi::DefaultEnabled", "false".into()),
    ];
    let conf = root.join("apt.conf");
    let text: String = settings.iter().map(|(key, value)| format!("{key} \"{value}\";\n")).collect();
    fs::write(&conf, text).map_err(Error::io(format!("writing {}", conf.display())))?;
    let options = vec!["-c".to_string(), conf.display().to_string()];
    exec::output(Command::new("apt-get").args(&options).args(["-q", "update"]), quiet)?;
    Ok(options)
}

/// A security suite (`bookworm-security`) lives in the `debian-security`
/// archive, beside `debian`.
fn is_security(suite: &str) -> bool {
    suite.ends_with("-security")
}

fn suite_uri(debian: &str, suite: &str) -> String {
    let base = debian.trim_end_matches('/');
    if is_security(suite) && !base.ends_with("-security") { format!("{base}-security") } else { base.to_string() }
}

/// Of the machine's Debian URIs, those that serve `suite`: its security
/// archive for a security suite (derived from the main archive's URIs when
/// the machine lists none), the main archive otherwise.
pub fn archive_uris_for(uris: &[String], suite: &str) -> Vec<String> {
    let security = |u: &String| u.trim_end_matches('/').ends_with("/debian-security");
    let direct: Vec<String> = uris.iter().filter(|u| security(u) == is_security(suite)).cloned().collect();
    if !direct.is_empty() || !is_security(suite) {
        return direct;
    }
    uris.iter().map(|u| suite_uri(u, suite)).collect()
}

/// The URIs of the Debian archive (and of its security archive; not third
/// parties) in the apt sources under `etc` (`sources.list`,
/// `sources.list.d/*.list|*.sources`).
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
                candidates
                    .into_iter()
                    .filter(|u| {
                        let u = u.trim_end_matches('/');
                        u.ends_with("/debian") || u.ends_with("/debian-security")
                    })
                    .map(String::from),
            );
        }
    }
    uris.into_iter().collect()
}

/// `text` (vm/kernels.toml) with the pins of the kernels in `taken`
/// replaced by theirs; comments and layout are kept.
pub fn update_pins(text: &str, taken: &[KernelSpec]) -> std::result::Result<String, String> {
    use toml_edit::{DocumentMut, Item, Value};
    let mut doc: DocumentMut = text.parse().map_err(|e| format!("not valid TOML: {e}"))?;
    let tables = doc.get_mut("kernel").and_then(Item::as_array_of_tables_mut).ok_or("no [[kernel]] tables")?;
    for spec in taken {
        let table = tables
            .iter_mut()
            .find(|t| t.get("name").and_then(Item::as_str) == Some(spec.name.as_str()))
            .ok_or_else(|| format!("no kernel named {:?}", spec.name))?;
        let mut set = |key: &str, value: Option<&String>| match (table.get_mut(key).and_then(Item::as_value_mut), value)
        {
            (Some(old), Some(new)) => {
                // Keep a comment written after the old value.
                let decor = old.decor().clone();
                *old = Value::from(new.as_str());
                *old.decor_mut() = decor;
            }
            (None, Some(new)) => {
                table.insert(key, toml_edit::value(new.as_str()));
            }
            (_, None) => {
                table.remove(key);
            }
        };
        set("package", Some(&spec.package));
        set("version", Some(&spec.version));
        set("sha256", Some(&spec.sha256));
        set("release", Some(&spec.release));
        set("modules_package", spec.modules_package.as_ref());
        set("modules_sha256", spec.modules_sha256.as_ref());
    }
    Ok(doc.to_string())
}

/// `labctl kernels`: lists the matrix; `fetch` downloads what is missing,
/// `update` also pins what was taken in place of vanished pins.
pub fn command(
    matrix_path: &Path,
    cache: &Path,
    fetch_missing: bool,
    update: bool,
    opts: &FetchOptions<'_>,
) -> Result<()> {
    let matrix = Matrix::load(matrix_path)?;
    if fetch_missing || update {
        for spec in &matrix.kernels {
            fetch(spec, cache, opts)?;
        }
    }
    if update {
        let mut lock = Lockfile::load(cache)?;
        let taken: Vec<KernelSpec> =
            matrix.kernels.iter().filter_map(|k| lock.fallback_for(k)).map(|f| f.taken.clone()).collect();
        if taken.is_empty() {
            println!("Every pin in {} is current.", matrix_path.display());
        } else {
            let text =
                fs::read_to_string(matrix_path).map_err(Error::io(format!("reading {}", matrix_path.display())))?;
            let updated =
                update_pins(&text, &taken).map_err(|e| Error::Kernel(format!("{}: {e}", matrix_path.display())))?;
            write_atomically(matrix_path, updated.as_bytes())?;
            for spec in &taken {
                println!("{}: pinned {} {} in {}", spec.name, spec.package, spec.version, matrix_path.display());
            }
            lock.fallbacks.retain(|f| !taken.iter().any(|t| t.name == f.name));
            lock.save(cache)?;
        }
    }
    let matrix = Matrix::load(matrix_path)?;
    for spec in &matrix.kernels {
        let state = state(spec, cache)?;
        let default = if spec.name == matrix.default { ", default" } else { "" };
        let fetched = if state.fetched { "fetched" } else { "not fetched" };
        println!("{:<6} {:<18} {fetched}: {}{default}", spec.name, spec.suite, state.describe());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, series: &str, release: &str, version: &str) -> KernelSpec {
        KernelSpec {
            name: name.into(),
            suite: "bookworm-security".into(),
            series: series.into(),
            package: format!("linux-image-{release}"),
            version: version.into(),
            sha256: "0".repeat(64),
            release: release.into(),
            modules_package: None,
            modules_sha256: None,
        }
    }

    fn stanza(package: &str, version: &str, sha: char) -> Stanza {
        Stanza { package: package.into(), version: version.into(), sha256: sha.to_string().repeat(64) }
    }

    #[test]
    fn debian_versions_order_like_dpkg() {
        let less = [
            ("6.1.27-1", "6.1.192-2"),
            ("6.1.192-1", "6.1.192-2"),
            ("5.10.218-1", "5.10.223-1"),
            ("7.2.12-1~bpo13+1", "7.3.4-1~bpo13+1"),
            ("7.3.4-1~bpo13+1", "7.3.4-1"),
            ("1.0~rc1", "1.0"),
            ("1.0", "1.0a"),
            ("1.0a", "1.0+b1"),
            ("9.9", "1:0.1"),
            ("6.12.117-1~deb12u1", "6.12.117-1"),
        ];
        for (a, b) in less {
            assert_eq!(compare_versions(a, b), Ordering::Less, "{a} < {b}");
            assert_eq!(compare_versions(b, a), Ordering::Greater, "{b} > {a}");
        }
        assert_eq!(compare_versions("6.1.0010-1", "6.1.10-1"), Ordering::Equal);
    }

    #[test]
    fn series_match_whole_version_parts() {
        assert!(in_series("6.1.192-2", "6.1"));
        assert!(!in_series("6.12.117-1", "6.1"));
        assert!(in_series("7.3.4-1~bpo13+1", "7"));
        assert!(in_series("7.3.4-1~bpo13+1", "7.3"));
        assert!(!in_series("17.0.1-1", "7"));
        assert_eq!(abi("6.1.0-56-cloud-amd64"), "6.1.0-56");
        assert_eq!(abi("7.3.4+deb13-cloud-amd64"), "7.3.4+deb13");
        assert_eq!(flavour("7.3.4+deb13-cloud-amd64"), "cloud-amd64");
    }

    /// What `apt-cache show` prints for bookworm-security, shortened.
    const BOOKWORM_SECURITY: &str = "\
Package: linux-image-6.1.0-56-cloud-amd64
Source: linux-signed-amd64 (6.1.192+2)
Version: 6.1.192-2
Depends: kmod,
 linux-base (>= 4.3~)
SHA256: 5555555555555555555555555555555555555555555555555555555555555555
Description: Linux 6.1 for x86-64 cloud (signed)

Package: linux-image-6.1.0-57-cloud-amd64
Version: 6.1.194-1
SHA256: 7777777777777777777777777777777777777777777777777777777777777777

Package: linux-image-6.1.0-57-cloud-amd64-dbg
Version: 6.1.194-1
SHA256: dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd

Package: linux-image-6.12.117+deb12-cloud-amd64
Version: 6.12.117-1~deb12u1
SHA256: cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc

Package: linux-image-6.12-cloud-amd64
Version: 6.12.117-1~deb12u1
SHA256: eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee

Package: linux-image-6.1.0-55-rt-amd64
Version: 6.1.199-1
SHA256: ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff
";

    #[test]
    fn the_newest_of_the_series_and_flavour_is_chosen_from_apt_cache_show() {
        let stanzas = parse_stanzas(BOOKWORM_SECURITY);
        assert_eq!(stanzas.len(), 6);
        assert_eq!(stanzas[0], stanza("linux-image-6.1.0-56-cloud-amd64", "6.1.192-2", '5'));
        let pinned = spec("6.1", "6.1", "6.1.0-9-cloud-amd64", "6.1.27-1");
        let taken = newest_of_series(&stanzas, &pinned).unwrap();
        assert_eq!(taken.package, "linux-image-6.1.0-57-cloud-amd64");
        assert_eq!(taken.version, "6.1.194-1");
        assert_eq!(taken.release, "6.1.0-57-cloud-amd64");
        assert_eq!(taken.sha256, "7".repeat(64));
        assert_eq!((taken.name.as_str(), taken.series.as_str(), taken.modules_package), ("6.1", "6.1", None));
        // 6.12 is its own series, and its meta package is no kernel.
        let pinned = spec("6.12", "6.12", "6.12.100+deb12-cloud-amd64", "6.12.100-1~deb12u1");
        assert_eq!(newest_of_series(&stanzas, &pinned).unwrap().package, "linux-image-6.12.117+deb12-cloud-amd64");
        assert!(newest_of_series(&stanzas, &spec("5.10", "5.10", "5.10.0-1-cloud-amd64", "5.10.1-1")).is_none());
    }

    #[test]
    fn in_the_7x_layout_the_image_and_modules_come_from_binary_and_modules_packages() {
        let stanzas = vec![
            stanza("linux-image-7.3.4+deb13-cloud-amd64", "7.3.4-1~bpo13+1", 'a'),
            stanza("linux-binary-7.3.4+deb13-cloud-amd64", "7.3.4-1~bpo13+1", 'b'),
            stanza("linux-modules-7.3.4+deb13-cloud-amd64", "7.3.4-1~bpo13+1", 'c'),
            stanza("linux-binary-unsigned-7.3.4+deb13-cloud-amd64", "7.3.4-1~bpo13+1", 'd'),
            stanza("linux-binary-7.2.12+deb13-cloud-amd64", "7.2.12-1~bpo13+1", 'e'),
            stanza("linux-image-6.19.14+deb13-cloud-amd64", "6.19.14-1~bpo13+1", 'f'),
        ];
        let mut pinned = spec("7.x", "7", "7.2.12+deb13-cloud-amd64", "7.2.12-1~bpo13+1");
        pinned.suite = "trixie-backports".into();
        let taken = newest_of_series(&stanzas, &pinned).unwrap();
        assert_eq!(taken.package, "linux-binary-7.3.4+deb13-cloud-amd64");
        assert_eq!(taken.sha256, "b".repeat(64));
        assert_eq!(taken.modules_package.as_deref(), Some("linux-modules-7.3.4+deb13-cloud-amd64"));
        assert_eq!(taken.modules_sha256, Some("c".repeat(64)));
        assert_eq!(taken.release, "7.3.4+deb13-cloud-amd64");
        assert_eq!(
            fallback_notice(&pinned, &taken),
            "7.x: 7.2.12+deb13 is gone from trixie-backports; using 7.3.4+deb13 (7.3.4-1~bpo13+1); \
             `labctl kernels --update` pins it"
        );
    }

    #[test]
    fn the_notice_is_one_line_naming_both_kernels() {
        let pinned = spec("6.1", "6.1", "6.1.0-56-cloud-amd64", "6.1.192-2");
        let taken = spec("6.1", "6.1", "6.1.0-57-cloud-amd64", "6.1.194-1");
        assert_eq!(
            fallback_notice(&pinned, &taken),
            "6.1: 6.1.0-56 is gone from bookworm-security; using 6.1.0-57 (6.1.194-1); `labctl kernels --update` pins it"
        );
    }

    const MATRIX: &str = r#"# The matrix.
default = "6.1"

[[kernel]]
name = "6.1"
suite = "bookworm-security"
series = "6.1"
# The image.
package = "linux-image-6.1.0-56-cloud-amd64"
version = "6.1.192-2"   # rots every few weeks
sha256 = "5555555555555555555555555555555555555555555555555555555555555555"
release = "6.1.0-56-cloud-amd64"

[[kernel]]
name = "7.x"
suite = "trixie-backports"
series = "7"
package = "linux-image-7.2.12+deb13-cloud-amd64"
version = "7.2.12-1~bpo13+1"
sha256 = "2222222222222222222222222222222222222222222222222222222222222222"
release = "7.2.12+deb13-cloud-amd64"
"#;

    #[test]
    fn updating_pins_rewrites_only_them_and_keeps_comments() {
        let mut six = spec("6.1", "6.1", "6.1.0-57-cloud-amd64", "6.1.194-1");
        six.sha256 = "7".repeat(64);
        let mut seven = spec("7.x", "7", "7.3.4+deb13-cloud-amd64", "7.3.4-1~bpo13+1");
        seven.package = "linux-binary-7.3.4+deb13-cloud-amd64".into();
        seven.modules_package = Some("linux-modules-7.3.4+deb13-cloud-amd64".into());
        seven.modules_sha256 = Some("c".repeat(64));
        let text = update_pins(MATRIX, &[six.clone(), seven.clone()]).unwrap();
        assert!(text.starts_with("# The matrix.\n"), "{text}");
        assert!(text.contains("# The image.\npackage = \"linux-image-6.1.0-57-cloud-amd64\""), "{text}");
        assert!(text.contains("version = \"6.1.194-1\"   # rots every few weeks"), "{text}");
        let matrix: Matrix = toml::from_str(&text).unwrap();
        matrix.validate().unwrap();
        assert_eq!(matrix.get("6.1").unwrap(), &KernelSpec { suite: "bookworm-security".into(), ..six });
        assert_eq!(matrix.get("7.x").unwrap(), &KernelSpec { suite: "trixie-backports".into(), ..seven });
        // Back to a single package: the modules fields go.
        let single = spec("7.x", "7", "7.2.12+deb13-cloud-amd64", "7.2.12-1~bpo13+1");
        let text = update_pins(&text, &[single]).unwrap();
        assert!(!text.contains("modules_"), "{text}");
        assert!(update_pins(MATRIX, &[spec("4.19", "4.19", "4.19.0-1-cloud-amd64", "4.19.1-1")]).is_err());
    }

    #[test]
    fn a_matrix_is_validated() {
        let bad = MATRIX.replace("series = \"6.1\"", "series = \"6.12\"");
        let err = toml::from_str::<Matrix>(&bad).unwrap().validate().unwrap_err();
        assert!(err.contains("not of series 6.12"), "{err}");
        let bad = MATRIX.replace("name = \"7.x\"", "name = \"all\"");
        assert!(toml::from_str::<Matrix>(&bad).unwrap().validate().unwrap_err().contains("reserved"));
        let bad = MATRIX.replace("release = \"7.2.12+deb13-cloud-amd64\"", "modules_package = \"x\"\nrelease = \"r\"");
        assert!(toml::from_str::<Matrix>(&bad).unwrap().validate().unwrap_err().contains("go together"));
    }

    #[test]
    fn the_lock_file_round_trips_and_applies_only_to_the_pin_it_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let pinned = spec("6.1", "6.1", "6.1.0-56-cloud-amd64", "6.1.192-2");
        let taken = spec("6.1", "6.1", "6.1.0-57-cloud-amd64", "6.1.194-1");
        let mut lock = Lockfile::load(dir.path()).unwrap();
        assert_eq!(effective(&pinned, &lock), pinned);
        lock.record(&pinned, &taken);
        lock.save(dir.path()).unwrap();
        let lock = Lockfile::load(dir.path()).unwrap();
        assert_eq!(effective(&pinned, &lock), taken);
        let repinned = KernelSpec { version: "6.1.195-1".into(), ..pinned.clone() };
        assert_eq!(effective(&repinned, &lock), repinned);
        let state = state(&pinned, dir.path()).unwrap();
        assert!(state.fell_back && !state.fetched);
        assert!(
            state.describe().starts_with("6.1.0-57 (6.1.194-1), fallen back from 6.1.0-56"),
            "{}",
            state.describe()
        );
    }

    #[test]
    fn an_unpacked_kernel_is_ready_only_with_the_checksums_of_its_spec() {
        let cache = tempfile::tempdir().unwrap();
        let mut k = spec("7.x", "7", "7.3.4+deb13-cloud-amd64", "7.3.4-1~bpo13+1");
        k.modules_package = Some("linux-modules-7.3.4+deb13-cloud-amd64".into());
        k.modules_sha256 = Some("c".repeat(64));
        let dir = kernel_dir(cache.path(), &k);
        fs::create_dir_all(dir.join("usr/lib/modules/7.3.4+deb13-cloud-amd64")).unwrap();
        fs::write(dir.join("usr/lib/modules/7.3.4+deb13-cloud-amd64/vmlinuz"), "").unwrap();
        assert!(ready(&k, cache.path()).is_none());
        fs::write(dir.join(".sha256"), stamp_text(&k)).unwrap();
        let kernel = ready(&k, cache.path()).unwrap();
        assert!(kernel.image.ends_with("usr/lib/modules/7.3.4+deb13-cloud-amd64/vmlinuz"));
        assert!(kernel.modules_dir.unwrap().ends_with("lib/modules/7.3.4+deb13-cloud-amd64"));
        k.modules_sha256 = Some("d".repeat(64));
        assert!(ready(&k, cache.path()).is_none());
    }

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
        let uris = debian_archive_uris(dir.path());
        assert_eq!(
            uris,
            vec!["http://example.test/debian", "http://mirror.test/debian", "http://mirror.test/debian-security"]
        );
        assert_eq!(archive_uris_for(&uris, "trixie"), vec!["http://example.test/debian", "http://mirror.test/debian"]);
        assert_eq!(archive_uris_for(&uris, "bookworm-security"), vec!["http://mirror.test/debian-security"]);
        // No security source listed: the security archive beside the main one.
        assert_eq!(archive_uris_for(&uris[..1], "bookworm-security"), vec!["http://example.test/debian-security"]);
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

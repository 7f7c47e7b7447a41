//! The guest's initramfs: the agent as `/init`, busybox, the tools labs
//! use with their shared libraries, the lab's binaries and its plan.
//!
//! The image is two cpio archives back to back, which the kernel unpacks
//! in turn: a base that rarely changes and a small per-run part. Both are
//! named by the hash of their contents, so an unchanged lab boots the very
//! file it booted last time.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufWriter, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::exec;

/// Where a file's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Host(PathBuf),
    Bytes(Vec<u8>),
    Symlink(String),
    Dir,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub source: Source,
    /// Permission bits.
    pub mode: u32,
}

/// A set of guest paths (relative, no leading `/`) and what they hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Archive {
    pub entries: BTreeMap<String, Entry>,
}

fn guest_key(path: &str) -> String {
    path.trim_start_matches('/').to_string()
}

impl Archive {
    fn add(&mut self, path: &str, entry: Entry) {
        let key = guest_key(path);
        // Parents first: the kernel does not create missing directories.
        let mut parent = Path::new(&key).parent();
        while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
            self.entries.entry(p.to_string_lossy().into_owned()).or_insert(Entry { source: Source::Dir, mode: 0o755 });
            parent = p.parent();
        }
        self.entries.insert(key, entry);
    }

    pub fn dir(&mut self, path: &str) {
        self.add(path, Entry { source: Source::Dir, mode: 0o755 });
    }

    pub fn file(&mut self, path: &str, host: &Path, mode: u32) {
        self.add(path, Entry { source: Source::Host(host.to_path_buf()), mode });
    }

    pub fn bytes(&mut self, path: &str, data: impl Into<Vec<u8>>, mode: u32) {
        self.add(path, Entry { source: Source::Bytes(data.into()), mode });
    }

    pub fn symlink(&mut self, path: &str, target: &str) {
        self.add(path, Entry { source: Source::Symlink(target.to_string()), mode: 0o777 });
    }

    pub fn contains(&self, path: &str) -> bool {
        self.entries.contains_key(&guest_key(path))
    }

    /// Hash of every path, mode and content: the archive's cache name.
    pub fn content_hash(&self) -> Result<String> {
        let mut h = Sha256::new();
        h.update(b"workbook-initramfs-v1\0");
        for (path, entry) in &self.entries {
            h.update(path.as_bytes());
            h.update(entry.mode.to_le_bytes());
            match &entry.source {
                Source::Dir => h.update(b"\0dir"),
                Source::Symlink(t) => {
                    h.update(b"\0link");
                    h.update(t.as_bytes());
                }
                Source::Bytes(b) => {
                    h.update(b"\0bytes");
                    h.update(b);
                }
                Source::Host(p) => {
                    h.update(b"\0file");
                    h.update(fs::read(p).map_err(Error::io(format!("reading {}", p.display())))?);
                }
            }
        }
        Ok(hex::encode(h.finalize()))
    }

    /// Writes the archive in the `newc` format the kernel unpacks.
    pub fn write_cpio(&self, out: impl Write) -> Result<()> {
        let mut out = out;
        let io = |e: std::io::Error| Error::Io { context: "writing the initramfs".into(), source: e };
        for (ino, (path, entry)) in self.entries.iter().enumerate() {
            let (kind, data): (u32, Vec<u8>) = match &entry.source {
                Source::Dir => (0o040000, Vec::new()),
                Source::Symlink(t) => (0o120000, t.as_bytes().to_vec()),
                Source::Bytes(b) => (0o100000, b.clone()),
                Source::Host(p) => (0o100000, fs::read(p).map_err(Error::io(format!("reading {}", p.display())))?),
            };
            let size =
                u32::try_from(data.len()).map_err(|_| Error::Usage(format!("{path} is too large for an initramfs")))?;
            let mut w = cpio::newc::Builder::new(path)
                .ino(ino as u32 + 1)
                .mode(kind | entry.mode)
                .nlink(if kind == 0o040000 { 2 } else { 1 })
                .write(out, size);
            w.write_all(&data).map_err(io)?;
            out = w.finish().map_err(io)?;
        }
        cpio::newc::trailer(out).map_err(io)?;
        Ok(())
    }

    /// Adds an ELF file and the shared libraries it needs, found with ldd.
    pub fn elf_with_libs(&mut self, guest: &str, host: &Path, cache: &Path) -> Result<()> {
        let stripped = stripped_copy(host, cache)?;
        self.file(guest, &stripped, 0o755);
        for lib in shared_libraries(host)? {
            if !self.contains(&lib.to_string_lossy()) {
                let real = fs::canonicalize(&lib).map_err(Error::io(format!("resolving {}", lib.display())))?;
                self.file(&lib.to_string_lossy(), &real, 0o755);
            }
        }
        Ok(())
    }
}

/// Libraries `ldd` reports for `binary`, including the dynamic loader;
/// none for a static binary.
pub fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>> {
    let mut cmd = Command::new("ldd");
    cmd.arg(binary);
    let out = cmd.output().map_err(|e| exec::spawn_error(&cmd, e))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        if text.contains("not a dynamic executable") || String::from_utf8_lossy(&out.stderr).contains("not a dynamic") {
            return Ok(Vec::new());
        }
        return Err(Error::Command {
            command: exec::display(&cmd),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(parse_ldd(&text))
}

/// `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)` and
/// `/lib64/ld-linux-x86-64.so.2 (0x…)`; the vDSO has no file.
pub fn parse_ldd(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let path = match line.split_once("=>") {
                Some((_, rest)) => rest.split_whitespace().next()?,
                None => line.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// A copy of `binary` without debug info, cached by path, size and mtime:
/// debug builds are tens of MB, and every byte is unpacked at each boot.
pub fn stripped_copy(binary: &Path, cache: &Path) -> Result<PathBuf> {
    if binary.starts_with(cache.join("binaries")) {
        return Ok(binary.to_path_buf());
    }
    let meta = fs::metadata(binary).map_err(Error::io(format!("reading {}", binary.display())))?;
    let mut h = Sha256::new();
    h.update(binary.as_os_str().as_encoded_bytes());
    h.update(meta.len().to_le_bytes());
    h.update(meta.mtime().to_le_bytes());
    h.update(meta.mtime_nsec().to_le_bytes());
    // The copy keeps the binary's name: it becomes /lab/bin/<name>.
    let dir = cache.join("binaries").join(hex::encode(&h.finalize()[..16]));
    let out = dir.join(binary.file_name().unwrap_or_default());
    if out.is_file() {
        return Ok(out);
    }
    fs::create_dir_all(&dir).map_err(Error::io(format!("creating {}", dir.display())))?;
    // Unique per process and thread: two runs may strip the same binary at
    // once, and threads of one labctl share its pid.
    let tmp = tempfile::Builder::new()
        .prefix(".strip")
        .tempfile_in(&dir)
        .map_err(Error::io(format!("creating a temporary file in {}", dir.display())))?
        .into_temp_path();
    let mut cmd = Command::new("strip");
    cmd.arg("--strip-debug").arg("-o").arg(&tmp).arg(binary);
    match cmd.output() {
        Ok(o) if o.status.success() => {}
        // Not an object strip understands, or no strip: ship it as it is.
        _ => {
            fs::copy(binary, &tmp).map_err(Error::io(format!("copying {}", binary.display())))?;
        }
    }
    tmp.persist(&out).map_err(|e| Error::Io { context: format!("writing {}", out.display()), source: e.error })?;
    Ok(out)
}

/// A host program the guest needs: where it is on the host and where it
/// goes in the guest.
pub struct Tool {
    pub guest: &'static str,
    pub candidates: &'static [&'static str],
    pub package: &'static str,
}

/// The tools every guest has besides busybox.
pub const TOOLS: &[Tool] = &[
    Tool { guest: "/usr/bin/strace", candidates: &["/usr/bin/strace"], package: "strace" },
    Tool { guest: "/usr/sbin/bpftool", candidates: &["/usr/sbin/bpftool", "/sbin/bpftool"], package: "bpftool" },
    Tool {
        guest: "/sbin/ip",
        candidates: &["/usr/bin/ip", "/bin/ip", "/sbin/ip", "/usr/sbin/ip"],
        package: "iproute2",
    },
    Tool { guest: "/sbin/tc", candidates: &["/usr/sbin/tc", "/sbin/tc"], package: "iproute2" },
];

pub const BUSYBOX: Tool =
    Tool { guest: "/bin/busybox", candidates: &["/bin/busybox", "/usr/bin/busybox"], package: "busybox-static" };

pub fn find_tool(tool: &Tool) -> Result<PathBuf> {
    tool.candidates.iter().map(PathBuf::from).find(|p| p.is_file()).ok_or_else(|| Error::Missing {
        what: format!("{} (for the guest's {})", tool.candidates[0], tool.guest),
        fix: format!("sudo apt-get install {}   (or run ./setup.sh)", tool.package),
    })
}

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nstudent:x:1000:1000:student:/tmp:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &str = "root:x:0:\nstudent:x:1000:\nnogroup:x:65534:\n";

/// Whether `path` is an ELF file (a program or library, which needs its
/// shared libraries in the guest).
pub fn is_elf(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    fs::File::open(path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic)).is_ok() && magic == *b"\x7fELF"
}

/// Where the grader's workload tool lives in the guest.
pub const WORKLOAD_GUEST: &str = "/usr/bin/wb-workload";

/// The part of the image shared by every lab: agent, workload tool,
/// busybox, tools.
pub fn base_archive(guest: &crate::builder::GuestPrograms, cache: &Path) -> Result<Archive> {
    let agent = &guest.agent;
    let mut a = Archive::default();
    for dir in ["proc", "sys", "dev", "tmp", "run", "root", "etc", "var", "lab/bin", "workbook", "sys/fs/bpf"] {
        a.dir(dir);
    }
    a.bytes("etc/passwd", PASSWD, 0o644);
    a.bytes("etc/group", GROUP, 0o644);
    a.bytes("etc/hostname", "workbook\n", 0o644);
    a.elf_with_libs("/init", agent, cache)?;
    a.elf_with_libs(WORKLOAD_GUEST, &guest.workload, cache)?;
    let busybox = find_tool(&BUSYBOX)?;
    a.file(BUSYBOX.guest, &busybox, 0o755);
    let real_tools: Vec<&str> = TOOLS.iter().map(|t| t.guest.trim_start_matches('/')).collect();
    for applet in busybox_applets(&busybox)? {
        if !real_tools.contains(&applet.as_str()) && applet != "bin/busybox" {
            a.symlink(&applet, "/bin/busybox");
        }
    }
    for tool in TOOLS {
        let host = find_tool(tool)?;
        a.elf_with_libs(tool.guest, &host, cache)?;
    }
    Ok(a)
}

/// `busybox --list-full`: applet paths such as `bin/ls`, `usr/bin/awk`.
fn busybox_applets(busybox: &Path) -> Result<Vec<String>> {
    let mut cmd = Command::new(busybox);
    cmd.arg("--list-full");
    let out = exec::output(&mut cmd, true)?;
    Ok(String::from_utf8_lossy(&out.stdout).lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect())
}

/// Writes `base` then `extra` into one initrd named by both hashes, unless
/// it exists already. Old images are pruned so the cache stays small.
pub fn build_initrd(cache: &Path, base: &Archive, extra: &Archive) -> Result<PathBuf> {
    let dir = cache.join("images");
    fs::create_dir_all(&dir).map_err(Error::io(format!("creating {}", dir.display())))?;
    let base_hash = base.content_hash()?;
    let extra_hash = extra.content_hash()?;
    let path = dir.join(format!("initrd-{}-{}.cpio", &base_hash[..16], &extra_hash[..16]));
    if path.is_file() {
        // A hit counts as a use: pruning goes by age, and this run is
        // about to boot it.
        let _ = fs::File::options().append(true).open(&path).and_then(|f| f.set_modified(SystemTime::now()));
        return Ok(path);
    }
    let base_path = dir.join(format!("base-{}.cpio", &base_hash[..16]));
    if !base_path.is_file() {
        write_atomically(&base_path, |w| base.write_cpio(w))?;
    }
    let base_bytes = fs::read(&base_path).map_err(Error::io(format!("reading {}", base_path.display())))?;
    write_atomically(&path, |w| {
        w.write_all(&base_bytes).map_err(Error::io("writing the initramfs"))?;
        extra.write_cpio(w)
    })?;
    prune(&dir, 24);
    Ok(path)
}

fn write_atomically(path: &Path, write: impl FnOnce(&mut BufWriter<fs::File>) -> Result<()>) -> Result<()> {
    crate::files::write_atomic_with(path, write)
}

/// How long an image is safe from pruning after its last use: longer than
/// any run, so that an image another labctl just took from the cache is
/// still there when its QEMU opens it.
const PRUNE_GRACE: Duration = Duration::from_secs(3600);

/// Keeps the `keep` most recently used initrds, and every one used within
/// [`PRUNE_GRACE`].
fn prune(dir: &Path, keep: usize) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    let mut images: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("initrd-"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    images.sort();
    let excess = images.len().saturating_sub(keep);
    let now = SystemTime::now();
    for (used, path) in images.into_iter().take(excess) {
        if now.duration_since(used).is_ok_and(|age| age > PRUNE_GRACE) {
            let _ = fs::remove_file(path);
        }
    }
}

/// Kernel modules to ship: each named module and what it depends on, in
/// load order, read from the kernel's `modules.dep`.
pub fn module_closure(modules_dir: &Path, names: &[String]) -> Result<Vec<String>> {
    let dep_file = modules_dir.join("modules.dep");
    let text = fs::read_to_string(&dep_file).map_err(Error::io(format!("reading {}", dep_file.display())))?;
    let deps: BTreeMap<String, (String, Vec<String>)> = text
        .lines()
        .filter_map(|line| {
            let (module, rest) = line.split_once(':')?;
            let name = module_name(module);
            Some((name, (module.to_string(), rest.split_whitespace().map(String::from).collect())))
        })
        .collect();
    let by_path: BTreeMap<&str, &str> = deps.iter().map(|(n, (p, _))| (p.as_str(), n.as_str())).collect();
    let mut order = Vec::new();
    fn visit(
        name: &str,
        deps: &BTreeMap<String, (String, Vec<String>)>,
        by_path: &BTreeMap<&str, &str>,
        order: &mut Vec<String>,
    ) -> std::result::Result<(), String> {
        let (path, needs) = deps.get(name).ok_or_else(|| format!("no module named {name:?} in this kernel"))?;
        if order.contains(path) {
            return Ok(());
        }
        for dep in needs {
            let dep_name = by_path.get(dep.as_str()).copied().unwrap_or(dep.as_str());
            visit(dep_name, deps, by_path, order)?;
        }
        order.push(path.clone());
        Ok(())
    }
    for name in names {
        visit(&name.replace('-', "_"), &deps, &by_path, &mut order)
            .map_err(|e| Error::Kernel(format!("{e} ({})", dep_file.display())))?;
    }
    Ok(order)
}

/// `kernel/drivers/net/veth.ko.xz` -> `veth`.
fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.split(".ko").next().unwrap_or(file).replace('-', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruning_spares_images_used_lately_and_a_cache_hit_counts_as_a_use() {
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join("images");
        fs::create_dir_all(&images).unwrap();
        let old = SystemTime::now() - Duration::from_secs(2 * 3600);
        for i in 0..4 {
            let p = images.join(format!("initrd-old{i}.cpio"));
            fs::write(&p, "x").unwrap();
            fs::File::options().append(true).open(&p).unwrap().set_modified(old).unwrap();
        }
        fs::write(images.join("initrd-fresh.cpio"), "x").unwrap();
        prune(&images, 1);
        let mut left: Vec<String> =
            fs::read_dir(&images).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        // Over the limit, only the old ones go: the fresh one is in its grace.
        assert_eq!(left, ["initrd-fresh.cpio"]);

        // A hit on an old image makes it fresh again.
        let mut base = Archive::default();
        base.bytes("/init", b"#!/bin/sh\n".to_vec(), 0o755);
        let first = build_initrd(dir.path(), &base, &Archive::default()).unwrap();
        fs::File::options().append(true).open(&first).unwrap().set_modified(old).unwrap();
        let again = build_initrd(dir.path(), &base, &Archive::default()).unwrap();
        assert_eq!(first, again);
        let age = SystemTime::now().duration_since(fs::metadata(&again).unwrap().modified().unwrap()).unwrap();
        assert!(age < Duration::from_secs(60), "the hit did not refresh the image: {age:?}");
    }

    #[test]
    fn parents_are_added_before_children() {
        let mut a = Archive::default();
        a.bytes("/lab/bin/hello", "x", 0o755);
        let keys: Vec<_> = a.entries.keys().cloned().collect();
        assert_eq!(keys, vec!["lab", "lab/bin", "lab/bin/hello"]);
        assert_eq!(a.entries["lab"].source, Source::Dir);
    }

    #[test]
    fn ldd_output_gives_libraries_and_loader_but_not_the_vdso() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibelf.so.1 => /lib/x86_64-linux-gnu/libelf.so.1 (0x7f)\n\t/lib64/ld-linux-x86-64.so.2 (0x7f)\n";
        assert_eq!(
            parse_ldd(text),
            vec![PathBuf::from("/lib/x86_64-linux-gnu/libelf.so.1"), PathBuf::from("/lib64/ld-linux-x86-64.so.2")]
        );
    }

    #[test]
    fn cpio_round_trips_files_links_and_dirs() {
        let mut a = Archive::default();
        a.bytes("workbook/plan.json", "{}", 0o644);
        a.symlink("bin/sh", "/bin/busybox");
        let mut buf = Vec::new();
        a.write_cpio(&mut buf).unwrap();
        let mut seen = Vec::new();
        let mut reader = &buf[..];
        loop {
            let entry = cpio::newc::Reader::new(reader).unwrap();
            if entry.entry().is_trailer() {
                break;
            }
            seen.push((entry.entry().name().to_string(), entry.entry().mode() & 0o170000, entry.entry().file_size()));
            reader = entry.finish().unwrap();
        }
        assert_eq!(
            seen,
            vec![
                ("bin".into(), 0o040000, 0),
                ("bin/sh".into(), 0o120000, 12),
                ("workbook".into(), 0o040000, 0),
                ("workbook/plan.json".into(), 0o100000, 2)
            ]
        );
    }

    #[test]
    fn the_hash_changes_with_content_and_only_with_it() {
        let mut a = Archive::default();
        a.bytes("x", "1", 0o644);
        let same = a.clone();
        let mut b = Archive::default();
        b.bytes("x", "2", 0o644);
        assert_eq!(a.content_hash().unwrap(), same.content_hash().unwrap());
        assert_ne!(a.content_hash().unwrap(), b.content_hash().unwrap());
    }

    #[test]
    fn module_closure_puts_dependencies_first() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("modules.dep"),
            "kernel/net/sched/cls_bpf.ko: kernel/net/sched/sch_x.ko\nkernel/net/sched/sch_x.ko:\nkernel/drivers/net/veth.ko:\n",
        )
        .unwrap();
        let order = module_closure(dir.path(), &["cls_bpf".into(), "veth".into()]).unwrap();
        assert_eq!(
            order,
            vec!["kernel/net/sched/sch_x.ko", "kernel/net/sched/cls_bpf.ko", "kernel/drivers/net/veth.ko"]
        );
        let err = module_closure(dir.path(), &["nope".into()]).unwrap_err().to_string();
        assert!(err.contains("nope") && err.contains("modules.dep"), "{err}");
    }
}

//! `labctl run`: any command in the lab VM, with the host files it names
//! copied in, the way a developer tests an eBPF tool on a kernel the host
//! does not run.
//!
//! Every host file or directory the command names (beyond a bare program
//! name, which the guest's PATH resolves), and each `--copy PATH`, lands
//! under [`WORK_DIR`] with its layout relative to the current directory
//! kept; that directory is the command's working directory, so relative
//! paths mean in the guest what they meant on the host.

use std::path::{Component, Path, PathBuf};

use workbook_agent::{Plan, Step};

use crate::error::{Error, Result};

/// Where copied host files live in the guest, and where the command runs.
pub const WORK_DIR: &str = "/lab/work";

/// The step to run and the host files to ship, by guest path.
#[derive(Debug, Clone, PartialEq)]
pub struct RunPlan {
    pub plan: Plan,
    pub files: Vec<(String, PathBuf)>,
}

/// Host paths that are never copied: they are the host kernel's views,
/// and the guest has its own.
fn is_kernel_view(p: &Path) -> bool {
    ["/proc", "/sys", "/dev"].iter().any(|v| p.starts_with(v))
}

/// `path` without `.` and `..`, read against `cwd`, without touching the
/// file system (a symlink keeps the name the user gave).
fn lexical(cwd: &Path, path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in cwd.join(path).components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The guest path for host `path`: its place under the working directory
/// when it is inside `cwd`, else its name alone.
fn guest_path(cwd: &Path, path: &Path) -> String {
    let abs = lexical(cwd, path);
    let rel = match abs.strip_prefix(cwd) {
        Ok(rel) if !rel.as_os_str().is_empty() => rel.to_path_buf(),
        _ => PathBuf::from(abs.file_name().unwrap_or_default()),
    };
    format!("{WORK_DIR}/{}", rel.display())
}

/// Builds the plan for `command`. `in_guest` says whether the guest image
/// has a path itself (its busybox, strace, bpftool): those are not copied.
pub fn run_plan(
    command: &[String],
    copies: &[PathBuf],
    cwd: &Path,
    timeout: f64,
    in_guest: impl Fn(&str) -> bool,
) -> Result<RunPlan> {
    let mut files = Vec::new();
    let add = |host: &Path, guest: String, files: &mut Vec<(String, PathBuf)>| -> Result<()> {
        if host.is_dir() {
            for rel in crate::builder::files_under(host)? {
                files.push((format!("{guest}/{}", rel.display()), host.join(rel)));
            }
        } else {
            files.push((guest, host.to_path_buf()));
        }
        Ok(())
    };
    for c in copies {
        let host = lexical(cwd, c);
        if !host.exists() {
            return Err(Error::Usage(format!("--copy {}: no such file or directory on this host", c.display())));
        }
        add(&host, guest_path(cwd, c), &mut files)?;
    }
    let mut argv = command.to_vec();
    for (i, arg) in argv.iter_mut().enumerate() {
        let given = Path::new(arg.as_str());
        // A bare program name is the guest's to resolve (`ls`, `bpftool`).
        if arg.is_empty() || (i == 0 && !arg.contains('/')) {
            continue;
        }
        let host = lexical(cwd, given);
        if !host.exists() || is_kernel_view(&host) || (given.is_absolute() && in_guest(arg)) {
            continue;
        }
        let guest = guest_path(cwd, given);
        add(&host, guest.clone(), &mut files)?;
        *arg = guest;
    }
    files.sort();
    files.dedup();
    let step = Step {
        name: "run".into(),
        run: argv,
        timeout_s: timeout,
        uid: 0,
        gid: None,
        background: false,
        ready: None,
        env: Vec::new(),
        cwd: (!files.is_empty()).then(|| WORK_DIR.to_string()),
    };
    Ok(RunPlan { plan: Plan { steps: vec![step], stream: true, ..Plan::default() }, files })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn every_host_file_the_command_names_comes_along_with_its_layout() {
        let dir = tempfile::tempdir().unwrap();
        let cwd = dir.path();
        std::fs::create_dir_all(cwd.join("build/bpf")).unwrap();
        std::fs::write(cwd.join("build/tool"), "").unwrap();
        std::fs::write(cwd.join("build/bpf/prog.o"), "").unwrap();
        std::fs::write(cwd.join("config.toml"), "").unwrap();
        let cmd = words(&["./build/tool", "--obj", "build/bpf/prog.o", "-c", "config.toml", "-v"]);
        let rp = run_plan(&cmd, &[], cwd, 5.0, |_| false).unwrap();
        let step = &rp.plan.steps[0];
        assert_eq!(
            step.run,
            ["/lab/work/build/tool", "--obj", "/lab/work/build/bpf/prog.o", "-c", "/lab/work/config.toml", "-v"]
        );
        assert_eq!(step.cwd.as_deref(), Some(WORK_DIR));
        let guests: Vec<&str> = rp.files.iter().map(|(g, _)| g.as_str()).collect();
        assert_eq!(guests, ["/lab/work/build/bpf/prog.o", "/lab/work/build/tool", "/lab/work/config.toml"]);
        assert!(rp.plan.stream);
    }

    #[test]
    fn copy_brings_directories_and_outside_files_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let cwd = dir.path().join("proj");
        std::fs::create_dir_all(cwd.join("data/sub")).unwrap();
        std::fs::write(cwd.join("data/sub/a.txt"), "a").unwrap();
        let outside = dir.path().join("elsewhere.bin");
        std::fs::write(&outside, "").unwrap();
        let rp =
            run_plan(&words(&["cat", "data/sub/a.txt"]), &[PathBuf::from("data"), outside.clone()], &cwd, 5.0, |_| {
                false
            })
            .unwrap();
        let guests: Vec<&str> = rp.files.iter().map(|(g, _)| g.as_str()).collect();
        assert_eq!(guests, ["/lab/work/data/sub/a.txt", "/lab/work/elsewhere.bin"]);
        assert_eq!(rp.plan.steps[0].run, ["cat", "/lab/work/data/sub/a.txt"]);
        let missing = run_plan(&words(&["true"]), &[PathBuf::from("nope")], &cwd, 5.0, |_| false).unwrap_err();
        assert!(missing.to_string().contains("--copy nope"), "{missing}");
    }

    #[test]
    fn the_guests_own_files_and_bare_names_stay_put() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("uname"), "").unwrap();
        // A bare name is the guest's, even when the host has such a file here.
        let rp = run_plan(&words(&["uname", "-r"]), &[], dir.path(), 5.0, |_| false).unwrap();
        assert!(rp.files.is_empty() && rp.plan.steps[0].run[0] == "uname" && rp.plan.steps[0].cwd.is_none());
        // The guest's own strace, not the host's; the host's /proc never.
        let rp = run_plan(&words(&["/usr/bin/strace", "cat", "/proc/self/status"]), &[], dir.path(), 5.0, |p| {
            p == "/usr/bin/strace"
        })
        .unwrap();
        assert!(rp.files.is_empty(), "{:?}", rp.files);
        assert_eq!(rp.plan.steps[0].run, ["/usr/bin/strace", "cat", "/proc/self/status"]);
    }
}

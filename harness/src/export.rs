//! `labctl export DIR`: the class edition of the workbook. Everything a
//! student needs (the labs' starters, the book, the harness, `just lab`,
//! `just grade`) and nothing of the instructor's: no `solutions/`, so no
//! reference code and no mutants. The instructor keeps `just verify`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};
use crate::exec;
use crate::workspace::Workspace;

/// What stays with the instructor, as path prefixes of the checkout.
const INSTRUCTOR_ONLY: &[&str] = &["solutions/"];

/// Whether a tracked file belongs in the class edition.
pub fn is_exported(rel: &str) -> bool {
    !INSTRUCTOR_ONLY.iter().any(|p| rel.starts_with(p))
}

/// Copies the files git tracks, less the instructor's, into `dest` (which
/// must not exist or be empty), and commits them in a fresh repository so
/// that the class edition's history starts there. Returns how many files
/// were written.
pub fn export(ws: &Workspace, dest: &Path) -> Result<usize> {
    if dest.exists() && fs::read_dir(dest).map(|mut d| d.next().is_some()).unwrap_or(true) {
        return Err(Error::Usage(format!(
            "{} exists and is not empty: give a new directory for the class edition",
            dest.display()
        )));
    }
    let mut ls = Command::new("git");
    ls.arg("-C").arg(&ws.root).args(["ls-files", "-z"]);
    let listed = exec::output(&mut ls, true)
        .map_err(|e| Error::Usage(format!("export copies the files git tracks, and git could not list them: {e}")))?;
    let files: Vec<PathBuf> = listed
        .stdout
        .split(|b| *b == 0)
        .filter(|f| !f.is_empty())
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .filter(|f| is_exported(f))
        .map(PathBuf::from)
        .collect();
    for rel in &files {
        let from = ws.root.join(rel);
        let to = dest.join(rel);
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).map_err(Error::io(format!("creating {}", parent.display())))?;
        }
        // A tracked file deleted in the working tree is simply not exported.
        if from.is_file() {
            fs::copy(&from, &to).map_err(Error::io(format!("copying {} to {}", from.display(), to.display())))?;
        }
    }
    fs::create_dir_all(dest.join("solutions")).map_err(Error::io("creating solutions/"))?;
    fs::write(
        dest.join("solutions/README.md"),
        "This is the class edition of eBPF Workbook: the reference solutions stay with the instructor.\n",
    )
    .map_err(Error::io("writing solutions/README.md"))?;
    let mut init = Command::new("git");
    init.arg("-C").arg(dest).args(["init", "-q"]);
    exec::output(&mut init, true)?;
    let mut add = Command::new("git");
    add.arg("-C").arg(dest).args(["add", "-A"]);
    exec::output(&mut add, true)?;
    let mut commit = Command::new("git");
    commit.arg("-C").arg(dest).args([
        "-c",
        "user.name=eBPF Workbook",
        "-c",
        "user.email=workbook@localhost",
        "commit",
        "-q",
        "-m",
        "eBPF Workbook, class edition",
    ]);
    exec::output(&mut commit, true)?;
    Ok(files.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solutions_and_mutants_stay_behind() {
        assert!(!is_exported("solutions/03-hello-world/src/bpf/hello.bpf.c"));
        assert!(!is_exported("solutions/03-hello-world/mutants/fixed-string.patch"));
        assert!(is_exported("labs/03-hello-world/src/bpf/hello.bpf.c"));
        assert!(is_exported("book/src/labs/03-hello-world.md"));
        assert!(is_exported("harness/src/cli.rs"));
    }
}

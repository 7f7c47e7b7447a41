//! The seal on the labs' given files: `labs/given.lock`.
//!
//! Every file of a lab that is not a student file (`student_files` in
//! lab.toml), lab.toml itself included, is the grader's. The lock lists each
//! one with its git blob id, so that a run of the learner's own work can
//! tell the lab's copy from an edit, committed or not, and take the lab's
//! copy back out of git's object database. `labctl seal` (`just seal`)
//! writes the lock from the working tree; `labctl seal --check` tells CI
//! when a lab changed without it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::process::Command;

use sha1::{Digest, Sha1};

use crate::error::{Error, Result};
use crate::exec;
use crate::manifest::Lab;

/// The lock, relative to the checkout's root.
pub const LOCK: &str = "labs/given.lock";

/// The lock's first line.
const HEADER: &str = "# The labs' given files: git blob id (as `git hash-object` computes it) and path. \
                      Generated; `just seal` regenerates it.";

/// The id git gives `content` as a blob: the SHA-1 of `blob <len>\0<content>`.
pub fn blob_id(content: &[u8]) -> String {
    let mut hasher = Sha1::new();
    hasher.update(format!("blob {}\0", content.len()).as_bytes());
    hasher.update(content);
    hex::encode(hasher.finalize())
}

/// The sealed given files: blob id by path relative to the checkout's root
/// (`/`-separated, as git writes paths).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seal {
    pub files: BTreeMap<String, String>,
}

impl Seal {
    /// The lock's text: the header, then `<blob id> <path>` per file, by path.
    pub fn render(&self) -> String {
        let mut text = format!("{HEADER}\n");
        for (path, id) in &self.files {
            text.push_str(&format!("{id} {path}\n"));
        }
        text
    }

    /// Reads a lock's text; the error names the line at fault.
    pub fn parse(text: &str) -> Result<Seal, String> {
        let mut files = BTreeMap::new();
        for (index, line) in text.lines().enumerate() {
            let at = index + 1;
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((id, path)) = line.split_once(' ') else {
                return Err(format!("line {at}: expected `<blob id> <path>`, found {line:?}"));
            };
            if id.len() != 40 || !id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
                return Err(format!("line {at}: {id:?} is not a blob id (40 lowercase hex digits)"));
            }
            if path.is_empty() {
                return Err(format!("line {at}: no path after the blob id"));
            }
            if files.insert(path.to_string(), id.to_string()).is_some() {
                return Err(format!("line {at}: {path} is listed twice"));
            }
        }
        Ok(Seal { files })
    }

    /// The lock of the checkout at `root`, or None when there is none.
    pub fn read(root: &Path) -> Result<Option<Seal>> {
        let path = root.join(LOCK);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(format!("reading {}", path.display()))(e)),
        };
        Seal::parse(&text)
            .map(Some)
            .map_err(|e| Error::Usage(format!("{LOCK}: {e}; if you are changing the labs, `just seal` rewrites it")))
    }

    /// The lock of the checkout at `root`; a run of the learner's work
    /// cannot go on without one.
    pub fn load(root: &Path) -> Result<Seal> {
        Seal::read(root)?.ok_or_else(|| {
            Error::Usage(format!(
                "{LOCK} is missing: it seals the labs' given files, so that grading uses the labs' own copies. \
                 Put it back with `git checkout -- {LOCK}`, or, if you are changing the labs, run `just seal`"
            ))
        })
    }

    /// The seal of the labs as the working tree has them.
    pub fn of_tree(root: &Path, labs: &[Lab]) -> Result<Seal> {
        let mut files = BTreeMap::new();
        for lab in labs {
            for rel in crate::builder::files_under(&lab.dir)? {
                if lab.is_student_file(&rel) {
                    continue;
                }
                let path = lab.dir.join(&rel);
                let key = repo_path(root, &path).ok_or_else(|| {
                    Error::Usage(format!("{}: a given file's path must be UTF-8 inside the checkout", path.display()))
                })?;
                let content = std::fs::read(&path).map_err(Error::io(format!("reading {}", path.display())))?;
                files.insert(key, blob_id(&content));
            }
        }
        Ok(Seal { files })
    }

    /// The sealed blob id of `path` (relative to the root).
    pub fn get(&self, path: &str) -> Option<&str> {
        self.files.get(path).map(String::as_str)
    }

    /// How many files of how many lab directories it seals.
    pub fn counts(&self) -> (usize, usize) {
        let dirs: std::collections::BTreeSet<&str> = self.files.keys().map(|p| lab_dir_of(p)).collect();
        (self.files.len(), dirs.len())
    }
}

/// `labs/01-x/src/main.rs` -> `labs/01-x`.
fn lab_dir_of(path: &str) -> &str {
    let mut parts = path.splitn(3, '/');
    let (Some(a), Some(b)) = (parts.next(), parts.next()) else { return path };
    &path[..a.len() + 1 + b.len()]
}

/// `path` relative to `root`, `/`-separated; None outside it or not UTF-8.
pub fn repo_path(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    Some(parts?.join("/"))
}

/// How the lock and the tree disagree about one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stale {
    /// Sealed, and its content changed since.
    Changed(String),
    /// A given file the lock does not list: new since the last seal.
    Unsealed(String),
    /// Sealed, but no given file of the tree any more.
    Gone(String),
}

impl fmt::Display for Stale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stale::Changed(p) => write!(f, "{p}: changed since it was sealed"),
            Stale::Unsealed(p) => write!(f, "{p}: a given file that is not sealed"),
            Stale::Gone(p) => write!(f, "{p}: sealed, but no longer a given file (deleted, or now a student file)"),
        }
    }
}

/// Every file on which `sealed` and `current` disagree, by path.
pub fn stale(sealed: &Seal, current: &Seal) -> Vec<Stale> {
    let mut out = Vec::new();
    for (path, id) in &current.files {
        match sealed.get(path) {
            Some(old) if old == id => {}
            Some(_) => out.push(Stale::Changed(path.clone())),
            None => out.push(Stale::Unsealed(path.clone())),
        }
    }
    out.extend(sealed.files.keys().filter(|p| !current.files.contains_key(*p)).map(|p| Stale::Gone(p.clone())));
    out.sort_by(|a, b| a.path().cmp(b.path()));
    out
}

impl Stale {
    pub fn path(&self) -> &str {
        match self {
            Stale::Changed(p) | Stale::Unsealed(p) | Stale::Gone(p) => p,
        }
    }
}

/// What the working tree holds of one given file, against the seal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// The working copy is the sealed original.
    Intact,
    /// The working copy differs: grading takes the blob.
    Edited { id: String },
    /// There is no working copy: grading takes the blob.
    Deleted { id: String },
    /// The lock does not list it.
    Unsealed,
}

/// Compares the working copy of a file (None: there is none) with its
/// sealed blob id (None: the lock does not list it).
pub fn judge(sealed: Option<&str>, working: Option<&[u8]>) -> Judgement {
    match (sealed, working) {
        (Some(id), Some(content)) if blob_id(content) == id => Judgement::Intact,
        (Some(id), Some(_)) => Judgement::Edited { id: id.to_string() },
        (Some(id), None) => Judgement::Deleted { id: id.to_string() },
        (None, _) => Judgement::Unsealed,
    }
}

/// A given file as grading takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Given {
    /// The working copy, which is the original.
    Intact(Vec<u8>),
    /// The sealed original, in place of the working copy (`deleted`: there
    /// was none).
    Restored { content: Vec<u8>, deleted: bool },
    /// A file the lock does not list: not part of the lab as sealed.
    Unsealed,
}

/// The lab's own copy of the given file at `path` (absolute, under `root`):
/// the working copy when it is the sealed one, else the sealed blob from
/// git's object database. A blob git does not have is an error naming the
/// fix: the edited copy is never used in its place.
pub fn given_file(root: &Path, seal: &Seal, path: &Path, quiet: bool) -> Result<Given> {
    let key = repo_path(root, path);
    let working = match std::fs::read(path) {
        Ok(content) => Some(content),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io(format!("reading {}", path.display()))(e)),
    };
    let sealed = key.as_deref().and_then(|k| seal.get(k));
    let (id, deleted) = match judge(sealed, working.as_deref()) {
        Judgement::Intact => return Ok(Given::Intact(working.unwrap_or_default())),
        Judgement::Unsealed => return Ok(Given::Unsealed),
        Judgement::Edited { id } => (id, false),
        Judgement::Deleted { id } => (id, true),
    };
    let shown = key.unwrap_or_else(|| path.display().to_string());
    match read_blob(root, &id, quiet)? {
        Some(content) => Ok(Given::Restored { content, deleted }),
        None => Err(Error::Usage(format!(
            "{shown} is given by the lab and {} its sealed original (blob {id} in {LOCK}), which this \
             checkout's git objects do not hold (not a git checkout, or a shallow clone): put it back with \
             `git checkout -- {shown}`, or, if you are changing the lab, run `just seal`",
            if deleted { "is missing; grading needs" } else { "differs from" }
        ))),
    }
}

/// The blob `id` from the object database of the git checkout at `root`;
/// None when git has no such blob or `root` is no git checkout.
pub fn read_blob(root: &Path, id: &str, quiet: bool) -> Result<Option<Vec<u8>>> {
    let mut cmd = Command::new("git");
    cmd.arg("-C").arg(root).args(["cat-file", "blob", id]);
    match exec::output(&mut cmd, quiet) {
        // Checked: a filter in the checkout's git configuration could make
        // the stored blob differ from what the lock sealed.
        Ok(out) => Ok((blob_id(&out.stdout) == id).then_some(out.stdout)),
        Err(e @ Error::Missing { .. }) => Err(e),
        Err(_) => Ok(None),
    }
}

/// Writes the lock from the working tree (only when it changes); returns the
/// seal written.
pub fn write(root: &Path, labs: &[Lab]) -> Result<Seal> {
    let seal = Seal::of_tree(root, labs)?;
    let path = root.join(LOCK);
    let text = seal.render();
    if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
        std::fs::write(&path, text).map_err(Error::io(format!("writing {}", path.display())))?;
    }
    Ok(seal)
}

/// How the lock disagrees with the working tree: nothing when it is up to
/// date. No lock at all leaves every given file unsealed.
pub fn check(root: &Path, labs: &[Lab]) -> Result<Vec<Stale>> {
    let current = Seal::of_tree(root, labs)?;
    let sealed = Seal::read(root)?.unwrap_or_default();
    Ok(stale(&sealed, &current))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal(entries: &[(&str, &str)]) -> Seal {
        Seal { files: entries.iter().map(|(p, c)| (p.to_string(), blob_id(c.as_bytes()))).collect() }
    }

    #[test]
    fn blob_ids_are_gits() {
        // `printf 'hello\n' | git hash-object --stdin`, and the empty blob.
        assert_eq!(blob_id(b"hello\n"), "ce013625030ba8dba906f756967f9e9ca394464a");
        assert_eq!(blob_id(b""), "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
    }

    #[test]
    fn a_lock_reads_back_as_written_sorted_under_its_header() {
        let s = seal(&[("labs/02-b/lab.toml", "b"), ("labs/01-a/src/my file.rs", "a"), ("labs/01-a/lab.toml", "x")]);
        let text = s.render();
        assert!(text.starts_with("# ") && text.lines().next().unwrap().contains("just seal"), "{text}");
        let paths: Vec<&str> = text.lines().skip(1).map(|l| l.split_once(' ').unwrap().1).collect();
        assert_eq!(paths, ["labs/01-a/lab.toml", "labs/01-a/src/my file.rs", "labs/02-b/lab.toml"]);
        assert_eq!(Seal::parse(&text).unwrap(), s);
        assert_eq!(s.counts(), (3, 2));
    }

    #[test]
    fn a_bad_lock_line_is_named() {
        let id = blob_id(b"a");
        assert!(Seal::parse(&format!("# c\n\n{id} labs/01-a/x\n")).is_ok());
        let err = Seal::parse(&format!("# c\n{id}labs/01-a/x\n")).unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
        let err = Seal::parse("ABCD labs/01-a/x\n").unwrap_err();
        assert!(err.contains("not a blob id"), "{err}");
        let err = Seal::parse(&format!("{id} x\n{id} x\n")).unwrap_err();
        assert!(err.contains("line 2") && err.contains("twice"), "{err}");
    }

    #[test]
    fn stale_names_every_changed_new_and_gone_file() {
        let sealed = seal(&[("labs/01-a/lab.toml", "1"), ("labs/01-a/src/lib.rs", "2"), ("labs/01-a/old.rs", "3")]);
        let current = seal(&[("labs/01-a/lab.toml", "1"), ("labs/01-a/src/lib.rs", "2!"), ("labs/01-a/new.rs", "4")]);
        assert_eq!(
            stale(&sealed, &current),
            [
                Stale::Unsealed("labs/01-a/new.rs".into()),
                Stale::Gone("labs/01-a/old.rs".into()),
                Stale::Changed("labs/01-a/src/lib.rs".into()),
            ]
        );
        assert!(stale(&sealed, &sealed).is_empty());
    }

    #[test]
    fn only_the_sealed_content_is_intact() {
        let id = blob_id(b"given\n");
        assert_eq!(judge(Some(&id), Some(b"given\n")), Judgement::Intact);
        assert_eq!(judge(Some(&id), Some(b"edited\n")), Judgement::Edited { id: id.clone() });
        assert_eq!(judge(Some(&id), None), Judgement::Deleted { id: id.clone() });
        assert_eq!(judge(None, Some(b"new\n")), Judgement::Unsealed);
    }

    #[test]
    fn lock_paths_are_relative_and_slashed() {
        let root = Path::new("/w");
        assert_eq!(repo_path(root, Path::new("/w/labs/01-a/src/x.rs")).as_deref(), Some("labs/01-a/src/x.rs"));
        assert_eq!(repo_path(root, Path::new("/elsewhere/x.rs")), None);
        assert_eq!(lab_dir_of("labs/01-a/src/x.rs"), "labs/01-a");
    }
}

//! The seal on the labs' given files (`labs/given.lock`), on a throwaway
//! checkout holding one small lab of its own: grading the learner's work
//! takes every given file, lab.toml included, from the seal, whatever was
//! edited or committed since. No VM boots, and nothing depends on the labs
//! of this repository.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use labctl::builder::{self, Variant};
use labctl::workspace::Workspace;

const LAB: &str = "labs/01-sealed";

const MANIFEST: &str = r#"number = 1
slug = "sealed"
title = "Sealed"
chapter = 1
kind = "ptrace"
goal = "Keep the given files the lab's."
student_files = ["src/main.rs"]

[[steps]]
name = "run"
run = ["/lab/bin/sealed"]

[[checks]]
name = "runs"
kind = "exit_code"
step = "run"
equals = 0
hints = ["one", "two"]
hints_ko = ["하나", "둘"]

[[checks]]
name = "says hello"
kind = "output"
step = "run"
regex = ["hello"]
hints = ["one", "two"]
hints_ko = ["하나", "둘"]
"#;

const GIVEN: &str = "pub fn greeting() -> &'static str {\n    \"hello\"\n}\n";

/// A checkout with the lab and the kernel matrix `labctl` needs, sealed;
/// committed unless `commit` is false (then git holds none of its blobs).
fn checkout(commit: bool) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("wb");
    let lab = root.join(LAB);
    std::fs::create_dir_all(lab.join("src")).unwrap();
    std::fs::create_dir_all(root.join("vm")).unwrap();
    std::fs::copy(common::root().join("vm/kernels.toml"), root.join("vm/kernels.toml")).unwrap();
    std::fs::write(lab.join("lab.toml"), MANIFEST).unwrap();
    std::fs::write(lab.join("Cargo.toml"), "[package]\nname = \"lab01-sealed\"\nversion = \"0.1.0\"\n").unwrap();
    std::fs::write(lab.join("src/main.rs"), "fn main() {\n    // TODO\n}\n").unwrap();
    std::fs::write(lab.join("src/given.rs"), GIVEN).unwrap();
    git(&root, &["init", "--quiet"]);
    let out = seal(&root, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    if commit {
        commit_all(&root, "the lab");
    }
    (dir, root)
}

fn git(root: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["-c", "user.name=Lab Author", "-c", "user.email=author@example.org", "-c", "commit.gpgsign=false"])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", text(&out));
}

fn commit_all(root: &Path, message: &str) {
    git(root, &["add", "-A"]);
    git(root, &["commit", "--quiet", "-m", message]);
}

fn seal(root: &Path, args: &[&str]) -> Output {
    common::labctl().current_dir(root).env("WORKBOOK_ROOT", root).arg("seal").args(args).output().unwrap()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn starter(root: &Path) -> labctl::Result<(builder::Files, Vec<String>)> {
    let ws = Workspace::at(root.to_path_buf()).unwrap();
    let lab = ws.starter_lab(1, true)?;
    builder::compose(&ws, &lab, &Variant::Starter, true)
}

fn content(files: &builder::Files, rel: &str) -> String {
    String::from_utf8(files[Path::new(rel)].clone()).unwrap()
}

#[test]
fn a_committed_edit_of_a_given_file_is_graded_with_the_sealed_original() {
    let (_dir, root) = checkout(true);
    let lab = root.join(LAB);
    std::fs::write(lab.join("src/given.rs"), "pub fn greeting() -> &'static str {\n    \"hello\"\n} // edited\n")
        .unwrap();
    std::fs::write(lab.join("src/main.rs"), "fn main() {\n    println!(\"mine\");\n}\n").unwrap();
    std::fs::remove_file(lab.join("Cargo.toml")).unwrap();
    commit_all(&root, "the learner's edits, committed");

    let (files, notes) = starter(&root).unwrap();
    assert_eq!(content(&files, "src/given.rs"), GIVEN, "the sealed original, not HEAD's");
    assert!(content(&files, "Cargo.toml").contains("lab01-sealed"), "a deleted given file comes back");
    assert!(content(&files, "src/main.rs").contains("mine"), "the student file is the learner's");
    assert!(
        notes.contains(&"src/given.rs is given by the lab; you edited it, and grading uses the original".to_string()),
        "{notes:?}"
    );
    assert!(notes.iter().any(|n| n.starts_with("Cargo.toml is given by the lab; you deleted it")), "{notes:?}");
    assert_eq!(notes.len(), 2, "{notes:?}");

    // A lab author's run of the solution takes the working tree as it is.
    let ws = Workspace::at(root.clone()).unwrap();
    std::fs::create_dir_all(root.join("solutions/01-sealed/src")).unwrap();
    std::fs::write(root.join("solutions/01-sealed/src/main.rs"), "fn main() {}\n").unwrap();
    let (files, notes) = builder::compose(&ws, &ws.lab(1).unwrap(), &Variant::Solution, true).unwrap();
    assert!(content(&files, "src/given.rs").ends_with("// edited\n"));
    assert!(notes.is_empty(), "{notes:?}");
}

#[test]
fn an_edited_lab_toml_is_read_from_the_seal_and_a_dropped_check_comes_back() {
    let (_dir, root) = checkout(true);
    let lab = root.join(LAB);
    // Drop a check, and claim a given file as the student's.
    let edited = MANIFEST
        .split("\n[[checks]]\nname = \"says hello\"")
        .next()
        .unwrap()
        .replace("student_files = [\"src/main.rs\"]", "student_files = [\"src/main.rs\", \"src/given.rs\"]");
    std::fs::write(lab.join("lab.toml"), &edited).unwrap();
    std::fs::write(lab.join("src/given.rs"), "pub fn greeting() -> &'static str {\n    \"bye\"\n}\n").unwrap();
    commit_all(&root, "fewer checks");

    let ws = Workspace::at(root.clone()).unwrap();
    assert_eq!(ws.lab(1).unwrap().manifest.checks.len(), 1, "the working tree, for lab authors");
    let sealed = ws.starter_lab(1, true).unwrap();
    let names: Vec<&str> = sealed.manifest.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["runs", "says hello"]);
    assert_eq!(sealed.manifest.student_files, ["src/main.rs"]);
    assert_eq!(ws.starter_labs(true).unwrap().len(), 1);

    let (files, notes) = builder::compose(&ws, &sealed, &Variant::Starter, true).unwrap();
    assert_eq!(content(&files, "lab.toml"), MANIFEST);
    assert_eq!(content(&files, "src/given.rs"), GIVEN);
    assert!(
        notes.contains(&"lab.toml is given by the lab; you edited it, and grading uses the original".to_string()),
        "{notes:?}"
    );
}

#[test]
fn a_stale_lock_fails_seal_check_naming_the_files() {
    let (_dir, root) = checkout(true);
    let lock = std::fs::read_to_string(root.join("labs/given.lock")).unwrap();
    assert!(lock.starts_with("# ") && lock.lines().next().unwrap().contains("just seal"), "{lock}");
    let sealed: Vec<&str> = lock.lines().skip(1).map(|l| l.split_once(' ').unwrap().1).collect();
    assert_eq!(sealed, ["labs/01-sealed/Cargo.toml", "labs/01-sealed/lab.toml", "labs/01-sealed/src/given.rs"]);
    let out = seal(&root, &["--check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let lab = root.join(LAB);
    std::fs::write(lab.join("src/given.rs"), "pub fn greeting() -> &'static str {\n    \"hi\"\n}\n").unwrap();
    std::fs::write(lab.join("src/extra.rs"), "pub const EXTRA: u32 = 1;\n").unwrap();
    std::fs::write(lab.join("src/main.rs"), "fn main() {}\n").unwrap();
    let out = seal(&root, &["--check"]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(shown.contains("labs/01-sealed/src/given.rs: changed since it was sealed"), "{shown}");
    assert!(shown.contains("labs/01-sealed/src/extra.rs: a given file that is not sealed"), "{shown}");
    assert!(!shown.contains("src/main.rs"), "a student file is never sealed:\n{shown}");
    assert!(shown.contains("just seal"), "{shown}");

    let out = seal(&root, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("Sealed 4 given files of 1 labs"), "{}", text(&out));
    let out = seal(&root, &["--check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn a_sealed_original_that_git_does_not_hold_is_an_error_naming_the_fix() {
    // Sealed but never added to git: no blob of the lab is in the object
    // database, as in a checkout without git or with too short a history.
    let (_dir, root) = checkout(false);
    let lab = root.join(LAB);
    assert!(starter(&root).is_ok(), "untouched, nothing needs git");

    std::fs::write(lab.join("src/given.rs"), "// edited\n").unwrap();
    let err = starter(&root).unwrap_err().to_string();
    assert!(err.contains("labs/01-sealed/src/given.rs is given by the lab and differs from"), "{err}");
    assert!(err.contains("`git checkout -- labs/01-sealed/src/given.rs`") && err.contains("`just seal`"), "{err}");

    std::fs::write(lab.join("lab.toml"), MANIFEST.replace("title = \"Sealed\"", "title = \"Mine\"")).unwrap();
    let ws = Workspace::at(root.clone()).unwrap();
    let err = ws.starter_lab(1, true).unwrap_err().to_string();
    assert!(err.contains("`git checkout -- labs/01-sealed/lab.toml`"), "{err}");

    // Not a git checkout at all: the same.
    std::fs::remove_dir_all(root.join(".git")).unwrap();
    let err = ws.starter_lab(1, true).unwrap_err().to_string();
    assert!(err.contains("`git checkout -- labs/01-sealed/lab.toml`"), "{err}");
}

#[test]
fn a_file_the_lock_does_not_list_is_left_out_and_a_missing_lock_is_an_error() {
    let (_dir, root) = checkout(true);
    let lab = root.join(LAB);
    std::fs::write(lab.join("src/extra.rs"), "pub const EXTRA: u32 = 1;\n").unwrap();
    let (files, notes) = starter(&root).unwrap();
    assert!(!files.contains_key(Path::new("src/extra.rs")), "not a file of the lab as sealed");
    assert!(notes.iter().any(|n| n.starts_with("src/extra.rs is not a file of the lab") && n.contains("`just seal`")));

    // A new lab the lock does not list cannot be run as the learner's.
    std::fs::create_dir_all(root.join("labs/02-unsealed")).unwrap();
    std::fs::write(root.join("labs/02-unsealed/lab.toml"), "number = 2\n").unwrap();
    let ws = Workspace::at(root.clone()).unwrap();
    let err = ws.starter_labs(true).unwrap_err().to_string();
    assert!(
        err.contains("labs/02-unsealed/lab.toml is not in labs/given.lock") && err.contains("`just seal`"),
        "{err}"
    );
    std::fs::remove_dir_all(root.join("labs/02-unsealed")).unwrap();

    std::fs::remove_file(root.join("labs/given.lock")).unwrap();
    let err = starter(&root).unwrap_err().to_string();
    assert!(err.contains("labs/given.lock is missing") && err.contains("`just seal`"), "{err}");
}

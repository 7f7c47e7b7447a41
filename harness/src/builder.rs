//! Builds the agent and a lab's binaries with cargo.
//!
//! Every build is of a composed copy of the lab, in
//! `target/labctl/overlay/NN-slug/<variant>`: the lab's own copy of every
//! given file (for the learner's own work, the copy `labs/given.lock`
//! seals), and the student files (`student_files` in lab.toml) from the
//! starter, the solution, a mutant or a submission. It is a workspace of its
//! own that reuses the real workspace's dependencies, lints, lock file and
//! target directory, so nothing is rebuilt but the lab itself.
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;

use cargo_metadata::Message;
use cargo_metadata::diagnostic::DiagnosticLevel;

use crate::build_failure::{self, Blame, CompileError};
use crate::error::{Error, Result};
use crate::exec;
use crate::manifest::Lab;
use crate::seal::{self, Given, Seal};
use crate::workspace::Workspace;

/// What a lab build produced.
#[derive(Debug, Clone)]
pub enum LabBuild {
    /// The binaries, by path on the host.
    Built(Vec<PathBuf>),
    /// The student's code did not compile: a verdict, with cargo's output.
    Failed(String),
}

/// Which files a run builds. Every variant is composed the same way: the
/// lab's own copy of every given file, and the student files from the
/// variant's source (see [`compose`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Variant {
    /// The student files of this checkout, with the given files as
    /// `labs/given.lock` seals them.
    Starter,
    /// The reference: `solutions/NN-slug` laid over the starter.
    Solution,
    /// The solution with a wrong change applied (`solutions/NN-slug/mutants/*.patch`).
    Mutant(PathBuf),
    /// The student files of another checkout (`labctl grade --submission DIR`).
    Submission(PathBuf),
}

impl Variant {
    pub fn name(&self) -> String {
        match self {
            Variant::Starter => "starter".into(),
            Variant::Solution => "solution".into(),
            Variant::Mutant(patch) => format!("mutant {}", mutant_name(patch)),
            Variant::Submission(_) => "submission".into(),
        }
    }

    /// Its overlay's directory name. Each mutant has its own, so that a
    /// second `verify` rebuilds none of them.
    fn slot(&self) -> String {
        match self {
            Variant::Mutant(patch) => format!("mutant-{}", mutant_name(patch)),
            other => other.name(),
        }
    }
}

/// `solutions/03-hello-world/mutants/tid-not-tgid.patch` -> `tid-not-tgid`.
pub fn mutant_name(patch: &Path) -> String {
    patch.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The mutants of a lab, sorted by name.
pub fn mutants(lab: &Lab) -> Vec<PathBuf> {
    let dir = lab.solution_dir.join("mutants");
    let mut found: Vec<PathBuf> = fs::read_dir(&dir)
        .map(|entries| {
            entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "patch")).collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// What a mutant is wrong about: the first line of its patch.
pub fn mutant_summary(patch: &Path) -> String {
    fs::read_to_string(patch).ok().and_then(|t| t.lines().next().map(str::to_string)).unwrap_or_default()
}

pub const AGENT_PACKAGE: &str = "workbook-agent";

fn cargo(ws: &Workspace) -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    // The workspace's .cargo/config.toml applies to builds started here,
    // overlays included.
    cmd.current_dir(&ws.root).env("CARGO_TARGET_DIR", ws.target_dir());
    // A lab's build script that fails (clang rejecting the student's C)
    // must show clang's message, not a backtrace of the build script that
    // buries it: the learner's RUST_BACKTRACE is for labctl, not for them.
    cmd.env("RUST_BACKTRACE", "0").env("RUST_LIB_BACKTRACE", "0");
    cmd
}

/// The grader's programs in every guest: the agent (`/init`) and the
/// workload tool.
#[derive(Debug, Clone)]
pub struct GuestPrograms {
    pub agent: PathBuf,
    pub workload: PathBuf,
}

pub const WORKLOAD_BIN: &str = "wb-workload";

/// Builds the guest agent and the workload tool and returns their paths.
pub fn build_agent(ws: &Workspace, quiet: bool) -> Result<GuestPrograms> {
    let mut cmd = cargo(ws);
    cmd.args([
        "build",
        "--quiet",
        "-p",
        AGENT_PACKAGE,
        "--bin",
        AGENT_PACKAGE,
        "--bin",
        WORKLOAD_BIN,
        "--message-format=json-render-diagnostics",
    ]);
    let CargoRun { bins, output, .. } = run_cargo(&mut cmd, quiet)?;
    let find = |name: &str| bins.iter().flatten().find(|b| b.file_name().is_some_and(|n| n == name)).cloned();
    match (find(AGENT_PACKAGE), find(WORKLOAD_BIN)) {
        (Some(agent), Some(workload)) => Ok(GuestPrograms { agent, workload }),
        _ => Err(Error::Command {
            command: exec::display(&cmd),
            status: "the guest agent did not build".into(),
            stderr: output,
        }),
    }
}

/// The cargo package name of a lab: read from its Cargo.toml.
pub fn package_name(dir: &Path) -> Result<String> {
    let path = dir.join("Cargo.toml");
    let text = fs::read_to_string(&path).map_err(Error::io(format!("reading {}", path.display())))?;
    let doc: toml::Table = toml::from_str(&text).map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
    doc.get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .map(str::to_string)
        .ok_or_else(|| Error::Usage(format!("{}: no [package] name", path.display())))
}

/// A composed lab: its binaries, or the student's compiler errors, and
/// notes for the student (a given file they edited, which grading ignores).
#[derive(Debug, Clone)]
pub struct Built {
    pub build: LabBuild,
    pub notes: Vec<String>,
}

/// Builds a lab's binaries from the files `variant` names, and returns
/// copies of them that no later build can overwrite.
pub fn build_lab(ws: &Workspace, lab: &Lab, variant: &Variant, quiet: bool) -> Result<Built> {
    // Every variant leaves its binaries at the same path in target/debug:
    // hold a lock from the build until the copy is taken, so that two
    // labctl runs at once cannot swap them.
    let _lock = build_lock(ws, quiet)?;
    if lab.manifest.kind == crate::manifest::LabKind::Ebpf {
        // Said up front, by name: otherwise a missing clang surfaces deep
        // in a build script's panic.
        crate::tools::check_bpf_toolchain()?;
    }
    let (files, notes) = compose(ws, lab, variant, quiet)?;
    let root = write_overlay(ws, lab, variant, &files)?;
    let package = package_name(&lab.dir)?;
    let mut cmd = cargo(ws);
    cmd.args(["build", "-p", &package, "--bins", "--message-format=json-render-diagnostics"]);
    cmd.arg("--manifest-path").arg(root.join("Cargo.toml"));
    let CargoRun { bins, errors, output } = run_cargo(&mut cmd, quiet)?;
    let build = match bins {
        Some(bins) if !bins.is_empty() => {
            let copies: Result<Vec<PathBuf>> =
                bins.iter().map(|b| crate::image::stripped_copy(b, &ws.cache_dir())).collect();
            LabBuild::Built(copies?)
        }
        Some(_) => return Err(Error::Usage(format!("{} builds no binary: give it a [[bin]]", lab.dir.display()))),
        // Only the student's own compile errors are a verdict; a broken
        // toolchain is the harness's to report, with the fix.
        None => match build_failure::blame(&package, &root, &errors, output) {
            Blame::Student(output) => LabBuild::Failed(output),
            Blame::Harness(e) => return Err(e),
        },
    };
    Ok(Built { build, notes })
}

/// The files of the lab as `variant` builds them, by path relative to the
/// lab directory: every given file as the lab ships it, and the student
/// files from the variant's source. Grading therefore never depends on an
/// edit outside `student_files`.
pub fn compose(ws: &Workspace, lab: &Lab, variant: &Variant, quiet: bool) -> Result<(Files, Vec<String>)> {
    let mut notes = Vec::new();
    let mut files = match variant {
        Variant::Starter => sealed_given_files(ws, lab, &mut notes, quiet)?,
        // Lab authors iterate on the given files with the solution and the
        // mutants; a submission is graded against this (the grader's) tree.
        Variant::Solution | Variant::Mutant(_) | Variant::Submission(_) => working_given_files(lab)?,
    };
    let student_source = |rel: &Path| -> PathBuf {
        match variant {
            Variant::Starter => lab.dir.join(rel),
            Variant::Submission(root) => root.join("labs").join(lab.dir_name()).join(rel),
            Variant::Solution | Variant::Mutant(_) => {
                let solved = lab.solution_dir.join(rel);
                if solved.is_file() { solved } else { lab.dir.join(rel) }
            }
        }
    };
    if matches!(variant, Variant::Solution | Variant::Mutant(_)) && !lab.solution_dir.is_dir() {
        return Err(Error::Usage(format!(
            "lab {} has no solution: {} does not exist",
            lab.number(),
            lab.solution_dir.display()
        )));
    }
    for f in &lab.manifest.student_files {
        let rel = PathBuf::from(f);
        let source = student_source(&rel);
        let content = if source.is_file() {
            read(&source)?
        } else {
            notes.push(format!("{} has no {f}; the starter's copy is used", source.display()));
            read(&lab.dir.join(&rel))?
        };
        files.insert(rel, content);
    }
    if let Variant::Mutant(patch) = variant {
        apply_patch(&mut files, patch, lab)?;
    }
    Ok((files, notes))
}

/// The lab's files by path relative to its directory.
pub type Files = std::collections::BTreeMap<PathBuf, Vec<u8>>;

fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(Error::io(format!("reading {}", path.display())))
}

/// Applies a mutant's patch to the composed files; only its changes to
/// student files are kept, as grading would keep only those.
fn apply_patch(files: &mut Files, patch: &Path, lab: &Lab) -> Result<()> {
    let dir = tempfile::tempdir().map_err(Error::io("creating a directory for a mutant"))?;
    for (rel, content) in files.iter() {
        write_if_changed(&dir.path().join(rel), content)?;
    }
    let mut cmd = Command::new("patch");
    cmd.args(["-p1", "--batch", "--forward", "--silent", "--no-backup-if-mismatch", "-d"])
        .arg(dir.path())
        .arg("-i")
        .arg(patch);
    let out = cmd.output().map_err(|e| exec::spawn_error(&cmd, e))?;
    if !out.status.success() {
        return Err(Error::Usage(format!(
            "the mutant {} does not apply to the solution of lab {}: {}{}",
            patch.display(),
            lab.number(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    for f in &lab.manifest.student_files {
        let rel = PathBuf::from(f);
        files.insert(rel.clone(), read(&dir.path().join(&rel))?);
    }
    Ok(())
}

/// The given files as the working tree has them.
fn working_given_files(lab: &Lab) -> Result<Files> {
    let mut files = Files::new();
    for rel in files_under(&lab.dir)? {
        if !lab.is_student_file(&rel) {
            let content = read(&lab.dir.join(&rel))?;
            files.insert(rel, content);
        }
    }
    Ok(files)
}

/// The given files as `labs/given.lock` seals them. In the learner's own
/// checkout the lab "as it ships" is the sealed copy, not git's HEAD: an
/// edit of a given file, committed or not, is noticed and undone for the
/// run, and a file the lab does not have is left out.
fn sealed_given_files(ws: &Workspace, lab: &Lab, notes: &mut Vec<String>, quiet: bool) -> Result<Files> {
    let seal = Seal::load(&ws.root)?;
    let mut rels: std::collections::BTreeSet<PathBuf> = files_under(&lab.dir)?.into_iter().collect();
    // A given file the learner deleted comes back too.
    if let Some(prefix) = seal::repo_path(&ws.root, &lab.dir) {
        let prefix = format!("{prefix}/");
        rels.extend(seal.files.keys().filter_map(|p| p.strip_prefix(&prefix)).map(PathBuf::from));
    }
    let mut files = Files::new();
    for rel in rels {
        if lab.is_student_file(&rel) {
            continue;
        }
        match seal::given_file(&ws.root, &seal, &lab.dir.join(&rel), quiet)? {
            Given::Intact(content) => {
                files.insert(rel, content);
            }
            Given::Restored { content, deleted } => {
                notes.push(format!(
                    "{} is given by the lab; you {} it, and grading uses the original",
                    rel.display(),
                    if deleted { "deleted" } else { "edited" }
                ));
                files.insert(rel, content);
            }
            Given::Unsealed => notes.push(format!(
                "{} is not a file of the lab ({} does not list it), so grading leaves it out; \
                 if you are adding it to the lab, run `just seal`",
                rel.display(),
                seal::LOCK
            )),
        }
    }
    Ok(files)
}

fn build_lock(ws: &Workspace, quiet: bool) -> Result<crate::files::Lock> {
    let path = ws.target_dir().join("labctl/build.lock");
    crate::files::lock(&path, "another labctl's lab build", quiet, &crate::INTERRUPTED)
}

/// Runs cargo with JSON messages: the executables it built (None when the
/// build failed) and its rendered diagnostics, which are also shown live.
fn run_cargo(cmd: &mut Command, quiet: bool) -> Result<CargoRun> {
    exec::announce(cmd, quiet);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| exec::spawn_error(cmd, e))?;
    let stderr = child.stderr.take().expect("piped");
    let tee = thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
            if !quiet {
                eprintln!("{line}");
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let mut bins = Vec::new();
    let mut errors = Vec::new();
    let stdout = BufReader::new(child.stdout.take().expect("piped"));
    for message in Message::parse_stream(stdout).flatten() {
        match message {
            Message::CompilerArtifact(artifact) => {
                if let Some(exe) = artifact.executable {
                    bins.push(exe.into_std_path_buf());
                }
            }
            Message::CompilerMessage(m) if m.message.level == DiagnosticLevel::Error => {
                errors.push(CompileError {
                    package: package_of(&m.package_id.repr).to_string(),
                    files: m.message.spans.iter().map(|s| s.file_name.clone()).collect(),
                });
            }
            _ => {}
        }
    }
    let status = child.wait().map_err(Error::io("waiting for cargo"))?;
    let output = tee.join().unwrap_or_default();
    Ok(CargoRun { bins: status.success().then_some(bins), errors, output })
}

/// A package's name from cargo's package ID, in either of its forms:
/// `path+file:///w/lab#name@0.1.0` (or `.../name#0.1.0` when the directory
/// is the name) and the older `name 0.1.0 (path+file:///w/lab)`.
fn package_of(id: &str) -> &str {
    match id.split_once('#') {
        Some((path, fragment)) => match fragment.split_once('@') {
            Some((name, _)) => name,
            None => path.rsplit('/').next().unwrap_or(path),
        },
        None => id.split(' ').next().unwrap_or(id),
    }
}

/// What one cargo build did.
struct CargoRun {
    /// The executables it built; None when the build failed.
    bins: Option<Vec<PathBuf>>,
    /// rustc's errors, by package and file.
    errors: Vec<CompileError>,
    /// cargo's rendered diagnostics, as shown live.
    output: String,
}

/// Writes composed files into `target/labctl/overlay/NN-slug/<variant>`
/// and wraps them in a workspace that mirrors the real one. Files are
/// written only when their content changed, so cargo's fingerprints stay
/// valid between runs.
fn write_overlay(ws: &Workspace, lab: &Lab, variant: &Variant, files: &Files) -> Result<PathBuf> {
    // The member's directory is named after the variant: cargo hashes a
    // workspace member's path relative to its workspace into the names of
    // its outputs and fingerprints, and every overlay shares one target
    // directory. With one name for all ("lab"), a starter built after the
    // solution was judged fresh and ran the solution's binary.
    let member = variant.slot();
    let root = ws.target_dir().join("labctl/overlay").join(lab.dir_name()).join(&member);
    let dest = root.join(&member);
    for (rel, content) in files {
        let mut text = content.clone();
        if rel == Path::new("Cargo.toml") {
            text = absolutize_paths(
                &String::from_utf8_lossy(&text),
                &lab.dir,
                &["dependencies", "build-dependencies", "dev-dependencies"],
            )?
            .into_bytes();
        }
        write_if_changed(&dest.join(rel), &text)?;
    }
    for rel in files_under(&dest)? {
        if !files.contains_key(&rel) {
            let _ = fs::remove_file(dest.join(rel));
        }
    }
    let ws_manifest =
        fs::read_to_string(ws.root.join("Cargo.toml")).map_err(Error::io("reading the workspace Cargo.toml"))?;
    write_if_changed(&root.join("Cargo.toml"), overlay_workspace(&ws_manifest, &ws.root, &member)?.as_bytes())?;
    if let Ok(lock) = fs::read(ws.root.join("Cargo.lock")) {
        // Only when the real lock changed: cargo trims the copy to what the
        // overlay uses, and rewriting it each time would be pointless churn.
        let stamp = root.join("Cargo.lock.source");
        if fs::read(&stamp).ok().as_deref() != Some(&lock[..]) {
            write_if_changed(&root.join("Cargo.lock"), &lock)?;
            write_if_changed(&stamp, &lock)?;
        }
    }
    Ok(root)
}

/// Relative file paths under `dir`, skipping build output.
pub fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let Ok(entries) = fs::read_dir(dir.join(&rel)) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name == "target" {
                continue;
            }
            let path = rel.join(&name);
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(t) if t.is_file() => out.push(path),
                _ => {}
            }
        }
    }
    out.sort();
    Ok(out)
}

fn write_if_changed(path: &Path, content: &[u8]) -> Result<()> {
    if fs::read(path).ok().as_deref() == Some(content) {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(Error::io(format!("creating {}", parent.display())))?;
    }
    fs::write(path, content).map_err(Error::io(format!("writing {}", path.display())))
}

/// The real workspace manifest with the overlay as its only member and
/// every path dependency made absolute.
pub fn overlay_workspace(ws_manifest: &str, ws_root: &Path, member: &str) -> Result<String> {
    let mut doc: toml_edit::DocumentMut =
        ws_manifest.parse().map_err(|e| Error::Usage(format!("the workspace Cargo.toml: {e}")))?;
    let workspace = doc
        .get_mut("workspace")
        .and_then(|w| w.as_table_mut())
        .ok_or_else(|| Error::Usage("the workspace Cargo.toml has no [workspace]".into()))?;
    let mut members = toml_edit::Array::new();
    members.push(member);
    workspace.insert("members", toml_edit::value(members));
    workspace.remove("exclude");
    workspace.remove("default-members");
    let text = doc.to_string();
    absolutize_paths(&text, ws_root, &["workspace.dependencies"])
}

/// Rewrites `path = "…"` of the dependencies in `tables` (dotted names) to
/// absolute paths, relative to `base`.
pub fn absolutize_paths(manifest: &str, base: &Path, tables: &[&str]) -> Result<String> {
    let mut doc: toml_edit::DocumentMut =
        manifest.parse().map_err(|e| Error::Usage(format!("Cargo.toml under {}: {e}", base.display())))?;
    for table in tables {
        let mut item = Some(doc.as_item_mut());
        for key in table.split('.') {
            item = item.and_then(|i| i.get_mut(key));
        }
        let Some(deps) = item.and_then(|i| i.as_table_like_mut()) else { continue };
        for (_, dep) in deps.iter_mut() {
            let Some(dep) = dep.as_table_like_mut() else { continue };
            let Some(path) = dep.get("path").and_then(|p| p.as_str()).map(str::to_string) else { continue };
            if Path::new(&path).is_relative() {
                dep.insert("path", toml_edit::value(base.join(&path).to_string_lossy().into_owned()));
            }
        }
    }
    Ok(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names_come_out_of_every_form_of_package_id() {
        assert_eq!(package_of("path+file:///w/target/x/starter#lab03-hello-world@0.1.0"), "lab03-hello-world");
        assert_eq!(package_of("path+file:///w/labs/lab03-hello-world#0.1.0"), "lab03-hello-world");
        assert_eq!(package_of("lab03-hello-world 0.1.0 (path+file:///w/lab)"), "lab03-hello-world");
        assert_eq!(package_of("registry+https://github.com/rust-lang/crates.io-index#libbpf-rs@0.24.8"), "libbpf-rs");
    }

    #[test]
    fn the_overlay_workspace_has_one_member_and_absolute_paths() {
        let ws = "[workspace]\nmembers = [\"harness\", \"labs/*\"]\n\n[workspace.dependencies]\nanyhow = \"1\"\nagent = { path = \"vm/agent\" }\n\n[profile.dev]\nopt-level = 1\n";
        let out = overlay_workspace(ws, Path::new("/src/wb"), "starter").unwrap();
        let doc: toml::Table = toml::from_str(&out).unwrap();
        assert_eq!(doc["workspace"]["members"].as_array().unwrap().len(), 1);
        assert_eq!(doc["workspace"]["dependencies"]["agent"]["path"].as_str(), Some("/src/wb/vm/agent"));
        assert_eq!(doc["workspace"]["dependencies"]["anyhow"].as_str(), Some("1"));
        // Profiles only count at the workspace root: they must survive.
        assert_eq!(doc["profile"]["dev"]["opt-level"].as_integer(), Some(1));
    }

    #[test]
    fn a_labs_relative_path_dependencies_become_absolute() {
        let lab = "[package]\nname = \"lab02\"\n[dependencies]\nlab01 = { path = \"../01-x\" }\nx.workspace = true\n";
        let out = absolutize_paths(lab, Path::new("/src/wb/labs/02-y"), &["dependencies"]).unwrap();
        assert!(out.contains("path = \"/src/wb/labs/02-y/../01-x\""), "{out}");
        assert!(out.contains("x.workspace = true"));
    }
}

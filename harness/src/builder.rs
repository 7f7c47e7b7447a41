//! Builds the agent and a lab's binaries with cargo.
//!
//! `--solution` builds a copy of the lab with the solution's files laid
//! over it, in `target/labctl/overlay/NN-slug`: a workspace of its own that
//! reuses the real workspace's dependencies, lints, lock file and target
//! directory, so nothing is rebuilt but the lab itself.

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;

use cargo_metadata::Message;

use crate::error::{Error, Result};
use crate::exec;
use crate::manifest::Lab;
use crate::workspace::Workspace;

/// What a lab build produced.
#[derive(Debug, Clone)]
pub enum LabBuild {
    /// The binaries, by path on the host.
    Built(Vec<PathBuf>),
    /// The student's code did not compile: a verdict, with cargo's output.
    Failed(String),
}

/// Which files a run builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Starter,
    Solution,
}

impl Variant {
    pub fn name(self) -> &'static str {
        match self {
            Variant::Starter => "starter",
            Variant::Solution => "solution",
        }
    }
}

pub const AGENT_PACKAGE: &str = "workbook-agent";

fn cargo(ws: &Workspace) -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    // The workspace's .cargo/config.toml applies to builds started here,
    // overlays included.
    cmd.current_dir(&ws.root).env("CARGO_TARGET_DIR", ws.target_dir());
    cmd
}

/// Builds the guest agent and returns its path.
pub fn build_agent(ws: &Workspace, quiet: bool) -> Result<PathBuf> {
    let mut cmd = cargo(ws);
    cmd.args([
        "build",
        "--quiet",
        "-p",
        AGENT_PACKAGE,
        "--bin",
        AGENT_PACKAGE,
        "--message-format=json-render-diagnostics",
    ]);
    match run_cargo(&mut cmd, quiet)? {
        (Some(mut bins), _) if !bins.is_empty() => Ok(bins.remove(0)),
        (_, output) => Err(Error::Command {
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

/// Builds a lab's binaries, from the starter or with the solution laid over,
/// and returns copies of them that no later build can overwrite.
pub fn build_lab(ws: &Workspace, lab: &Lab, variant: Variant, quiet: bool) -> Result<LabBuild> {
    // Starter and solution builds leave their binaries at the same path in
    // target/debug: hold a lock from the build until the copy is taken, so
    // that two labctl runs at once cannot swap them.
    let _lock = build_lock(ws)?;
    let package = package_name(&lab.dir)?;
    let mut cmd = cargo(ws);
    cmd.args(["build", "-p", &package, "--bins", "--message-format=json-render-diagnostics"]);
    if variant == Variant::Solution {
        let overlay = prepare_overlay(ws, lab)?;
        cmd.arg("--manifest-path").arg(overlay.join("Cargo.toml"));
    }
    let (bins, output) = run_cargo(&mut cmd, quiet)?;
    match bins {
        Some(bins) if !bins.is_empty() => {
            let copies: Result<Vec<PathBuf>> =
                bins.iter().map(|b| crate::image::stripped_copy(b, &ws.cache_dir())).collect();
            Ok(LabBuild::Built(copies?))
        }
        Some(_) => Err(Error::Usage(format!("{} builds no binary: give it a [[bin]]", lab.dir.display()))),
        None => Ok(LabBuild::Failed(output)),
    }
}

fn build_lock(ws: &Workspace) -> Result<nix::fcntl::Flock<fs::File>> {
    let dir = ws.target_dir().join("labctl");
    fs::create_dir_all(&dir).map_err(Error::io(format!("creating {}", dir.display())))?;
    let path = dir.join("build.lock");
    let file = fs::File::create(&path).map_err(Error::io(format!("creating {}", path.display())))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| Error::Io { context: format!("locking {}", path.display()), source: e.into() })
}

/// Runs cargo with JSON messages: the executables it built (None when the
/// build failed) and its rendered diagnostics, which are also shown live.
fn run_cargo(cmd: &mut Command, quiet: bool) -> Result<(Option<Vec<PathBuf>>, String)> {
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
    let stdout = BufReader::new(child.stdout.take().expect("piped"));
    for message in Message::parse_stream(stdout).flatten() {
        if let Message::CompilerArtifact(artifact) = message {
            if let Some(exe) = artifact.executable {
                bins.push(exe.into_std_path_buf());
            }
        }
    }
    let status = child.wait().map_err(Error::io("waiting for cargo"))?;
    let output = tee.join().unwrap_or_default();
    Ok((status.success().then_some(bins), output))
}

/// Lays `solutions/NN-slug` over a copy of `labs/NN-slug` and wraps it in a
/// workspace that mirrors the real one. Files are written only when their
/// content changed, so cargo's fingerprints stay valid between runs.
pub fn prepare_overlay(ws: &Workspace, lab: &Lab) -> Result<PathBuf> {
    if !lab.solution_dir.is_dir() {
        return Err(Error::Usage(format!(
            "lab {} has no solution: {} does not exist",
            lab.number(),
            lab.solution_dir.display()
        )));
    }
    let root = ws.target_dir().join("labctl/overlay").join(lab.dir_name());
    let dest = root.join("lab");
    let mut wanted = BTreeSet::new();
    for (base, is_solution) in [(&lab.dir, false), (&lab.solution_dir, true)] {
        for rel in files_under(base)? {
            let mut text =
                fs::read(base.join(&rel)).map_err(Error::io(format!("reading {}", base.join(&rel).display())))?;
            if rel == Path::new("Cargo.toml") {
                let manifest_dir = if is_solution { &lab.solution_dir } else { &lab.dir };
                text = absolutize_paths(
                    &String::from_utf8_lossy(&text),
                    manifest_dir,
                    &["dependencies", "build-dependencies", "dev-dependencies"],
                )?
                .into_bytes();
            }
            write_if_changed(&dest.join(&rel), &text)?;
            wanted.insert(rel);
        }
    }
    for rel in files_under(&dest)? {
        if !wanted.contains(&rel) {
            let _ = fs::remove_file(dest.join(rel));
        }
    }
    let ws_manifest =
        fs::read_to_string(ws.root.join("Cargo.toml")).map_err(Error::io("reading the workspace Cargo.toml"))?;
    write_if_changed(&root.join("Cargo.toml"), overlay_workspace(&ws_manifest, &ws.root)?.as_bytes())?;
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
fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
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
pub fn overlay_workspace(ws_manifest: &str, ws_root: &Path) -> Result<String> {
    let mut doc: toml_edit::DocumentMut =
        ws_manifest.parse().map_err(|e| Error::Usage(format!("the workspace Cargo.toml: {e}")))?;
    let workspace = doc
        .get_mut("workspace")
        .and_then(|w| w.as_table_mut())
        .ok_or_else(|| Error::Usage("the workspace Cargo.toml has no [workspace]".into()))?;
    let mut members = toml_edit::Array::new();
    members.push("lab");
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
    fn the_overlay_workspace_has_one_member_and_absolute_paths() {
        let ws = "[workspace]\nmembers = [\"harness\", \"labs/*\"]\n\n[workspace.dependencies]\nanyhow = \"1\"\nagent = { path = \"vm/agent\" }\n\n[profile.dev]\nopt-level = 1\n";
        let out = overlay_workspace(ws, Path::new("/src/wb")).unwrap();
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

//! The invariants every lab keeps, checked without a VM: one manifest per
//! lab, and everything else agreeing with it.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use labctl::workspace::Workspace;

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap().flatten() {
            let p = entry.path();
            if p.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// The binaries a lab crate builds: its [[bin]] names, or the package name.
fn binaries(lab_dir: &Path) -> BTreeSet<String> {
    let doc: toml::Table = toml::from_str(&fs::read_to_string(lab_dir.join("Cargo.toml")).unwrap()).unwrap();
    let mut bins: BTreeSet<String> = doc
        .get("bin")
        .and_then(|b| b.as_array())
        .map(|a| a.iter().filter_map(|b| b.get("name")?.as_str().map(String::from)).collect())
        .unwrap_or_default();
    if bins.is_empty() && lab_dir.join("src/main.rs").is_file() {
        bins.insert(doc["package"]["name"].as_str().unwrap().to_string());
    }
    bins
}

#[test]
fn every_lab_keeps_its_invariants() {
    let ws = Workspace::at(common::root()).unwrap();
    let labs = ws.labs().expect("every lab.toml parses and validates");
    let mut problems = Vec::new();
    for entry in fs::read_dir(ws.root.join("labs")).unwrap().flatten() {
        // Plain files (labs/given.lock) are not labs; every directory must be one.
        if entry.path().is_dir() && !entry.path().join("lab.toml").is_file() {
            problems.push(format!("{}: a directory under labs/ without lab.toml", entry.path().display()));
        }
    }
    for lab in &labs {
        let name = lab.dir_name();
        let package = labctl::builder::package_name(&lab.dir).unwrap();
        let expected = format!("lab{:02}-{}", lab.number(), lab.manifest.slug);
        if package != expected {
            problems.push(format!("{name}: package is {package:?}, expected {expected:?}"));
        }
        let starter = files_under(&lab.dir);
        let has_todo = starter
            .iter()
            .filter(|f| f.starts_with("src"))
            .any(|f| fs::read_to_string(lab.dir.join(f)).is_ok_and(|t| t.contains("TODO")));
        if !has_todo {
            problems.push(format!("{name}: the starter has no TODO for the student"));
        }
        if !lab.solution_dir.is_dir() {
            problems.push(format!("{name}: no solutions/{name}"));
        } else {
            let solution: Vec<PathBuf> =
                files_under(&lab.solution_dir).into_iter().filter(|f| !f.starts_with("mutants")).collect();
            if solution.is_empty() {
                problems.push(format!("solutions/{name} is empty"));
            }
            for f in &solution {
                if !starter.contains(f) {
                    problems.push(format!("solutions/{name}/{}: no starter file at the same path", f.display()));
                } else if fs::read(lab.solution_dir.join(f)).unwrap() == fs::read(lab.dir.join(f)).unwrap() {
                    problems.push(format!("solutions/{name}/{}: identical to the starter", f.display()));
                } else if !lab.is_student_file(f) {
                    // Grading builds given files from the lab's own copy: a
                    // solution that needs one changed could never pass.
                    problems.push(format!("solutions/{name}/{}: not one of the lab's student_files", f.display()));
                }
            }
            let mutants = labctl::builder::mutants(lab);
            if mutants.len() < labctl::cli::MIN_MUTANTS {
                problems.push(format!(
                    "solutions/{name}/mutants: {} mutants; a lab ships at least {}",
                    mutants.len(),
                    labctl::cli::MIN_MUTANTS
                ));
            }
            for m in &mutants {
                let summary = labctl::builder::mutant_summary(m);
                if summary.trim().is_empty() || summary.starts_with("---") || summary.starts_with("diff ") {
                    problems.push(format!("{}: the first line must say what is wrong", m.display()));
                }
            }
        }
        for f in &lab.manifest.student_files {
            let has_todo = fs::read_to_string(lab.dir.join(f)).is_ok_and(|t| t.contains("TODO"));
            if !has_todo && !f.ends_with(".h") {
                problems.push(format!("{name}: student file {f} has no TODO"));
            }
        }
        let bins = binaries(&lab.dir);
        for step in &lab.manifest.steps {
            if let Some(bin) = step.run[0].strip_prefix("/lab/bin/") {
                if !bins.contains(bin) {
                    problems.push(format!(
                        "{name}: step {:?} runs /lab/bin/{bin}, which the crate does not build ({bins:?})",
                        step.name
                    ));
                }
            }
        }
    }
    for entry in fs::read_dir(ws.root.join("solutions")).unwrap().flatten() {
        let dir_name = entry.file_name().to_string_lossy().into_owned();
        if !labs.iter().any(|l| l.dir_name() == dir_name) {
            problems.push(format!("solutions/{dir_name}: no lab with that name"));
        }
    }
    assert!(problems.is_empty(), "labs drifted from their manifests:\n  {}", problems.join("\n  "));
}

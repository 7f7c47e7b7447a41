//! Whose fault a failed lab build is.
//!
//! Only the student's own compile errors are a verdict ("the lab compiles:
//! BAD"): rustc errors located in the lab's files, and clang's errors in the
//! lab's BPF C, reported by the lab's build script. A missing or broken host
//! toolchain (no clang, no pkg-config, libbpf-sys failing to build, no C
//! linker) is a harness error that names the tool and how to install it;
//! so is any other failure outside the lab's files.

use std::path::Path;

use crate::error::Error;
use crate::tools;

/// An error rustc reported (from cargo's JSON messages).
#[derive(Debug, Clone, PartialEq)]
pub struct CompileError {
    /// The package it is in, by name.
    pub package: String,
    /// The files its spans point at, as rustc wrote them.
    pub files: Vec<String>,
}

/// A failed build is either the student's to fix or the harness's.
#[derive(Debug)]
pub enum Blame {
    /// Cargo's output, for the verdict.
    Student(String),
    Harness(Error),
}

/// The host tool that the build output says is missing or unusable, if it
/// names one: what libbpf-sys's and libbpf-cargo's build scripts, cargo
/// and the C toolchain print in that case.
pub fn blamed_tool(output: &str) -> Option<String> {
    let has = |needle: &str| output.contains(needle);
    // libbpf-sys checks its tools first: "make is required to compile
    // libbpf-sys with the selected set of features".
    if let Some(at) = output.find(" is required to compile libbpf-sys") {
        let tool = output[..at].rsplit(|c: char| c.is_whitespace() || c == '\'' || c == '`').next().unwrap_or("");
        if !tool.is_empty() {
            return Some(tool.to_string());
        }
    }
    if has("a C compiler is required to compile libbpf-sys") || has("linker `cc` not found") {
        return Some("cc".into());
    }
    if has("failed to execute `clang") || has("clang: not found") || has("clang: command not found") {
        return Some("clang".into());
    }
    if has("Could not run `\"pkg-config\"") || has("pkg-config: not found") || has("pkg-config: command not found") {
        return Some("pkg-config".into());
    }
    if has("libelf.h: No such file") || has("gelf.h: No such file") || has("cannot find -lelf") {
        return Some("libelf".into());
    }
    if has("zlib.h: No such file") || has("cannot find -lz") {
        return Some("zlib".into());
    }
    None
}

/// The lab's own build script failed ("failed to run custom build command
/// for `lab03-hello-world v0.1.0 (...)`").
fn own_build_script_failed(output: &str, package: &str) -> bool {
    output.contains(&format!("failed to run custom build command for `{package} "))
}

/// clang's errors in the lab's C files, as the build script relays them
/// (`src/bpf/hello.bpf.c:9:5: error: ...`).
fn clang_errors_in_lab_files(output: &str) -> bool {
    output.lines().any(|l| {
        let l = without_cause_index(l.trim_start());
        l.contains(": error: ")
            && l.split(':').next().is_some_and(|file| file.ends_with(".c") || file.ends_with(".h"))
            && !l.starts_with('/')
    })
}

/// A line of an error's chain of causes as the build script prints it
/// (`3: src/bpf/hello.bpf.c:21:9: error: ...`), without its index.
fn without_cause_index(line: &str) -> &str {
    match line.split_once(": ") {
        Some((index, rest)) if !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()) => rest,
        _ => line,
    }
}

/// The files that rustc's errors point at, as cargo renders them
/// (`error[E0063]: ...` then `  --> src/map.rs:47:9`). With
/// `--message-format=json-render-diagnostics` cargo renders rustc's
/// diagnostics itself and leaves them out of its JSON, so the rendered
/// text is where they are.
fn rendered_error_files(output: &str) -> Vec<&str> {
    let mut in_error = false;
    let mut files = Vec::new();
    for line in output.lines() {
        if line.starts_with("error") {
            in_error = true;
        } else if line.starts_with("warning") {
            in_error = false;
        }
        if let Some(at) = line.trim_start().strip_prefix("--> ").filter(|_| in_error) {
            // FILE:LINE:COLUMN; a file name may hold a colon, the last two
            // fields never do.
            let mut parts = at.rsplitn(3, ':');
            let (col, line_no, file) = (parts.next(), parts.next(), parts.next());
            let numeric = |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
            if let (true, true, Some(file)) = (numeric(col), numeric(line_no), file) {
                files.push(file);
            }
        }
    }
    files
}

/// Decides whose fault a failed build of `package` (whose files are under
/// `lab_dir`) is, from rustc's errors and cargo's rendered output.
pub fn blame(package: &str, lab_dir: &Path, errors: &[CompileError], output: String) -> Blame {
    if let Some(tool) = blamed_tool(&output) {
        return Blame::Harness(tools::missing_or_broken(&tool, &output));
    }
    let in_lab = |file: &str| {
        let path = Path::new(file);
        path.is_relative() || path.starts_with(lab_dir)
    };
    if errors.iter().any(|e| e.package == package && e.files.iter().any(|f| in_lab(f))) {
        return Blame::Student(output);
    }
    if rendered_error_files(&output).into_iter().any(in_lab) {
        return Blame::Student(output);
    }
    if own_build_script_failed(&output, package) && clang_errors_in_lab_files(&output) {
        return Blame::Student(output);
    }
    let tail: Vec<&str> = output.lines().rev().take(30).collect();
    Blame::Harness(Error::Command {
        command: format!("cargo build -p {package}"),
        status: "failed, and not in the lab's own files (the toolchain or a dependency is broken; `labctl doctor` \
                 checks the toolchain)"
            .into(),
        stderr: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAB: &str = "/w/target/labctl/overlay/03-hello-world/starter/lab";

    fn student(b: &Blame) -> bool {
        matches!(b, Blame::Student(_))
    }

    #[test]
    fn rust_errors_in_the_labs_files_are_the_students() {
        let errors = [CompileError { package: "lab03-hello-world".into(), files: vec!["src/main.rs".into()] }];
        let b = blame("lab03-hello-world", Path::new(LAB), &errors, "error[E0425]: cannot find value `x`".into());
        assert!(student(&b), "{b:?}");
    }

    #[test]
    fn rendered_rust_errors_in_the_labs_files_are_the_students() {
        // What cargo prints with --message-format=json-render-diagnostics:
        // no JSON for the error, only its rendering.
        let out = "   Compiling lab08-bpf-syscall v0.1.0 (/w/target/labctl/overlay/08-bpf-syscall/starter/starter)\n\
                   warning: unused import\n  --> /root/.cargo/registry/src/x/lib.rs:3:5\n\
                   error[E0063]: missing field `shadow` in initializer of `CountMap`\n\
                   \x20 --> starter/src/map.rs:47:9\n   |\n47 |         Self { fd }\n\n\
                   error: could not compile `lab08-bpf-syscall` (lib) due to 1 previous error\n";
        assert_eq!(rendered_error_files(out), vec!["starter/src/map.rs"]);
        let b = blame("lab08-bpf-syscall", Path::new(LAB), &[], out.into());
        assert!(student(&b), "{b:?}");
        // An error in a dependency, outside the lab: the harness's.
        let dep = "error[E0599]: no method named `x`\n  --> /root/.cargo/registry/src/x/lib.rs:9:1\n";
        assert!(!student(&blame("lab08-bpf-syscall", Path::new(LAB), &[], dep.into())));
        // A warning's location is not an error's.
        let warn = "warning: unused\n  --> src/main.rs:1:1\nerror: linking with `cc` failed\n";
        assert!(rendered_error_files(warn).is_empty());
    }

    #[test]
    fn clang_errors_in_the_labs_bpf_c_are_the_students() {
        let out = "error: failed to run custom build command for `lab03-hello-world v0.1.0 (/w/lab)`\n\
                   Caused by:\n  process didn't exit successfully\n  --- stderr\n\
                   failed to compile /tmp/x/hello.bpf.o from src/bpf/hello.bpf.c: command `clang -g -O2 ...` failed\n\
                   src/bpf/hello.bpf.c:9:5: error: use of undeclared identifier 'pid'\n";
        let b = blame("lab03-hello-world", Path::new(LAB), &[], out.into());
        assert!(student(&b), "{b:?}");
    }

    #[test]
    fn clang_errors_numbered_in_the_chain_of_causes_are_the_students() {
        // What the build script prints today: anyhow's chain of causes,
        // the compiler's message under its index.
        let out = "error: failed to run custom build command for `lab03-hello-world v0.1.0 (/w/target/labctl/overlay/03-hello-world/starter/starter)`\n\
                   Caused by:\n      0: failed to compile `src/bpf/hello.bpf.c`\n\
                   \x20     2: command `clang -g -O2 -target bpf -c src/bpf/hello.bpf.c -o /tmp/x.o` failed (exit status: 1)\n\
                   \x20     3: src/bpf/hello.bpf.c:21:9: error: use of undeclared identifier 'undeclared_thing'\n\
                   \x20                return undeclared_thing;\n";
        assert!(student(&blame("lab03-hello-world", Path::new("/w/labs/03-hello-world"), &[], out.into())));
        assert_eq!(without_cause_index("12: a: error: b"), "a: error: b");
        assert_eq!(without_cause_index("src/x.c:1:2: error: y"), "src/x.c:1:2: error: y");
    }

    #[test]
    fn a_missing_clang_is_the_harness_and_names_the_fix() {
        let out = "error: failed to run custom build command for `lab03-hello-world v0.1.0 (/w/lab)`\n\
                   thread 'main' panicked at build.rs:14:10:\ncompiling the BPF program failed: \
                   failed to compile `src/bpf/hello.bpf.c`\n\nCaused by:\n    0: failed to execute `clang`\n\
                   1: No such file or directory (os error 2)\n";
        match blame("lab03-hello-world", Path::new(LAB), &[], out.into()) {
            Blame::Harness(e) => {
                let e = e.to_string();
                assert!(e.contains("clang") && e.contains("apt-get install clang"), "{e}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_broken_libbpf_sys_build_is_the_harness() {
        for (out, tool) in [
            (
                "error: failed to run custom build command for `libbpf-sys v1.7.0`\n  pkg-config is required to compile libbpf-sys with the selected set of features",
                "pkg-config",
            ),
            (
                "error: failed to run custom build command for `libbpf-sys v1.7.0`\n  libbpf/src/libbpf.c:44:10: fatal error: libelf.h: No such file or directory",
                "libelf-dev",
            ),
            ("error: linker `cc` not found\n  = note: No such file or directory (os error 2)", "gcc"),
        ] {
            match blame("lab03-hello-world", Path::new(LAB), &[], out.into()) {
                Blame::Harness(e) => assert!(e.to_string().contains(tool), "{e}"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn errors_outside_the_lab_are_the_harness_even_without_a_known_tool() {
        let errors = [CompileError { package: "libbpf-rs".into(), files: vec!["/home/u/.cargo/registry/x.rs".into()] }];
        let b = blame("lab03-hello-world", Path::new(LAB), &errors, "error: could not compile `libbpf-rs`".into());
        match b {
            Blame::Harness(e) => assert!(e.to_string().contains("not in the lab's own files"), "{e}"),
            other => panic!("{other:?}"),
        }
        // A cargo that fails without a word about any file.
        let b = blame("lab03-hello-world", Path::new(LAB), &[], "error: something broke".into());
        assert!(!student(&b));
    }
}

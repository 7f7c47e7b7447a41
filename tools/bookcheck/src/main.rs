use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

/// Checks the eBPF Workbook's book against its labs: every lab has a page
/// listed under its chapter, every include and anchor exists, every internal
/// link and fragment resolves.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The repository root (the directory holding book/ and labs/). Default:
    /// the nearest ancestor of the current directory that has book/book.toml.
    root: Option<PathBuf>,
}

/// Exit codes: 0 the book is fine, 1 it has problems, 2 it could not be read.
fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bookcheck: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Args) -> Result<ExitCode> {
    let root = match args.root {
        Some(root) => root,
        None => find_root()?,
    };
    let problems =
        bookcheck::check(&root).with_context(|| format!("failed to check the book in {}", root.display()))?;
    for problem in &problems {
        println!("{problem}");
    }
    if problems.is_empty() {
        println!("book OK");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{} problem(s) in the book", problems.len());
        Ok(ExitCode::from(1))
    }
}

fn find_root() -> Result<PathBuf> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    cwd.ancestors()
        .find(|dir| dir.join("book/book.toml").is_file())
        .map(PathBuf::from)
        .with_context(|| format!("no book/book.toml in {} or above", cwd.display()))
}

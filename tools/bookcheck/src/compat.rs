//! The compatibility table: lab x kernel, written by book/outputs.sh from a
//! real run of every lab on every kernel (`labctl verify --kernel all`,
//! then `labctl matrix`). Every lab must have a row, so that a new lab
//! cannot reach the book without having been run on the whole matrix; and
//! the README's copy must be the same table.

use std::path::Path;

use crate::{Book, Error, Lab, Problem, read};

/// The table, relative to the book's source directory.
pub const TABLE: &str = "generated/compatibility.txt";
/// The README's copy of the table sits between these lines.
pub const README_BEGIN: &str = "<!-- compatibility:begin";
pub const README_END: &str = "<!-- compatibility:end -->";

const REGENERATE: &str = "run `just book-outputs`, which runs every lab on every kernel of the matrix";

pub(crate) fn check_compatibility(book: &Book, labs: &[Lab], problems: &mut Vec<Problem>) -> Result<(), Error> {
    let layout = &book.layout;
    let table_file = layout.src.join(TABLE);
    let shown = layout.display_path(&table_file);
    if labs.is_empty() {
        return Ok(());
    }
    if !table_file.is_file() {
        problems.push(Problem {
            path: shown,
            line: 1,
            message: format!("the compatibility table is missing: {REGENERATE}"),
        });
        return Ok(());
    }
    let table = read(&table_file)?;
    for lab in labs {
        let row = format!("| {} |", lab.dir_name);
        if !table.lines().any(|line| line.starts_with(&row)) {
            problems.push(Problem {
                path: shown.clone(),
                line: 1,
                message: format!("lab {} is missing from the compatibility table: {REGENERATE}", lab.dir_name),
            });
        }
    }
    check_readme_copy(
        &layout.root.join("README.md"),
        &table,
        layout.display_path(&layout.root.join("README.md")).as_path(),
        problems,
    )
}

/// The lines of `text` between the README markers, if it has them, and the
/// 1-based line of the first marker.
pub fn readme_copy(text: &str) -> Option<(String, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let begin = lines.iter().position(|l| l.starts_with(README_BEGIN))?;
    let end = begin + lines[begin..].iter().position(|l| l.starts_with(README_END))?;
    Some((lines[begin + 1..end].iter().map(|l| format!("{l}\n")).collect(), begin + 1))
}

fn check_readme_copy(readme: &Path, table: &str, shown: &Path, problems: &mut Vec<Problem>) -> Result<(), Error> {
    if !readme.is_file() {
        return Ok(());
    }
    let text = read(readme)?;
    match readme_copy(&text) {
        Some((copy, _)) if copy == table => {}
        Some((_, line)) => problems.push(Problem {
            path: shown.to_path_buf(),
            line,
            message: format!("the README's compatibility table differs from book/src/{TABLE}: {REGENERATE}"),
        }),
        None if text.contains(README_BEGIN) => problems.push(Problem {
            path: shown.to_path_buf(),
            line: 1,
            message: format!("the README's compatibility table has no `{README_END}` line"),
        }),
        None => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_copy_is_what_lies_between_the_markers() {
        let text =
            "# R\n\n<!-- compatibility:begin (generated) -->\n| lab |\n| 01-a |\n<!-- compatibility:end -->\nend\n";
        assert_eq!(readme_copy(text), Some(("| lab |\n| 01-a |\n".to_string(), 3)));
        assert_eq!(readme_copy("no table\n"), None);
        assert_eq!(readme_copy("<!-- compatibility:begin -->\nunclosed\n"), None);
    }
}

//! Keeps the book and the labs from drifting apart.
//!
//! `mdbook build` happily renders a page whose `{{#include}}` names a moved
//! file (it logs a warning and shows nothing), a link to a renamed heading, or
//! a lab that no page mentions. [`check`] finds those, and reports each one as
//! a [`Problem`] naming the file and line to fix. Problems are values: the
//! only errors are a book that cannot be read at all.

mod compat;
mod includes;
mod labs;
mod markdown;
mod summary;
pub mod translation;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};

pub use includes::{Include, find_includes};
pub use labs::{Lab, read_labs};
pub use markdown::{Link, PageIndex, heading_id};
pub use summary::{Entry, Summary};

/// Chapters that must link to at least one lab page, whatever the lab
/// manifests say: the first four chapters are the hands-on part of the book.
pub const CHAPTERS_WITH_LABS: std::ops::RangeInclusive<usize> = 1..=4;

/// One thing wrong with the book, at a place a person can open.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    /// The file to fix, relative to the repository root.
    pub path: PathBuf,
    /// 1-based line in `path`.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path.display(), self.line, self.message)
    }
}

/// The book could not be read at all (as opposed to being read and found
/// wanting, which is a [`Problem`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// Where the book and the labs live inside a repository.
#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
    /// The directory holding `book.toml`.
    pub book: PathBuf,
    /// The book's source directory (`[book] src` in book.toml, default `src`).
    pub src: PathBuf,
    /// The directory whose `NN-slug/lab.toml` children are the labs.
    pub labs: PathBuf,
}

impl Layout {
    /// Reads `ROOT/book/book.toml` to find the book's source directory.
    pub fn discover(root: &Path) -> Result<Layout, Error> {
        let book = root.join("book");
        let book_toml = book.join("book.toml");
        let text = read(&book_toml)?;
        let table: toml::Table = text
            .parse()
            .map_err(|e| Error::Invalid { path: book_toml.clone(), message: format!("not valid TOML: {e}") })?;
        let src = table.get("book").and_then(|b| b.get("src")).and_then(|s| s.as_str()).unwrap_or("src");
        Ok(Layout { root: root.to_path_buf(), src: book.join(src), book, labs: root.join("labs") })
    }

    /// `path` relative to the repository root, for messages.
    pub fn display_path(&self, path: &Path) -> PathBuf {
        path.strip_prefix(&self.root).map(Path::to_path_buf).unwrap_or_else(|_| path.to_path_buf())
    }
}

/// The book as read from disk: its summary and every page it lists.
#[derive(Debug)]
pub struct Book {
    pub layout: Layout,
    pub summary: Summary,
    /// Pages by path relative to the source directory.
    pub pages: BTreeMap<PathBuf, PageIndex>,
}

impl Book {
    /// Reads SUMMARY.md and every page it lists that exists; a listed page
    /// that is missing is reported by [`check`], not here.
    pub fn load(layout: Layout) -> Result<Book, Error> {
        let summary_path = layout.src.join("SUMMARY.md");
        let summary = Summary::parse(&read(&summary_path)?);
        let mut pages = BTreeMap::new();
        for entry in &summary.entries {
            let Some(rel) = &entry.path else { continue };
            let file = layout.src.join(rel);
            if file.is_file() {
                pages.insert(rel.clone(), PageIndex::parse(&read(&file)?));
            }
        }
        Ok(Book { layout, summary, pages })
    }
}

/// Checks the book in `root/book` against the labs in `root/labs`.
pub fn check(root: &Path) -> Result<Vec<Problem>, Error> {
    let book = Book::load(Layout::discover(root)?)?;
    let labs = read_labs(&book.layout.labs)?;
    let mut problems = Vec::new();
    check_summary(&book, &mut problems);
    for (rel, page) in &book.pages {
        check_includes(&book, rel, page, &mut problems)?;
        check_links(&book, rel, page, &mut problems);
    }
    labs::check_labs(&book, &labs, &mut problems);
    compat::check_compatibility(&book, &labs, &mut problems)?;
    translation::check_catalogs(&book.layout.book, |path| book.layout.display_path(path), &mut problems)?;
    problems.sort();
    problems.dedup();
    Ok(problems)
}

fn check_summary(book: &Book, problems: &mut Vec<Problem>) {
    let summary_file = book.layout.display_path(&book.layout.src.join("SUMMARY.md"));
    for entry in &book.summary.entries {
        let Some(rel) = &entry.path else { continue };
        if !book.layout.src.join(rel).is_file() {
            problems.push(Problem {
                path: summary_file.clone(),
                line: entry.line,
                message: format!("\"{}\" points at {}, which does not exist", entry.title, rel.display()),
            });
        }
    }
}

fn check_includes(book: &Book, rel: &Path, page: &PageIndex, problems: &mut Vec<Problem>) -> Result<(), Error> {
    let page_file = book.layout.src.join(rel);
    let page_dir = page_file.parent().unwrap_or(&book.layout.src);
    let at = |line: usize, message: String| Problem { path: book.layout.display_path(&page_file), line, message };
    for include in find_includes(&page.text) {
        let target = normalize(&page_dir.join(&include.path));
        if !target.is_file() {
            problems.push(at(
                include.line,
                format!(
                    "{{{{#include}}}} names {}, which does not exist (resolved to {})",
                    include.path,
                    book.layout.display_path(&target).display()
                ),
            ));
            continue;
        }
        if let Some(anchor) = &include.anchor {
            let text = read(&target)?;
            if let Err(why) = includes::anchor_span(&text, anchor) {
                problems.push(at(
                    include.line,
                    format!("{{{{#include}}}} names anchor `{anchor}` in {}, but {why}", include.path),
                ));
            }
        }
        let generated = normalize(&book.layout.src.join("generated"));
        if target.starts_with(&generated) {
            let name = target.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            if !includes::outputs_script_produces(&book.layout.book, name)? {
                problems.push(at(
                    include.line,
                    format!(
                        "{} is command output, but book/outputs.sh has no `capture {name}` \
                         that produces it",
                        include.path
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn check_links(book: &Book, rel: &Path, page: &PageIndex, problems: &mut Vec<Problem>) {
    let page_file = book.layout.src.join(rel);
    let page_dir = rel.parent().unwrap_or(Path::new(""));
    // A translated edition has headings of its own, so links between pages
    // must name ids that do not depend on the heading's words.
    let translated = book.layout.book.join(translation::TEMPLATE).is_file();
    for link in &page.links {
        let Some((path_part, fragment)) = link.internal_target() else {
            continue;
        };
        let problem =
            |message: String| Problem { path: book.layout.display_path(&page_file), line: link.line, message };
        // A link to a fragment of this very page.
        if path_part.is_empty() {
            if let Some(fragment) = fragment {
                if !page.ids.contains(fragment) {
                    problems.push(problem(format!("link to #{fragment}: this page has no heading with that id")));
                } else if translated && !page.explicit_ids.contains(fragment) {
                    problems.push(problem(format!(
                        "link to #{fragment}: the id comes from the heading's English text, which the \
                         translated edition does not have; give the heading an explicit id \
                         (`## Heading {{#{fragment}}}`)"
                    )));
                }
            }
            continue;
        }
        let target = normalize(&page_dir.join(path_part));
        if target.starts_with("..") {
            problems.push(problem(format!(
                "link to {path_part} leaves the book's source directory, so the built \
                 book will not contain it"
            )));
            continue;
        }
        let as_page = match target.extension().and_then(|e| e.to_str()) {
            Some("md") => Some(target.clone()),
            Some("html") => Some(target.with_extension("md")),
            _ => None,
        };
        match as_page {
            Some(page_rel) => match book.pages.get(&page_rel) {
                Some(target_page) => {
                    if let Some(fragment) = fragment {
                        if !target_page.ids.contains(fragment) {
                            problems.push(problem(format!(
                                "link to {path_part}#{fragment}: {} has no heading with that id",
                                page_rel.display()
                            )));
                        } else if translated && !target_page.explicit_ids.contains(fragment) {
                            problems.push(problem(format!(
                                "link to {path_part}#{fragment}: the id comes from the heading's English text, \
                                 which the translated edition does not have; give the heading in {} an explicit \
                                 id (`## Heading {{#{fragment}}}`)",
                                page_rel.display()
                            )));
                        }
                    }
                }
                None if book.layout.src.join(&page_rel).is_file() => {
                    problems.push(problem(format!(
                        "link to {path_part}: that page is not listed in SUMMARY.md, so \
                         mdbook does not render it"
                    )));
                }
                None => problems.push(problem(format!(
                    "link to {path_part}: no such page ({} does not exist)",
                    book.layout.display_path(&book.layout.src.join(&page_rel)).display()
                ))),
            },
            None => {
                if !book.layout.src.join(&target).exists() {
                    problems.push(problem(format!(
                        "link to {path_part}: no such file ({} does not exist)",
                        book.layout.display_path(&book.layout.src.join(&target)).display()
                    )));
                }
            }
        }
    }
}

/// Resolves `.` and `..` lexically (the files may not exist, so no
/// `canonicalize`). A leading `..` that cannot be resolved is kept.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                let last_is_normal = matches!(out.components().next_back(), Some(Component::Normal(_)));
                if last_is_normal {
                    out.pop();
                } else {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

fn read(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Read { path: path.to_path_buf(), source })
}

/// 1-based line number of byte `offset` in `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_resolves_parent_directories_lexically() {
        assert_eq!(normalize(Path::new("labs/../images/a.svg")), PathBuf::from("images/a.svg"));
        assert_eq!(normalize(Path::new("./labs/./x.md")), PathBuf::from("labs/x.md"));
        assert_eq!(normalize(Path::new("../x.md")), PathBuf::from("../x.md"));
        assert_eq!(normalize(Path::new("/a/b/../../c")), PathBuf::from("/c"));
    }

    #[test]
    fn line_of_counts_newlines_before_the_offset() {
        let text = "one\ntwo\nthree";
        assert_eq!(line_of(text, 0), 1);
        assert_eq!(line_of(text, 4), 2);
        assert_eq!(line_of(text, text.len()), 3);
    }

    #[test]
    fn problem_display_names_file_and_line() {
        let problem = Problem { path: PathBuf::from("book/src/ch01.md"), line: 7, message: "broken".into() };
        assert_eq!(problem.to_string(), "book/src/ch01.md:7: broken");
    }
}

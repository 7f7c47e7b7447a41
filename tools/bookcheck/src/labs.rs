//! The labs as the book sees them: every `labs/NN-slug/lab.toml` must have a
//! page in the book, listed under its chapter, and linked from that chapter.

use std::path::{Path, PathBuf};

use crate::{Book, CHAPTERS_WITH_LABS, Error, Problem, normalize, read};

/// The fields of a lab manifest the book cares about. The harness owns the
/// schema and validates it strictly; this reads leniently so that a new
/// manifest field never breaks the book check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lab {
    /// The lab's directory name, `NN-slug`; its page is `labs/NN-slug.md`.
    pub dir_name: String,
    /// `labs/NN-slug/lab.toml`.
    pub manifest: PathBuf,
    pub title: Option<String>,
    pub chapter: Option<usize>,
    /// 1-based line of `chapter =` in the manifest (1 when absent), where a
    /// problem about this lab is reported.
    pub chapter_line: usize,
}

impl Lab {
    /// The page's path relative to the book's source directory.
    pub fn page(&self) -> PathBuf {
        PathBuf::from("labs").join(format!("{}.md", self.dir_name))
    }
}

/// Every directory under `labs_dir` that has a lab.toml, sorted by name.
pub fn read_labs(labs_dir: &Path) -> Result<Vec<Lab>, Error> {
    let mut labs = Vec::new();
    let entries = match std::fs::read_dir(labs_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(labs),
        Err(source) => {
            return Err(Error::Read { path: labs_dir.to_path_buf(), source });
        }
    };
    for entry in entries {
        let entry = entry.map_err(|source| Error::Read { path: labs_dir.to_path_buf(), source })?;
        let manifest = entry.path().join("lab.toml");
        if !manifest.is_file() {
            continue;
        }
        let text = read(&manifest)?;
        let table: toml::Table = text
            .parse()
            .map_err(|e| Error::Invalid { path: manifest.clone(), message: format!("not valid TOML: {e}") })?;
        // The fields may sit at the top level or in a [lab] table.
        let field = |name: &str| table.get(name).or_else(|| table.get("lab").and_then(|lab| lab.get(name))).cloned();
        let chapter_line =
            text.lines().position(|l| l.trim_start().starts_with("chapter")).map_or(1, |index| index + 1);
        labs.push(Lab {
            dir_name: entry.file_name().to_string_lossy().into_owned(),
            title: field("title").and_then(|v| v.as_str().map(str::to_string)),
            chapter: field("chapter").and_then(|v| v.as_integer()).and_then(|n| usize::try_from(n).ok()),
            chapter_line,
            manifest,
        });
    }
    labs.sort_by(|a, b| a.dir_name.cmp(&b.dir_name));
    Ok(labs)
}

pub(crate) fn check_labs(book: &Book, labs: &[Lab], problems: &mut Vec<Problem>) {
    let layout = &book.layout;
    let summary_file = layout.display_path(&layout.src.join("SUMMARY.md"));
    for lab in labs {
        let page = lab.page();
        let at_manifest =
            |message: String| Problem { path: layout.display_path(&lab.manifest), line: lab.chapter_line, message };
        if !layout.src.join(&page).is_file() {
            problems.push(at_manifest(format!(
                "lab {} has no book page: expected {}",
                lab.dir_name,
                layout.display_path(&layout.src.join(&page)).display()
            )));
            continue;
        }
        let Some(entry) = book.summary.entry_for(&page) else {
            problems.push(at_manifest(format!(
                "lab {}'s page {} is not listed in {}",
                lab.dir_name,
                page.display(),
                summary_file.display()
            )));
            continue;
        };
        let Some(chapter) = lab.chapter else { continue };
        if entry.chapter != Some(chapter) || entry.depth == 0 {
            problems.push(Problem {
                path: summary_file.clone(),
                line: entry.line,
                message: format!(
                    "{} should be nested under chapter {chapter}, as {} says",
                    page.display(),
                    layout.display_path(&lab.manifest).display()
                ),
            });
        }
        let Some(chapter_entry) = book.summary.chapter(chapter) else {
            problems.push(at_manifest(format!(
                "lab {} belongs to chapter {chapter}, but SUMMARY.md has no such chapter",
                lab.dir_name
            )));
            continue;
        };
        if let Some(chapter_page) = &chapter_entry.path
            && book.pages.contains_key(chapter_page)
            && !links_to(book, chapter_page, &page)
        {
            problems.push(Problem {
                path: layout.display_path(&layout.src.join(chapter_page)),
                line: 1,
                message: format!("chapter {chapter} does not link to its lab {} ({})", lab.dir_name, page.display()),
            });
        }
    }

    for number in CHAPTERS_WITH_LABS {
        let Some(entry) = book.summary.chapter(number) else {
            problems.push(Problem {
                path: summary_file.clone(),
                line: 1,
                message: format!("the book has no chapter {number}"),
            });
            continue;
        };
        let Some(rel) = &entry.path else { continue };
        let Some(page) = book.pages.get(rel) else {
            continue;
        };
        let links_a_lab = page.links.iter().any(|link| {
            link.internal_target().is_some_and(|(path, _)| {
                let target = normalize(&rel.parent().unwrap_or(Path::new("")).join(path));
                target.starts_with("labs") && !path.is_empty()
            })
        });
        if !links_a_lab {
            problems.push(Problem {
                path: layout.display_path(&layout.src.join(rel)),
                line: 1,
                message: format!("chapter {number} (\"{}\") links to no lab page under labs/", entry.title),
            });
        }
    }
}

/// Whether page `from` has a link to page `to` (both relative to src).
fn links_to(book: &Book, from: &Path, to: &Path) -> bool {
    let Some(page) = book.pages.get(from) else {
        return false;
    };
    let dir = from.parent().unwrap_or(Path::new(""));
    page.links.iter().any(|link| {
        link.internal_target().is_some_and(|(path, _)| !path.is_empty() && normalize(&dir.join(path)) == to)
    })
}

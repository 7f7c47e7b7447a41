//! SUMMARY.md, read the way mdbook numbers it: prefix chapters (plain links
//! before the first list), numbered chapters (list items; the top-level ones
//! are chapters 1, 2, ...) and suffix chapters.

use std::path::PathBuf;
use std::sync::LazyLock;

use regex::Regex;

/// `- [Title](path)` or `* [Title](path)`, indented for nesting. The title is
/// greedy so that titles containing brackets or parentheses still parse; the
/// path cannot contain parentheses.
static LIST_ITEM: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^(\s*)[-*]\s+\[(.*)\]\(([^()]*)\)\s*$").unwrap());
/// `[Title](path)` outside a list: a prefix or suffix chapter.
static PLAIN_ITEM: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\[(.*)\]\(([^()]*)\)\s*$").unwrap());

/// One linked line of SUMMARY.md.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub title: String,
    /// Relative to the book's source directory; `None` for a draft chapter
    /// (`[Title]()`).
    pub path: Option<PathBuf>,
    /// 1-based line in SUMMARY.md.
    pub line: usize,
    /// 0 for top-level items and for prefix/suffix chapters.
    pub depth: usize,
    /// The top-level numbered chapter this entry is or belongs to; `None` for
    /// prefix and suffix chapters.
    pub chapter: Option<usize>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub entries: Vec<Entry>,
}

impl Summary {
    pub fn parse(text: &str) -> Summary {
        let mut entries = Vec::new();
        let mut chapter = 0;
        // The indentation of each open nesting level, to turn columns into
        // depths however many spaces the author used per level.
        let mut indents: Vec<usize> = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            if let Some(caps) = LIST_ITEM.captures(raw) {
                let indent = caps[1].chars().count();
                while indents.last().is_some_and(|&open| open > indent) {
                    indents.pop();
                }
                if indents.last() != Some(&indent) {
                    indents.push(indent);
                }
                let depth = indents.len() - 1;
                if depth == 0 {
                    chapter += 1;
                }
                entries.push(Entry {
                    title: caps[2].to_string(),
                    path: non_empty_path(&caps[3]),
                    line,
                    depth,
                    chapter: Some(chapter),
                });
            } else if let Some(caps) = PLAIN_ITEM.captures(raw.trim_end()) {
                entries.push(Entry {
                    title: caps[1].to_string(),
                    path: non_empty_path(&caps[2]),
                    line,
                    depth: 0,
                    chapter: None,
                });
            }
        }
        Summary { entries }
    }

    /// The top-level entry of numbered chapter `number` (1-based).
    pub fn chapter(&self, number: usize) -> Option<&Entry> {
        self.entries.iter().find(|e| e.depth == 0 && e.chapter == Some(number))
    }

    /// All top-level numbered chapters, in order.
    pub fn chapters(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| e.depth == 0 && e.chapter.is_some())
    }

    /// The entry whose page is `rel`.
    pub fn entry_for(&self, rel: &std::path::Path) -> Option<&Entry> {
        self.entries.iter().find(|e| e.path.as_deref() == Some(rel))
    }
}

fn non_empty_path(path: &str) -> Option<PathBuf> {
    let path = path.trim();
    (!path.is_empty()).then(|| PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUMMARY: &str = "# Summary

[Introduction](introduction.md)

---

- [What Is eBPF?](ch01.md)
  - [Lab 01: Syscall census](labs/01-syscall-census.md)
  - [Lab 02](labs/02.md)
- [The bpf() System Call](ch02.md)
    - [Deeper](ch02/deeper.md)
        - [Deepest](ch02/deepest.md)
- [Draft]()

[Appendix](appendix.md)
";

    #[test]
    fn numbers_top_level_items_as_chapters() {
        let summary = Summary::parse(SUMMARY);
        let chapters: Vec<_> = summary.chapters().map(|e| e.title.as_str()).collect();
        assert_eq!(chapters, ["What Is eBPF?", "The bpf() System Call", "Draft"]);
        assert_eq!(summary.chapter(2).unwrap().path, Some("ch02.md".into()));
        assert_eq!(summary.chapter(2).unwrap().line, 10);
        assert_eq!(summary.chapter(3).unwrap().path, None);
    }

    #[test]
    fn nested_items_belong_to_their_chapter_at_any_indentation() {
        let summary = Summary::parse(SUMMARY);
        let lab = summary.entry_for(std::path::Path::new("labs/01-syscall-census.md")).unwrap();
        assert_eq!((lab.depth, lab.chapter, lab.line), (1, Some(1), 8));
        let deepest = summary.entry_for(std::path::Path::new("ch02/deepest.md")).unwrap();
        assert_eq!((deepest.depth, deepest.chapter), (2, Some(2)));
    }

    #[test]
    fn prefix_and_suffix_chapters_have_no_number() {
        let summary = Summary::parse(SUMMARY);
        let intro = summary.entry_for(std::path::Path::new("introduction.md")).unwrap();
        assert_eq!((intro.chapter, intro.line), (None, 3));
        let appendix = summary.entry_for(std::path::Path::new("appendix.md")).unwrap();
        assert_eq!(appendix.chapter, None);
    }
}

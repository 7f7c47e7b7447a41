//! What a page offers (heading ids) and what it points at (links), read with
//! the same Markdown parser and options mdbook uses.

use std::collections::HashSet;
use std::sync::LazyLock;

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use regex::Regex;

use crate::line_of;

/// `id="..."` in raw HTML, which also makes a valid fragment target.
static HTML_ID: LazyLock<Regex> = LazyLock::new(|| Regex::new(r#"\bid="([^"]+)""#).unwrap());
/// A URL scheme (`https:`, `mailto:`): the link leaves the book.
static SCHEME: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[A-Za-z][A-Za-z0-9+.-]*:").unwrap());

/// A link or image in a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub dest: String,
    /// 1-based line of the link in the page source.
    pub line: usize,
}

impl Link {
    /// For a link inside the book: the path part (empty for `#fragment`)
    /// and the fragment. `None` for external and site-absolute links.
    pub fn internal_target(&self) -> Option<(&str, Option<&str>)> {
        let dest = self.dest.as_str();
        if dest.is_empty() || SCHEME.is_match(dest) || dest.starts_with('/') {
            return None;
        }
        let dest = dest.split('?').next().unwrap_or(dest);
        Some(match dest.split_once('#') {
            Some((path, fragment)) => (path, Some(fragment)),
            None => (dest, None),
        })
    }
}

/// A page's text with its heading ids and links.
#[derive(Debug, Clone, Default)]
pub struct PageIndex {
    pub text: String,
    /// Every id a `#fragment` can name: headings (as mdbook derives them)
    /// and `id="..."` attributes in raw HTML.
    pub ids: HashSet<String>,
    /// The ids written out (`{#id}` on a heading, `id="..."` in HTML), which
    /// stay the same when the heading is translated.
    pub explicit_ids: HashSet<String>,
    /// The text of the first level-1 heading, if any.
    pub title: Option<String>,
    pub links: Vec<Link>,
}

impl PageIndex {
    pub fn parse(text: &str) -> PageIndex {
        let mut ids = HashSet::new();
        let mut explicit_ids = HashSet::new();
        let mut title = None;
        let mut links = Vec::new();
        // Inside a heading: its level, explicit id and text so far.
        let mut heading: Option<(HeadingLevel, Option<String>, String)> = None;
        for (event, range) in Parser::new_ext(text, mdbook_options()).into_offset_iter() {
            match event {
                Event::Start(Tag::Heading { level, id, .. }) => {
                    heading = Some((level, id.map(|id| id.to_string()), String::new()));
                }
                Event::End(TagEnd::Heading(_)) => {
                    if let Some((level, explicit, content)) = heading.take() {
                        if let Some(explicit) = &explicit {
                            explicit_ids.insert(explicit.clone());
                        }
                        let id = explicit.unwrap_or_else(|| heading_id(&content));
                        unique_insert(&mut ids, &id);
                        if level == HeadingLevel::H1 && title.is_none() {
                            title = Some(content.trim().to_string());
                        }
                    }
                }
                Event::Text(t) | Event::Code(t) => {
                    if let Some((_, _, content)) = heading.as_mut() {
                        content.push_str(&t);
                    }
                }
                Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                    links.push(Link { dest: dest_url.to_string(), line: line_of(text, range.start) });
                }
                Event::Html(html) | Event::InlineHtml(html) => {
                    for caps in HTML_ID.captures_iter(&html) {
                        ids.insert(caps[1].to_string());
                        explicit_ids.insert(caps[1].to_string());
                    }
                }
                _ => {}
            }
        }
        PageIndex { text: text.to_string(), ids, explicit_ids, title, links }
    }
}

/// The options mdbook 0.5 gives pulldown-cmark (mdbook-markdown's
/// `new_cmark_parser`, without smart punctuation, which does not change
/// headings' ids or links).
fn mdbook_options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_HEADING_ATTRIBUTES
}

/// The id mdbook gives a heading with this text (mdbook-html's
/// `id_from_content`): lower case, whitespace to `-`, and everything but
/// letters, digits, `_` and `-` dropped.
pub fn heading_id(content: &str) -> String {
    content
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|ch| {
            if ch.is_alphanumeric() || ch == '_' || ch == '-' {
                Some(ch)
            } else if ch.is_whitespace() {
                Some('-')
            } else {
                None
            }
        })
        .collect()
}

/// Repeated headings get `-1`, `-2`, ... as in mdbook's `unique_id`.
fn unique_insert(ids: &mut HashSet<String>, id: &str) {
    if ids.insert(id.to_string()) {
        return;
    }
    let mut counter = 1u32;
    while !ids.insert(format!("{id}-{counter}")) {
        counter += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heading_ids_follow_mdbook() {
        assert_eq!(heading_id("The bpf() System Call"), "the-bpf-system-call");
        assert_eq!(heading_id("What Is eBPF, and Why Is It Important?"), "what-is-ebpf-and-why-is-it-important");
        assert_eq!(heading_id("  r0-r10 _regs_ "), "r0-r10-_regs_");
    }

    #[test]
    fn collects_heading_ids_including_code_and_duplicates() {
        let page = PageIndex::parse(
            "# Title here\n\n## The `bpf()` call\n\n## Self-check\n\n## Self-check\n\n\
             ## Custom {#my-id}\n\n<a id=\"raw-anchor\"></a>\n",
        );
        for id in ["title-here", "the-bpf-call", "self-check", "self-check-1", "my-id", "raw-anchor"] {
            assert!(page.ids.contains(id), "missing {id} in {:?}", page.ids);
        }
        assert_eq!(page.title.as_deref(), Some("Title here"));
    }

    #[test]
    fn links_carry_their_line_and_skip_code() {
        let page = PageIndex::parse(
            "# T\n\nSee [one](a.md#x) and\n![img](images/b.svg).\n\n```\n[not](a link)\n```\n\
             [ext](https://example.org)\n",
        );
        let found: Vec<_> = page.links.iter().map(|l| (l.dest.as_str(), l.line)).collect();
        assert_eq!(found, [("a.md#x", 3), ("images/b.svg", 4), ("https://example.org", 9)]);
        assert_eq!(page.links[0].internal_target(), Some(("a.md", Some("x"))));
        assert_eq!(page.links[2].internal_target(), None);
    }
}

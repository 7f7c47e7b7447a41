//! `{{#include path:anchor}}` directives, found the way mdbook's links
//! preprocessor finds them, and the `ANCHOR:` markers they name.

use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;

use crate::{Error, line_of, read};

/// mdbook's own pattern (mdbook-driver, `find_links`): an escaped
/// `\{{#...}}` matches the first branch and is skipped.
static DIRECTIVE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?x)
        \\\{\{\#.*\}\}
        |
        \{\{\s*
        \#([a-zA-Z0-9_]+)
        \s+
        ([^}]+)
        \}\}",
    )
    .unwrap()
});
static ANCHOR_START: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"ANCHOR:\s*(?P<name>[\w_-]+)").unwrap());
static ANCHOR_END: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"ANCHOR_END:\s*(?P<name>[\w_-]+)").unwrap());
/// A `capture NAME ...` line in book/outputs.sh.
static CAPTURE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?m)^\s*capture\s+([\w.-]+)\s").unwrap());

/// One `{{#include}}` or `{{#rustdoc_include}}` in a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Include {
    /// As written, relative to the including page's directory.
    pub path: String,
    /// `Some` when the part after `:` is a name rather than line numbers.
    pub anchor: Option<String>,
    /// 1-based line of the directive in the page.
    pub line: usize,
}

pub fn find_includes(text: &str) -> Vec<Include> {
    DIRECTIVE
        .captures_iter(text)
        .filter_map(|caps| {
            let kind = caps.get(1)?.as_str();
            if kind != "include" && kind != "rustdoc_include" {
                return None;
            }
            let target = caps[2].split_whitespace().next()?;
            let (path, rest) = match target.split_once(':') {
                Some((path, rest)) => (path, Some(rest)),
                None => (target, None),
            };
            // Same rule as mdbook's `parse_range_or_anchor`: a first part that
            // is neither empty nor a number is an anchor name.
            let anchor = rest
                .and_then(|rest| rest.split(':').next())
                .filter(|first| !first.is_empty() && first.parse::<usize>().is_err())
                .map(str::to_string);
            Some(Include { path: path.to_string(), anchor, line: line_of(text, caps.get(0)?.start()) })
        })
        .collect()
}

/// Checks that `name` opens and then closes in `text`; the error says what
/// is missing, for the problem message.
pub fn anchor_span(text: &str, name: &str) -> Result<(usize, usize), String> {
    let mut start = None;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if start.is_none() {
            if ANCHOR_START.captures(line).is_some_and(|caps| &caps["name"] == name) {
                start = Some(number);
            }
        } else if ANCHOR_END.captures(line).is_some_and(|caps| &caps["name"] == name) {
            return Ok((start.unwrap_or(number), number));
        }
    }
    match start {
        None => Err(format!("the file has no `ANCHOR: {name}` line")),
        Some(line) => Err(format!("`ANCHOR: {name}` on line {line} is never closed by `ANCHOR_END: {name}`")),
    }
}

/// Whether book/outputs.sh has a `capture NAME` step, the only way a file
/// under generated/ is meant to come about.
pub fn outputs_script_produces(book_dir: &Path, name: &str) -> Result<bool, Error> {
    let script = book_dir.join("outputs.sh");
    if !script.is_file() {
        return Ok(false);
    }
    let text = read(&script)?;
    Ok(CAPTURE.captures_iter(&text).any(|caps| &caps[1] == name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_anchors_and_line_ranges() {
        let text = "intro\n\
            ```rust\n{{#include ../../labs/03/src/main.rs:todo}}\n```\n\
            {{#include a.txt}}\n\
            {{#include b.rs:2:10}}\n\
            {{#rustdoc_include c.rs:main}}\n\
            \\{{#include escaped.rs:nope}}\n\
            {{#title Not an include}}\n";
        let found = find_includes(text);
        let summary: Vec<_> = found.iter().map(|i| (i.path.as_str(), i.anchor.as_deref(), i.line)).collect();
        assert_eq!(
            summary,
            [
                ("../../labs/03/src/main.rs", Some("todo"), 3),
                ("a.txt", None, 5),
                ("b.rs", None, 6),
                ("c.rs", Some("main"), 7),
            ]
        );
    }

    #[test]
    fn anchors_must_open_and_close() {
        let text = "a\n// ANCHOR: todo\nx\n// ANCHOR_END: todo\n/* ANCHOR: bpf */\n";
        assert_eq!(anchor_span(text, "todo"), Ok((2, 4)));
        assert!(anchor_span(text, "main").unwrap_err().contains("no `ANCHOR: main`"));
        assert!(anchor_span(text, "bpf").unwrap_err().contains("line 5 is never closed"));
        // `todo_extra` is a different anchor, not `todo`.
        assert!(anchor_span("// ANCHOR: todo_extra\n// ANCHOR_END: todo_extra\n", "todo").is_err());
    }
}

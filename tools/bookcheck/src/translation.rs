//! The Korean edition's gettext catalog (`book/po/ko.po`) against the English
//! book: every message translated and none fuzzy, and every message of the
//! template (`book/po/messages.pot`) present.
//!
//! What needs no tools is checked here, as [`Problem`]s. Re-extracting the
//! template and `msgfmt --check` need mdbook and gettext, so they are
//! separate functions ([`extract_template`], [`msgfmt_check`]) whose missing
//! tool is a [`ToolError`] that says how to install it.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Error, Problem, read};

/// The catalog of each translated edition, relative to the book directory.
pub const CATALOGS: &[&str] = &["po/ko.po"];
/// The template the catalogs are merged from, relative to the book directory.
pub const TEMPLATE: &str = "po/messages.pot";
/// What to run after changing the English text.
pub const UPDATE_COMMAND: &str = "just book-po";

/// One message of a PO file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub msgid: String,
    pub msgstr: String,
    pub fuzzy: bool,
    /// 1-based line of the `msgid` keyword.
    pub line: usize,
}

/// A PO or POT file's messages, in file order, without the header entry and
/// without obsolete (`#~`) entries.
pub fn parse_po(text: &str) -> Result<Vec<Message>, String> {
    #[derive(PartialEq)]
    enum Field {
        None,
        Id,
        Str,
    }
    let mut messages = Vec::new();
    let (mut msgid, mut msgstr, mut fuzzy, mut line, mut field) = (String::new(), String::new(), false, 0, Field::None);
    let mut finish = |msgid: &mut String, msgstr: &mut String, fuzzy: &mut bool, line: usize| {
        if line != 0 && !msgid.is_empty() {
            messages.push(Message {
                msgid: std::mem::take(msgid),
                msgstr: std::mem::take(msgstr),
                fuzzy: *fuzzy,
                line,
            });
        }
        msgid.clear();
        msgstr.clear();
        *fuzzy = false;
    };
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with("#~") {
            continue;
        }
        if let Some(flags) = trimmed.strip_prefix("#,") {
            // A flag line starts the next entry.
            if field == Field::Str {
                finish(&mut msgid, &mut msgstr, &mut fuzzy, line);
                line = 0;
                field = Field::None;
            }
            fuzzy |= flags.split(',').any(|flag| flag.trim() == "fuzzy");
        } else if trimmed.starts_with('#') {
            if field == Field::Str {
                finish(&mut msgid, &mut msgstr, &mut fuzzy, line);
                line = 0;
                field = Field::None;
            }
        } else if let Some(rest) = trimmed.strip_prefix("msgid ") {
            if field == Field::Str {
                finish(&mut msgid, &mut msgstr, &mut fuzzy, line);
            }
            msgid = unquote(rest).map_err(|e| format!("line {number}: {e}"))?;
            line = number;
            field = Field::Id;
        } else if let Some(rest) = trimmed.strip_prefix("msgstr ") {
            if field != Field::Id {
                return Err(format!("line {number}: msgstr without a msgid before it"));
            }
            msgstr = unquote(rest).map_err(|e| format!("line {number}: {e}"))?;
            field = Field::Str;
        } else if trimmed.starts_with('"') {
            let piece = unquote(trimmed).map_err(|e| format!("line {number}: {e}"))?;
            match field {
                Field::Id => msgid.push_str(&piece),
                Field::Str => msgstr.push_str(&piece),
                Field::None => return Err(format!("line {number}: a string outside msgid and msgstr")),
            }
        } else if trimmed.starts_with("msgctxt") || trimmed.starts_with("msgid_plural") {
            return Err(format!("line {number}: {} is not used by the book's catalogs", trimmed));
        } else {
            return Err(format!("line {number}: not PO syntax: {trimmed}"));
        }
    }
    if field == Field::Str {
        finish(&mut msgid, &mut msgstr, &mut fuzzy, line);
    }
    Ok(messages)
}

/// One C-style quoted PO string.
fn unquote(quoted: &str) -> Result<String, String> {
    let inner = quoted
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .ok_or_else(|| format!("expected a quoted string, found {quoted}"))?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            other => return Err(format!("unknown escape \\{}", other.map(String::from).unwrap_or_default())),
        }
    }
    Ok(out)
}

/// Checks every catalog of the book in `book_dir` (the directory holding
/// book.toml) against its template. A book without a `po/` directory has
/// no translations and nothing to check.
pub(crate) fn check_catalogs(
    book_dir: &Path,
    display: impl Fn(&Path) -> PathBuf,
    problems: &mut Vec<Problem>,
) -> Result<(), Error> {
    let template_path = book_dir.join(TEMPLATE);
    if !template_path.is_file() {
        return Ok(());
    }
    let template =
        parse_po(&read(&template_path)?).map_err(|message| Error::Invalid { path: template_path.clone(), message })?;
    for catalog in CATALOGS {
        let path = book_dir.join(catalog);
        let shown = display(&path);
        if !path.is_file() {
            problems.push(Problem {
                path: display(&template_path),
                line: 1,
                message: format!("there is no {} to translate this template into", shown.display()),
            });
            continue;
        }
        let messages = parse_po(&read(&path)?).map_err(|message| Error::Invalid { path: path.clone(), message })?;
        problems.extend(catalog_problems(&shown, &messages, &template));
    }
    Ok(())
}

/// What is wrong with one catalog: untranslated and fuzzy messages, and
/// messages of the template it lacks.
pub fn catalog_problems(shown: &Path, messages: &[Message], template: &[Message]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let at = |line: usize, message: String| Problem { path: shown.to_path_buf(), line, message };
    for message in messages {
        let excerpt = excerpt(&message.msgid);
        if message.fuzzy {
            problems.push(at(
                message.line,
                format!("fuzzy (the English changed since it was translated): {excerpt}; update the translation and remove the fuzzy flag"),
            ));
        } else if message.msgstr.is_empty() {
            problems.push(at(message.line, format!("untranslated: {excerpt}")));
        }
    }
    let present: BTreeSet<&str> = messages.iter().map(|m| m.msgid.as_str()).collect();
    let missing: Vec<&Message> = template.iter().filter(|m| !present.contains(m.msgid.as_str())).collect();
    if let Some(first) = missing.first() {
        problems.push(at(
            1,
            format!(
                "{} message(s) of {TEMPLATE} are missing, the first: {}; run `{UPDATE_COMMAND}` to merge them in, then translate them",
                missing.len(),
                excerpt(&first.msgid)
            ),
        ));
    }
    problems
}

/// The start of a message, on one line, for problem reports.
fn excerpt(msgid: &str) -> String {
    let flat: String = msgid.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut short: String = flat.chars().take(70).collect();
    if short.len() < flat.len() {
        short.push_str("...");
    }
    format!("\"{short}\"")
}

/// An external tool the check needs is missing or failed to run.
#[derive(Debug)]
pub enum ToolError {
    Missing { tool: String },
    Failed { command: String, output: String },
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ToolError::Missing { tool } => {
                write!(f, "`{tool}` is not installed; run ./setup.sh to install the workbook's tools")
            }
            ToolError::Failed { command, output } => write!(f, "`{command}` failed:\n{output}"),
        }
    }
}

impl std::error::Error for ToolError {}

/// Finds `tool` on PATH or where setup.sh installs tools.
pub fn find_tool(tool: &str) -> Result<PathBuf, ToolError> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let cargo_home =
        std::env::var_os("CARGO_HOME").map(PathBuf::from).or_else(|| home.as_ref().map(|h| h.join(".cargo")));
    let mut dirs: Vec<PathBuf> =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    dirs.extend(home.map(|h| h.join(".local/bin")));
    dirs.extend(cargo_home.map(|h| h.join("bin")));
    dirs.into_iter()
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| ToolError::Missing { tool: tool.to_string() })
}

/// `msgfmt --check` on a catalog: `Ok(())` when it is well formed.
pub fn msgfmt_check(catalog: &Path) -> Result<(), ToolError> {
    let msgfmt = find_tool("msgfmt")?;
    let output =
        Command::new(&msgfmt).args(["--check", "--output-file=/dev/null"]).arg(catalog).output().map_err(|e| {
            ToolError::Failed { command: format!("{} --check", msgfmt.display()), output: e.to_string() }
        })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(ToolError::Failed {
            command: format!("msgfmt --check {}", catalog.display()),
            output: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }
}

/// Extracts the English book in `book_dir` into `dest/messages.pot` the way
/// `just book-po` does (book/editions.sh), and returns its path.
pub fn extract_template(book_dir: &Path, dest: &Path) -> Result<PathBuf, ToolError> {
    for tool in ["mdbook", "mdbook-xgettext"] {
        find_tool(tool)?;
    }
    let script = book_dir.join("editions.sh");
    let output =
        Command::new("bash").arg(&script).arg("pot").arg(dest).output().map_err(|e| ToolError::Failed {
            command: format!("bash {} pot", script.display()),
            output: e.to_string(),
        })?;
    if !output.status.success() {
        return Err(ToolError::Failed {
            command: format!("bash {} pot {}", script.display(), dest.display()),
            output: format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)),
        });
    }
    Ok(dest.join("messages.pot"))
}

/// The messages only in `fresh` and only in `committed`, as excerpts.
pub fn template_drift(committed: &[Message], fresh: &[Message]) -> (Vec<String>, Vec<String>) {
    let old: BTreeSet<&str> = committed.iter().map(|m| m.msgid.as_str()).collect();
    let new: BTreeSet<&str> = fresh.iter().map(|m| m.msgid.as_str()).collect();
    (new.difference(&old).map(|m| excerpt(m)).collect(), old.difference(&new).map(|m| excerpt(m)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"msgid ""
msgstr ""
"Language: ko\n"

#: src/a.md
msgid "Hello"
msgstr "안녕"

#: src/a.md
#, fuzzy
msgid ""
"Two lines\n"
"of code\n"
msgstr "두 줄\n"

#: src/b.md
msgid "Say \"hi\""
msgstr ""

#~ msgid "Old"
#~ msgstr "옛것"
"#;

    #[test]
    fn parses_messages_with_flags_continuations_and_escapes() {
        let messages = parse_po(SAMPLE).unwrap();
        assert_eq!(messages.len(), 3, "{messages:#?}");
        assert_eq!(messages[0], Message { msgid: "Hello".into(), msgstr: "안녕".into(), fuzzy: false, line: 6 });
        assert_eq!(messages[1].msgid, "Two lines\nof code\n");
        assert!(messages[1].fuzzy);
        assert_eq!(messages[1].line, 11);
        assert_eq!(messages[2].msgid, "Say \"hi\"");
        assert!(!messages[2].fuzzy && messages[2].msgstr.is_empty());
    }

    #[test]
    fn reports_fuzzy_untranslated_and_missing_messages() {
        let messages = parse_po(SAMPLE).unwrap();
        let mut template = messages.clone();
        template.push(Message { msgid: "New text".into(), msgstr: String::new(), fuzzy: false, line: 30 });
        let problems = catalog_problems(Path::new("book/po/ko.po"), &messages, &template);
        let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 3, "{shown:#?}");
        assert!(shown[0].starts_with("book/po/ko.po:11: fuzzy"), "{shown:#?}");
        assert!(shown[1].starts_with("book/po/ko.po:17: untranslated: \"Say \"hi\"\""), "{shown:#?}");
        assert!(shown[2].contains("1 message(s) of po/messages.pot are missing, the first: \"New text\""));
        assert!(shown[2].contains(UPDATE_COMMAND));
    }

    #[test]
    fn rejects_what_is_not_po() {
        assert!(parse_po("msgid \"a\"\nmsgstr \"b\"\nnonsense\n").unwrap_err().contains("line 3"));
        assert!(parse_po("msgstr \"b\"\n").unwrap_err().contains("without a msgid"));
        assert!(parse_po("msgid \"a\\q\"\nmsgstr \"\"\n").unwrap_err().contains("unknown escape"));
    }

    #[test]
    fn drift_lists_both_directions() {
        let one = |s: &str| Message { msgid: s.into(), msgstr: String::new(), fuzzy: false, line: 1 };
        let (added, removed) = template_drift(&[one("a"), one("b")], &[one("b"), one("c")]);
        assert_eq!((added, removed), (vec!["\"c\"".to_string()], vec!["\"a\"".to_string()]));
    }

    #[test]
    fn a_missing_tool_says_how_to_install_it() {
        let error = ToolError::Missing { tool: "msgfmt".into() };
        assert_eq!(error.to_string(), "`msgfmt` is not installed; run ./setup.sh to install the workbook's tools");
    }
}

//! The Korean edition stays in step with the English one: the committed
//! template is what the English sources extract to today, and the catalog
//! is well formed for gettext. (Untranslated and fuzzy messages are
//! bookcheck problems, checked with the rest of the book in book.rs.)

mod support;

use std::path::Path;

use bookcheck::translation::{
    CATALOGS, TEMPLATE, ToolError, UPDATE_COMMAND, catalog_problems, extract_template, msgfmt_check, parse_po,
    template_drift,
};

fn book_dir() -> std::path::PathBuf {
    support::repo_root().join("book")
}

/// A test's failure to run at all (a missing tool), shown as its message
/// alone: a test that returns `Err` prints the error's `Debug`, with no
/// panic and no backtrace.
struct Report(String);

impl std::fmt::Debug for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<ToolError> for Report {
    fn from(error: ToolError) -> Report {
        Report(error.to_string())
    }
}

fn messages(path: &Path) -> Vec<bookcheck::translation::Message> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    parse_po(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_template_matches_the_english_sources() -> Result<(), Report> {
    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh = extract_template(&book_dir(), fresh_dir.path())?;
    let committed = book_dir().join(TEMPLATE);
    let (added, removed) = template_drift(&messages(&committed), &messages(&fresh));
    assert!(
        added.is_empty() && removed.is_empty(),
        "book/{TEMPLATE} is stale: the English text changed. Run `{UPDATE_COMMAND}`, translate what it \
         marks, and commit both files.\nnew in the English ({}):\n  {}\ngone from the English ({}):\n  {}",
        added.len(),
        added.iter().take(10).cloned().collect::<Vec<_>>().join("\n  "),
        removed.len(),
        removed.iter().take(10).cloned().collect::<Vec<_>>().join("\n  "),
    );
    Ok(())
}

#[test]
fn msgfmt_accepts_every_catalog() -> Result<(), Report> {
    for catalog in CATALOGS {
        match msgfmt_check(&book_dir().join(catalog)) {
            Ok(()) => {}
            Err(missing @ ToolError::Missing { .. }) => return Err(missing.into()),
            Err(failed) => panic!("book/{catalog}: {failed}"),
        }
    }
    Ok(())
}

#[test]
fn a_broken_catalog_is_caught_three_ways() -> Result<(), Report> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ko.po");
    // One good message, one untranslated, one fuzzy, and one whose
    // translation drops the newline its original ends with (msgfmt's check).
    std::fs::write(
        &path,
        "msgid \"\"\nmsgstr \"\"\n\"Content-Type: text/plain; charset=UTF-8\\n\"\n\n\
         msgid \"Map\"\nmsgstr \"맵\"\n\n\
         msgid \"Verifier\"\nmsgstr \"\"\n\n\
         #, fuzzy\nmsgid \"Tail call\"\nmsgstr \"꼬리 호출\"\n\n\
         msgid \"# a comment\\n\"\nmsgstr \"# 주석\"\n",
    )
    .unwrap();
    let parsed = messages(&path);
    let problems = catalog_problems(Path::new("ko.po"), &parsed, &parsed);
    let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 2, "{shown:#?}");
    assert!(shown[0].starts_with("ko.po:8: untranslated: \"Verifier\""), "{shown:#?}");
    assert!(shown[1].starts_with("ko.po:12: fuzzy"), "{shown:#?}");

    match msgfmt_check(&path) {
        Err(ToolError::Failed { output, .. }) => assert!(output.contains("end with '\\n'"), "msgfmt said: {output}"),
        Err(missing @ ToolError::Missing { .. }) => return Err(missing.into()),
        Ok(()) => panic!("msgfmt --check accepted a translation that drops the original's final newline"),
    }
    Ok(())
}

//! Each kind of drift, planted in a small book built in a temp dir, must be
//! reported with the file and line to fix; the untouched book must pass.

use std::path::{Path, PathBuf};
use std::process::Command;

use bookcheck::{Problem, check};

/// A minimal repository: four chapters, one lab with anchors, one diagram,
/// one generated output. Every test starts from this and breaks one thing.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let fixture = Fixture { dir: tempfile::tempdir().unwrap() };
        fixture.write("book/book.toml", "[book]\ntitle = \"T\"\n");
        fixture.write(
            "book/src/SUMMARY.md",
            "# Summary\n\n[Intro](intro.md)\n\n\
             - [One](ch1.md)\n  - [Lab 01](labs/01-demo.md)\n\
             - [Two](ch2.md)\n- [Three](ch3.md)\n- [Four](ch4.md)\n",
        );
        fixture.write("book/src/intro.md", "# Intro\n\nStart at [one](ch1.md).\n");
        fixture.write(
            "book/src/ch1.md",
            "# One\n\n## First part\n\n![diagram](images/d.svg)\n\n\
             See [the lab](labs/01-demo.md) and [below](#first-part).\n\n\
             ```text\n{{#include generated/out.txt}}\n```\n",
        );
        for (n, name) in [(2, "Two"), (3, "Three"), (4, "Four")] {
            fixture.write(
                &format!("book/src/ch{n}.md"),
                &format!("# {name}\n\nPractise with [lab 01](labs/01-demo.md#goal).\n"),
            );
        }
        fixture.write(
            "book/src/labs/01-demo.md",
            "# Lab 01\n\n## Goal\n\nBack to [chapter 1](../ch1.md#first-part).\n\n\
             ```rust\n{{#include ../../../labs/01-demo/src/main.rs:todo}}\n```\n",
        );
        fixture.write("book/src/images/d.svg", "<svg xmlns=\"http://www.w3.org/2000/svg\"/>");
        fixture.write("book/src/generated/out.txt", "hello\n");
        fixture.write("book/src/generated/compatibility.txt", "| lab | 6.1 |\n|---|:-:|\n| 01-demo | pass |\n");
        fixture.write("book/outputs.sh", "capture out 0 run -- echo hello\n");
        fixture.write("labs/01-demo/lab.toml", "number = 1\nslug = \"demo\"\ntitle = \"Demo\"\nchapter = 1\n");
        fixture.write(
            "labs/01-demo/src/main.rs",
            "fn main() {\n    // ANCHOR: todo\n    // TODO\n    // ANCHOR_END: todo\n}\n",
        );
        fixture
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn edit(&self, rel: &str, from: &str, to: &str) {
        let path = self.dir.path().join(rel);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{rel} does not contain {from:?}");
        std::fs::write(path, text.replacen(from, to, 1)).unwrap();
    }

    fn problems(&self) -> Vec<Problem> {
        check(self.root()).expect("the fixture book is readable")
    }

    /// Asserts that exactly one problem was found, at `path:line`, and that
    /// its message contains `needle`.
    fn expect_one(&self, path: &str, line: usize, needle: &str) {
        let problems = self.problems();
        assert_eq!(problems.len(), 1, "expected one problem, got {problems:#?}");
        let problem = &problems[0];
        assert_eq!((problem.path.as_path(), problem.line), (Path::new(path), line), "wrong place for {problem}");
        assert!(problem.message.contains(needle), "message {:?} should mention {needle:?}", problem.message);
        let shown = problem.to_string();
        assert!(shown.starts_with(&format!("{path}:{line}: ")), "displayed as {shown}");
    }
}

#[test]
fn the_untouched_fixture_has_no_problems() {
    assert_eq!(Fixture::new().problems(), Vec::<Problem>::new());
}

#[test]
fn a_lab_without_a_page_is_reported_at_its_manifest() {
    let fixture = Fixture::new();
    fixture.write("labs/02-extra/lab.toml", "number = 2\nslug = \"extra\"\ntitle = \"Extra\"\nchapter = 1\n");
    fixture.edit(
        "book/src/generated/compatibility.txt",
        "| 01-demo | pass |\n",
        "| 01-demo | pass |\n| 02-extra | pass |\n",
    );
    fixture.expect_one("labs/02-extra/lab.toml", 4, "has no book page: expected book/src/labs/02-extra.md");
}

#[test]
fn a_lab_missing_from_the_compatibility_table_is_reported() {
    let fixture = Fixture::new();
    fixture.edit("book/src/generated/compatibility.txt", "| 01-demo | pass |\n", "");
    fixture.expect_one(
        "book/src/generated/compatibility.txt",
        1,
        "lab 01-demo is missing from the compatibility table",
    );
    std::fs::remove_file(fixture.root().join("book/src/generated/compatibility.txt")).unwrap();
    fixture.expect_one("book/src/generated/compatibility.txt", 1, "the compatibility table is missing");
}

#[test]
fn the_readmes_compatibility_table_must_be_the_books() {
    let fixture = Fixture::new();
    let table = "| lab | 6.1 |\n|---|:-:|\n| 01-demo | pass |\n";
    fixture.write("README.md", &format!("# R\n\n<!-- compatibility:begin -->\n{table}<!-- compatibility:end -->\n"));
    assert_eq!(fixture.problems(), Vec::<Problem>::new());
    fixture.edit("README.md", "| 01-demo | pass |", "| 01-demo | fails |");
    fixture.expect_one("README.md", 3, "differs from book/src/generated/compatibility.txt");
}

#[test]
fn a_directory_without_lab_toml_is_not_a_lab() {
    let fixture = Fixture::new();
    fixture.write("labs/README.md", "not a lab\n");
    fixture.write("labs/09-draft/src/main.rs", "fn main() {}\n");
    assert_eq!(fixture.problems(), Vec::<Problem>::new());
}

#[test]
fn a_lab_page_missing_from_summary_is_reported() {
    let fixture = Fixture::new();
    fixture.edit("book/src/SUMMARY.md", "  - [Lab 01](labs/01-demo.md)\n", "");
    let problems = fixture.problems();
    let not_listed: Vec<_> =
        problems.iter().filter(|p| p.message.contains("is not listed in book/src/SUMMARY.md")).collect();
    assert_eq!(not_listed.len(), 1, "{problems:#?}");
    assert_eq!(not_listed[0].path, PathBuf::from("labs/01-demo/lab.toml"));
    assert_eq!(not_listed[0].line, 4);
    // The chapters' links to the page now point at an unrendered page too.
    assert!(
        problems.iter().any(|p| p.path == Path::new("book/src/ch1.md")
            && p.line == 7
            && p.message.contains("not listed in SUMMARY.md")),
        "{problems:#?}"
    );
}

#[test]
fn a_lab_listed_under_the_wrong_chapter_is_reported_in_summary() {
    let fixture = Fixture::new();
    fixture.edit(
        "book/src/SUMMARY.md",
        "  - [Lab 01](labs/01-demo.md)\n- [Two](ch2.md)\n",
        "- [Two](ch2.md)\n  - [Lab 01](labs/01-demo.md)\n",
    );
    fixture.expect_one("book/src/SUMMARY.md", 7, "should be nested under chapter 1");
}

#[test]
fn a_chapter_that_does_not_link_its_own_lab_is_reported() {
    let fixture = Fixture::new();
    fixture.edit("labs/01-demo/lab.toml", "chapter = 1", "chapter = 2");
    fixture.edit(
        "book/src/SUMMARY.md",
        "  - [Lab 01](labs/01-demo.md)\n- [Two](ch2.md)\n",
        "- [Two](ch2.md)\n  - [Lab 01](labs/01-demo.md)\n",
    );
    fixture.edit("book/src/ch2.md", "Practise with [lab 01](labs/01-demo.md#goal).", "");
    let problems = fixture.problems();
    let messages: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "book/src/ch2.md:1: chapter 2 (\"Two\") links to no lab page under labs/",
            "book/src/ch2.md:1: chapter 2 does not link to its lab 01-demo (labs/01-demo.md)",
        ]
    );
}

#[test]
fn a_hands_on_chapter_without_any_lab_link_is_reported() {
    let fixture = Fixture::new();
    fixture.write("book/src/ch3.md", "# Three\n\nNo lab here.\n");
    fixture.expect_one("book/src/ch3.md", 1, "chapter 3 (\"Three\") links to no lab page");
}

#[test]
fn an_include_of_a_missing_file_is_reported_at_its_line() {
    let fixture = Fixture::new();
    fixture.edit("book/src/labs/01-demo.md", "src/main.rs:todo", "src/lib.rs:todo");
    fixture.expect_one("book/src/labs/01-demo.md", 8, "names ../../../labs/01-demo/src/lib.rs, which does not exist");
}

#[test]
fn an_include_of_a_missing_anchor_is_reported_at_its_line() {
    let fixture = Fixture::new();
    fixture.edit("book/src/labs/01-demo.md", "main.rs:todo", "main.rs:bpf");
    fixture.expect_one(
        "book/src/labs/01-demo.md",
        8,
        "names anchor `bpf` in ../../../labs/01-demo/src/main.rs, but the file has no \
         `ANCHOR: bpf` line",
    );
}

#[test]
fn an_anchor_that_is_never_closed_is_reported() {
    let fixture = Fixture::new();
    fixture.edit("labs/01-demo/src/main.rs", "    // ANCHOR_END: todo\n", "");
    fixture.expect_one("book/src/labs/01-demo.md", 8, "`ANCHOR: todo` on line 2 is never closed");
}

#[test]
fn an_escaped_include_is_not_an_include() {
    let fixture = Fixture::new();
    fixture
        .write("book/src/intro.md", "# Intro\n\nWrite `\\{{#include missing.rs:nope}}` in a page.\n\n[one](ch1.md)\n");
    assert_eq!(fixture.problems(), Vec::<Problem>::new());
}

#[test]
fn generated_output_without_a_producer_is_reported() {
    let fixture = Fixture::new();
    fixture.write("book/outputs.sh", "capture other 0 run -- true\n");
    fixture.expect_one("book/src/ch1.md", 10, "book/outputs.sh has no `capture out`");
}

#[test]
fn a_link_to_a_missing_page_is_reported() {
    let fixture = Fixture::new();
    fixture.edit("book/src/intro.md", "(ch1.md)", "(ch9.md)");
    fixture.expect_one("book/src/intro.md", 3, "link to ch9.md: no such page (book/src/ch9.md does not exist)");
}

#[test]
fn a_link_to_a_page_outside_summary_is_reported() {
    let fixture = Fixture::new();
    fixture.write("book/src/orphan.md", "# Orphan\n");
    fixture.edit("book/src/intro.md", "(ch1.md)", "(orphan.md)");
    fixture.expect_one("book/src/intro.md", 3, "that page is not listed in SUMMARY.md");
}

#[test]
fn a_link_to_a_missing_heading_in_another_page_is_reported() {
    let fixture = Fixture::new();
    fixture.edit("book/src/labs/01-demo.md", "../ch1.md#first-part", "../ch1.md#second-part");
    fixture.expect_one(
        "book/src/labs/01-demo.md",
        5,
        "link to ../ch1.md#second-part: ch1.md has no heading with that id",
    );
}

#[test]
fn a_link_to_a_missing_heading_in_the_same_page_is_reported() {
    let fixture = Fixture::new();
    fixture.edit("book/src/ch1.md", "(#first-part)", "(#first)");
    fixture.expect_one("book/src/ch1.md", 7, "link to #first: this page has no heading with that id");
}

#[test]
fn a_missing_image_is_reported() {
    let fixture = Fixture::new();
    std::fs::remove_file(fixture.root().join("book/src/images/d.svg")).unwrap();
    fixture.expect_one("book/src/ch1.md", 5, "link to images/d.svg: no such file");
}

#[test]
fn a_summary_entry_for_a_missing_file_is_reported() {
    let fixture = Fixture::new();
    std::fs::remove_file(fixture.root().join("book/src/ch4.md")).unwrap();
    fixture.expect_one("book/src/SUMMARY.md", 9, "\"Four\" points at ch4.md, which does not exist");
}

#[test]
fn the_binary_prints_problems_and_exits_1_then_0_when_fixed() {
    let fixture = Fixture::new();
    fixture.edit("book/src/intro.md", "(ch1.md)", "(ch9.md)");
    let run = || Command::new(env!("CARGO_BIN_EXE_bookcheck")).arg(fixture.root()).output().unwrap();
    let broken = run();
    assert_eq!(broken.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&broken.stdout);
    assert!(stdout.contains("book/src/intro.md:3: link to ch9.md"), "stdout: {stdout}");

    fixture.edit("book/src/intro.md", "(ch9.md)", "(ch1.md)");
    let fixed = run();
    assert_eq!(fixed.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&fixed.stdout).contains("book OK"));
}

#[test]
fn the_binary_exits_2_when_there_is_no_book() {
    let empty = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_bookcheck")).arg(empty.path()).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("book.toml"));
}

/// A catalog and its template beside the fixture book, as `just book-po`
/// leaves them.
fn translate(fixture: &Fixture, translation: &str) {
    fixture.write(
        "book/po/messages.pot",
        "msgid \"\"\nmsgstr \"\"\n\nmsgid \"One\"\nmsgstr \"\"\n\nmsgid \"Two\"\nmsgstr \"\"\n",
    );
    fixture.write("book/po/ko.po", translation);
}

#[test]
fn an_untranslated_message_is_reported_at_its_line() {
    let fixture = Fixture::new();
    translate(&fixture, "msgid \"\"\nmsgstr \"\"\n\nmsgid \"One\"\nmsgstr \"하나\"\n\nmsgid \"Two\"\nmsgstr \"\"\n");
    let problems: Vec<Problem> =
        fixture.problems().into_iter().filter(|p| p.path == Path::new("book/po/ko.po")).collect();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(problems[0].line, 7);
    assert!(problems[0].message.contains("untranslated: \"Two\""), "{problems:#?}");
}

#[test]
fn a_message_the_catalog_lacks_is_reported() {
    let fixture = Fixture::new();
    translate(&fixture, "msgid \"\"\nmsgstr \"\"\n\nmsgid \"One\"\nmsgstr \"하나\"\n");
    let problems: Vec<Problem> =
        fixture.problems().into_iter().filter(|p| p.path == Path::new("book/po/ko.po")).collect();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(problems[0].message.contains("1 message(s) of po/messages.pot are missing"), "{problems:#?}");
    assert!(problems[0].message.contains("just book-po"), "{problems:#?}");
}

#[test]
fn a_link_to_an_id_made_from_english_words_is_reported_once_the_book_is_translated() {
    let fixture = Fixture::new();
    translate(&fixture, "msgid \"\"\nmsgstr \"\"\n\nmsgid \"One\"\nmsgstr \"하나\"\n\nmsgid \"Two\"\nmsgstr \"둘\"\n");
    // The fixture's chapter 1 links to its own `## First part`; with an
    // explicit id the link survives translation, and the only problem left
    // is lab 01's link to the derived id `#goal`.
    fixture.edit("book/src/ch1.md", "## First part\n", "## First part {#first-part}\n");
    let problems = fixture.problems();
    assert!(problems.iter().all(|p| p.path != Path::new("book/src/ch1.md")), "an explicit id is enough: {problems:#?}");
    let derived: Vec<&Problem> = problems.iter().filter(|p| p.message.contains("explicit id")).collect();
    assert_eq!(derived.len(), 3, "chapters 2-4 link to lab 01's #goal: {problems:#?}");
    assert!(derived.iter().all(|p| p.message.contains("link to labs/01-demo.md#goal")), "{derived:#?}");
}

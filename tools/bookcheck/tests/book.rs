//! The workbook's own book: it passes every check, builds without a
//! warning, and has the chapters the design promises.

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;

use bookcheck::{Layout, Summary, check, find_includes, read_labs};

fn summary() -> (Layout, Summary) {
    let layout = Layout::discover(&support::repo_root()).unwrap();
    let text = std::fs::read_to_string(layout.src.join("SUMMARY.md")).unwrap();
    (layout, Summary::parse(&text))
}

#[test]
fn the_book_has_no_problems() {
    let problems = check(&support::repo_root()).unwrap();
    let listing: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert!(problems.is_empty(), "bookcheck found {} problem(s):\n{}", problems.len(), listing.join("\n"));
}

#[test]
fn mdbook_builds_the_book_without_warnings() {
    let dest = tempfile::tempdir().unwrap();
    support::build_book(dest.path());
    for page in ["index.html", "ch01-what-is-ebpf.html", "labs/03-hello-world.html"] {
        assert!(dest.path().join(page).is_file(), "{page} was not built");
    }
    assert!(
        dest.path().join("searchindex.json").is_file()
            || std::fs::read_dir(dest.path())
                .unwrap()
                .flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("searchindex")),
        "search is enabled, so a search index must be built"
    );
}

#[test]
fn the_chapters_follow_the_design_in_order() {
    let (_, summary) = summary();
    let chapters: Vec<(String, Option<PathBuf>)> =
        summary.chapters().map(|e| (e.title.clone(), e.path.clone())).collect();
    let expected = [
        "ch01-what-is-ebpf.md",
        "ch02-hello-world.md",
        "ch03-anatomy.md",
        "ch04-bpf-syscall.md",
        "ch05-core-btf-libbpf.md",
        "ch06-verifier.md",
        "ch07-program-types.md",
        "ch08-networking.md",
        "ch09-security.md",
        "ch10-languages-and-tools.md",
        "ch11-future.md",
    ];
    let paths: Vec<PathBuf> = chapters.iter().filter_map(|(_, p)| p.clone()).collect();
    assert_eq!(paths, expected.map(PathBuf::from), "chapters: {chapters:#?}");
    assert_eq!(summary.chapter(6).unwrap().title, "The eBPF Verifier");
}

#[test]
fn the_eight_labs_sit_under_their_chapters() {
    let (_, summary) = summary();
    let expected = [
        ("01-syscall-census", 1),
        ("02-ebpf-vs-ptrace", 1),
        ("03-hello-world", 2),
        ("04-hello-map", 2),
        ("05-hello-buffer", 2),
        ("06-tail-calls", 2),
        ("07-bytecode-by-hand", 3),
        ("08-bpf-syscall", 4),
    ];
    for (slug, chapter) in expected {
        let page = PathBuf::from(format!("labs/{slug}.md"));
        let entry = summary.entry_for(&page).unwrap_or_else(|| panic!("{} is not in SUMMARY.md", page.display()));
        assert_eq!((entry.depth, entry.chapter), (1, Some(chapter)), "{slug} belongs under chapter {chapter}");
    }
}

#[test]
fn lab_manifests_agree_with_the_book() {
    let (layout, summary) = summary();
    for lab in read_labs(&layout.labs).unwrap() {
        let entry =
            summary.entry_for(&lab.page()).unwrap_or_else(|| panic!("lab {} has no SUMMARY entry", lab.dir_name));
        if let Some(chapter) = lab.chapter {
            assert_eq!(entry.chapter, Some(chapter), "lab {}", lab.dir_name);
        }
    }
}

/// Every file under generated/ is shown somewhere and produced by
/// book/outputs.sh; a file nothing includes is stale and should go.
#[test]
fn generated_outputs_are_all_used() {
    let (layout, summary) = summary();
    let generated = layout.src.join("generated");
    let mut included = BTreeSet::new();
    for rel in summary.entries.iter().filter_map(|e| e.path.as_ref()) {
        let page = layout.src.join(rel);
        let text = std::fs::read_to_string(&page).unwrap();
        for include in find_includes(&text) {
            let target = bookcheck::normalize(&page.parent().unwrap().join(&include.path));
            if let Ok(name) = target.strip_prefix(&generated) {
                included.insert(name.to_path_buf());
            }
        }
    }
    let on_disk: BTreeSet<PathBuf> =
        std::fs::read_dir(&generated).unwrap().flatten().map(|e| PathBuf::from(e.file_name())).collect();
    let unused: Vec<_> = on_disk.difference(&included).collect();
    assert!(unused.is_empty(), "generated files no page includes: {unused:?}");
}

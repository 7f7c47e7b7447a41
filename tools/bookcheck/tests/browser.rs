//! The book as a reader gets it: built by mdbook, served over HTTP, loaded in
//! headless Chromium. Every page must render with its title and heading, and
//! the search box must lead from "verifier" to the verifier chapter.
//! Screenshots land in target/book-screens/ for a person to look at.

mod support;

use std::time::Duration;

use bookcheck::{Layout, PageIndex, Summary};
use support::cdp::Chromium;
use support::server::StaticServer;

const PAGE_TIMEOUT: Duration = Duration::from_secs(20);
const SEARCH_TIMEOUT: Duration = Duration::from_secs(20);
const BOOK_TITLE: &str = "eBPF Workbook";

/// mdbook turns quotes into typographic ones in rendered headings; compare
/// text with straight quotes.
fn plain_quotes(text: &str) -> String {
    text.replace(['\u{2018}', '\u{2019}'], "'").replace(['\u{201c}', '\u{201d}'], "\"").trim().to_string()
}

#[test]
fn every_page_renders_and_search_finds_the_verifier_chapter() {
    let chromium_binary = support::chromium();
    let root = support::repo_root();
    let html = tempfile::tempdir().unwrap();
    support::build_book(html.path());

    let layout = Layout::discover(&root).unwrap();
    let summary = Summary::parse(&std::fs::read_to_string(layout.src.join("SUMMARY.md")).unwrap());
    let screens = support::target_dir().join("book-screens");
    std::fs::create_dir_all(&screens).unwrap();

    let server = StaticServer::start(html.path()).unwrap();
    let mut browser =
        Chromium::launch(&chromium_binary, (1280, 900)).unwrap_or_else(|e| panic!("cannot start Chromium: {e}"));

    // The landing page is the first page in SUMMARY.md.
    let first = summary.entries.iter().find(|e| e.path.is_some()).unwrap();
    let mut pages = vec![("index.html".to_string(), first.clone())];
    for entry in summary.entries.iter().filter(|e| e.path.is_some()) {
        let rel = entry.path.as_ref().unwrap();
        pages.push((rel.with_extension("html").display().to_string(), entry.clone()));
    }

    for (html_path, entry) in &pages {
        let source = layout.src.join(entry.path.as_ref().unwrap());
        let heading = PageIndex::parse(&std::fs::read_to_string(&source).unwrap())
            .title
            .unwrap_or_else(|| panic!("{} has no `# heading`", source.display()));
        let url = server.url(html_path);
        browser.navigate(&url, PAGE_TIMEOUT).unwrap_or_else(|e| panic!("{e}\nChromium log:\n{}", browser.log()));

        let title = browser.eval("document.title").unwrap();
        assert_eq!(
            plain_quotes(title.as_str().unwrap_or_default()),
            plain_quotes(&format!("{} - {BOOK_TITLE}", entry.title)),
            "title of {url}"
        );
        let h1 = browser
            .wait_for("(document.querySelector('main h1') || {}).textContent", PAGE_TIMEOUT)
            .unwrap_or_else(|e| panic!("{url} has no <h1>: {e}"));
        assert_eq!(plain_quotes(h1.as_str().unwrap_or_default()), plain_quotes(&heading), "first heading of {url}");
        // Every image on the page (the diagrams) must have loaded.
        let broken = browser
            .eval(
                "Array.from(document.images)
                    .filter(i => !i.complete || i.naturalWidth === 0)
                    .map(i => i.getAttribute('src'))",
            )
            .unwrap();
        assert_eq!(broken, serde_json::json!([]), "images that did not load on {url}");

        let shot = screens.join(html_path.replace('/', "_").replace(".html", ".png"));
        browser.screenshot(&shot).unwrap();
    }

    // Search as a reader would: click the magnifier, type, click the hit.
    browser.navigate(&server.url("index.html"), PAGE_TIMEOUT).unwrap();
    browser.click("#mdbook-search-toggle").unwrap();
    browser
        .wait_for(
            "!document.getElementById('mdbook-search-wrapper').classList.contains('hidden') \
             && document.activeElement === document.getElementById('mdbook-searchbar')",
            SEARCH_TIMEOUT,
        )
        .expect("clicking the search icon opens and focuses the search box");
    browser.type_text("verifier").unwrap();
    let verifier_hit = "#mdbook-searchresults a[href^='ch06-verifier.html']";
    let hits = browser
        .wait_for(&format!("document.querySelectorAll(\"{verifier_hit}\").length"), SEARCH_TIMEOUT)
        .unwrap_or_else(|e| {
            panic!(
                "searching for \"verifier\" found no link to chapter 6: {e}\nresults: {}",
                browser.eval("document.getElementById('mdbook-searchresults').innerText").unwrap_or_default()
            )
        });
    assert!(hits.as_u64().unwrap() >= 1);
    browser.screenshot(&screens.join("search-verifier.png")).unwrap();
    browser.click(verifier_hit).unwrap();
    browser
        .wait_for(
            "location.pathname.endsWith('/ch06-verifier.html') \
             && document.readyState === 'complete'",
            PAGE_TIMEOUT,
        )
        .expect("clicking the search hit opens chapter 6");
    let h1 = browser.eval("document.querySelector('main h1').textContent").unwrap();
    assert_eq!(plain_quotes(h1.as_str().unwrap()), "The eBPF Verifier");
    browser.screenshot(&screens.join("search-landed-ch06.png")).unwrap();

    drop(browser);
    drop(server);
}

/// The Korean pages the reader is most likely to land on: the start, a
/// chapter and a lab page.
const KOREAN_PAGES: &[&str] = &["ko/index.html", "ko/ch01-what-is-ebpf.html", "ko/labs/03-hello-world.html"];
/// A translated page has far more Hangul syllables than this; an
/// untranslated one (mdbook-gettext falls back to English) has none.
const MIN_HANGUL: u64 = 200;

/// A test that cannot run (a tool is missing) reports the message alone,
/// without a panic's backtrace.
struct Report(String);

impl std::fmt::Debug for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[test]
fn the_korean_edition_is_in_korean_and_switches_to_the_same_english_page() -> Result<(), Report> {
    let chromium_binary = support::chromium();
    let html = tempfile::tempdir().unwrap();
    support::build_editions(html.path()).map_err(Report)?;
    let screens = support::target_dir().join("book-screens");
    std::fs::create_dir_all(&screens).unwrap();

    let server = StaticServer::start(html.path()).unwrap();
    let mut browser =
        Chromium::launch(&chromium_binary, (1280, 900)).unwrap_or_else(|e| panic!("cannot start Chromium: {e}"));

    for page in KOREAN_PAGES {
        let url = server.url(page);
        browser.navigate(&url, PAGE_TIMEOUT).unwrap_or_else(|e| panic!("{e}\nChromium log:\n{}", browser.log()));
        let lang = browser.eval("document.documentElement.lang").unwrap();
        assert_eq!(lang.as_str(), Some("ko"), "<html lang> of {url}");
        let hangul = browser
            .eval("(document.querySelector('main').innerText.match(/[\\uAC00-\\uD7A3]/g) || []).length")
            .unwrap();
        assert!(
            hangul.as_u64().unwrap_or(0) >= MIN_HANGUL,
            "{url} has {hangul} Hangul syllables: is book/po/ko.po translated and built?"
        );
        let h1 = browser.wait_for("(document.querySelector('main h1') || {}).textContent", PAGE_TIMEOUT).unwrap();
        assert!(
            h1.as_str().unwrap_or_default().chars().any(|c| ('\u{AC00}'..='\u{D7A3}').contains(&c)),
            "the first heading of {url} is not in Korean: {h1}"
        );
        let broken = browser
            .eval(
                "Array.from(document.images)
                    .filter(i => !i.complete || i.naturalWidth === 0)
                    .map(i => i.getAttribute('src'))",
            )
            .unwrap();
        assert_eq!(broken, serde_json::json!([]), "images that did not load on {url}");
        let shot = screens.join(page.replace('/', "_").replace(".html", ".png"));
        browser.screenshot(&shot).unwrap();

        // The switch leads to the same page in English, and back.
        let english = page.trim_start_matches("ko/");
        let switch = browser.eval("(document.querySelector('.language-switch') || {}).textContent").unwrap();
        assert_eq!(switch.as_str(), Some("English"), "the language switch on {url}");
        browser.click(".language-switch").unwrap();
        let landed = format!(
            "location.pathname === '/{english}' && document.readyState === 'complete' \
             && document.documentElement.lang === 'en'"
        );
        browser
            .wait_for(&landed, PAGE_TIMEOUT)
            .unwrap_or_else(|e| panic!("the switch on {url} did not lead to /{english}: {e}"));
        let back = browser.eval("(document.querySelector('.language-switch') || {}).textContent").unwrap();
        assert_eq!(back.as_str(), Some("한국어"), "the language switch on /{english}");
        browser.click(".language-switch").unwrap();
        browser
            .wait_for(&format!("location.pathname === '/{page}' && document.readyState === 'complete'"), PAGE_TIMEOUT)
            .unwrap_or_else(|e| panic!("the switch on /{english} did not lead back to /{page}: {e}"));
    }

    // The glossary is linked from the Korean introduction, with Korean
    // headings.
    browser.navigate(&server.url("ko/index.html"), PAGE_TIMEOUT).unwrap();
    browser.click("main a[href$='glossary.html']").unwrap();
    let glossary = browser
        .wait_for(
            "location.pathname === '/ko/glossary.html' && document.readyState === 'complete' \
             && document.querySelector('main h1').textContent",
            PAGE_TIMEOUT,
        )
        .expect("the Korean introduction links to the glossary");
    assert_eq!(glossary.as_str(), Some("용어집"));
    browser.screenshot(&screens.join("ko_glossary.png")).unwrap();

    drop(browser);
    drop(server);
    Ok(())
}

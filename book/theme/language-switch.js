// The link to the same page in the other edition, at the right of the menu
// bar. The English book is at the site's root and the Korean one in ko/
// beside its pages, both with the same file names, so the other edition's
// page is found from this page's path alone. Fragments are left out: the
// headings of the two editions have different ids.
(function () {
    "use strict";
    const korean = document.documentElement.lang === "ko";
    const root = new URL(typeof path_to_root === "string" && path_to_root !== "" ? path_to_root : "./", location.href);
    let page = location.pathname.startsWith(root.pathname) ? location.pathname.slice(root.pathname.length) : "";
    if (page === "" || page.endsWith("/")) {
        page += "index.html";
    }
    const link = document.createElement("a");
    link.className = "language-switch";
    link.href = new URL((korean ? "../" : "ko/") + page, root).href;
    link.hreflang = korean ? "en" : "ko";
    link.lang = korean ? "en" : "ko";
    link.textContent = korean ? "English" : "한국어";
    link.title = korean ? "Read this page in English" : "이 페이지를 한국어로 읽기";
    const buttons = document.querySelector("#mdbook-menu-bar .right-buttons") || document.querySelector(".right-buttons");
    if (buttons) {
        buttons.prepend(link);
    }
})();

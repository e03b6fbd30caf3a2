"""The book as a reader meets it: headless Chromium over every page of the site built from the smoke executions.

Checks, on every page: no console errors or uncaught exceptions, no request that fails or leaves the site, every
image loads and has real alt text, every internal link (and its #anchor) resolves, and every formula is typeset by
MathJax without a TeX error.  Then: the search page finds "AvaGrad", the reproduction report lists every written
chapter, every chapter has a captioned key figure and offers its notebook for download and launch, and the page has
one search box and a menu button that works on a desktop and on a phone.  Screenshots of
the landing page and of one chapter are saved to ``_build/test-artifacts/``.

Chromium is Debian's (``make test`` installs it with apt where it can); Playwright's Python package drives it
(``executable_path``, so nothing is downloaded).  Without Chromium or Playwright the tests skip, saying which.
"""

from __future__ import annotations

import functools
import html.parser
import http.server
import os
import shutil
import threading
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlsplit

import pytest

from effcourse.book.notebooks import ROOT, chapters

pytestmark = [pytest.mark.slow, pytest.mark.browser]

WRITTEN = chapters(written_only=True)
ARTIFACTS = ROOT / "_build" / "test-artifacts"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium_path() -> str | None:
    """``$EFFCOURSE_CHROMIUM``, else the first Chromium on PATH."""
    env = os.environ.get("EFFCOURSE_CHROMIUM")
    if env:
        return env
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # the test reports failures itself
        pass


@pytest.fixture(scope="module")
def server(smoke_site):
    """The built site served on an ephemeral localhost port."""
    handler = functools.partial(_Quiet, directory=str(smoke_site))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    exe = chromium_path()
    if exe is None:
        pytest.skip(f"no Chromium found (looked for {', '.join(CHROMIUM_NAMES)} on PATH and $EFFCOURSE_CHROMIUM); "
                    "`make test` installs Debian's chromium with apt where it runs as root")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (`pip install -e .[test]`)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        yield b
        b.close()


class Visit:
    """One page load with everything the page logged or requested along the way."""

    def __init__(self, browser, base: str, path: str, width: int = 1280, height: int = 900):
        self.base, self.path = base, path
        self.problems: list[str] = []
        self.page = browser.new_page(viewport={"width": width, "height": height})
        p = self.page
        p.on("console", lambda m: m.type == "error" and self.problems.append(f"console error: {m.text}"))
        p.on("pageerror", lambda e: self.problems.append(f"uncaught exception: {e}"))
        p.on("requestfailed", lambda r: self.problems.append(f"request failed: {r.url} ({r.failure})"))
        p.on("response", lambda r: r.status >= 400 and self.problems.append(f"HTTP {r.status}: {r.url}"))
        p.on("request", lambda r: not r.url.startswith((base, "data:", "blob:"))
             and self.problems.append(f"request leaves the site: {r.url}"))
        p.goto(f"{base}/{path}", wait_until="load")
        # MathJax typesets after load; its startup promise resolves when the page's math is done
        p.wait_for_function("() => !window.MathJax || (window.MathJax.startup && window.MathJax.startup.promise)")
        p.evaluate("() => window.MathJax && window.MathJax.startup ? window.MathJax.startup.promise : null")
        p.wait_for_load_state("networkidle")

    def close(self):
        self.page.close()


def _pages(site: Path) -> list[str]:
    skip = ("_static", "_sources", "_images", "_downloads")
    return sorted(str(p.relative_to(site)) for p in site.rglob("*.html") if p.relative_to(site).parts[0] not in skip)


class _Ids(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k in ("id", "name") and v:
                self.ids.add(v)


@functools.cache
def _ids(file: Path) -> frozenset[str]:
    parser = _Ids()
    parser.feed(file.read_text(errors="replace"))
    return frozenset(parser.ids)


def _broken_links(site: Path, base: str, page_path: str, hrefs: list[str]) -> list[str]:
    """Internal links whose target file or #anchor is missing."""
    bad = []
    for href in hrefs:
        if not href.startswith(base):
            continue
        url, frag = urldefrag(href)
        rel = unquote(urlsplit(url).path).lstrip("/")
        target = site / rel
        if target.is_dir():
            target = target / "index.html"
        if not target.exists():
            bad.append(f"{page_path}: link to missing {rel}")
        elif frag and target.suffix == ".html" and unquote(frag) not in _ids(target):
            bad.append(f"{page_path}: link to missing anchor {rel}#{frag}")
    return bad


def test_every_page_loads_cleanly_with_links_images_and_math(browser, server, smoke_site):
    pages = _pages(smoke_site)
    assert "book/intro.html" in pages and "book/report.html" in pages and len(pages) >= len(WRITTEN) + 5
    problems, typeset = [], {}
    for path in pages:
        v = Visit(browser, server, path)
        try:
            problems += [f"{path}: {p}" for p in v.problems]
            hrefs = v.page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
            problems += _broken_links(smoke_site, server, path, hrefs)
            images = v.page.eval_on_selector_all(
                "img", "els => els.map(e => [e.currentSrc || e.src, e.complete && e.naturalWidth > 0, "
                       "e.getAttribute('alt'), !!e.closest('article')])")
            for src, loaded, alt, in_article in images:
                if not loaded:
                    problems.append(f"{path}: image does not load: {src}")
                if in_article and (not alt or alt.strip() == "" or alt.endswith((".png", ".svg", ".jpg"))):
                    problems.append(f"{path}: image without alt text: {src} (alt={alt!r})")
            math = v.page.evaluate(
                "() => { const m = [...document.querySelectorAll('article .math')];"
                " return [m.length, m.filter(e => !e.querySelector('mjx-container')).length,"
                " document.querySelectorAll('mjx-merror, [data-mjx-error]').length]; }")
            n_math, untypeset, errors = math
            typeset[path] = n_math
            if untypeset:
                problems.append(f"{path}: {untypeset} of {n_math} formulas not typeset by MathJax")
            if errors:
                problems.append(f"{path}: {errors} MathJax TeX errors")
        finally:
            v.close()
    assert not problems, "\n".join(problems)
    # the math-heavy pages really have math (so 'no untypeset formula' is not vacuous)
    for ch in WRITTEN:
        assert typeset[f"chapters/{ch.id}/{ch.name}.html"] > 0, ch.id
    assert typeset["book/notation.html"] > 0


def test_the_site_root_has_a_favicon(server):
    """Browsers ask for /favicon.ico on the root's redirect page; a 404 there is a console error."""
    import urllib.request

    with urllib.request.urlopen(f"{server}/favicon.ico") as r:
        assert r.status == 200 and r.read(4) == b"\x00\x00\x01\x00"  # an ICO header


def test_search_finds_avagrad(browser, server):
    v = Visit(browser, server, "search.html?q=AvaGrad")
    try:
        v.page.wait_for_selector("#search-results ul.search li", timeout=30_000)
        hits = v.page.eval_on_selector_all("#search-results ul.search li a", "els => els.map(e => e.href)")
        assert v.problems == []
    finally:
        v.close()
    assert any("08-avagrad/avagrad.html" in h for h in hits), hits


def test_report_lists_every_written_chapter(browser, server):
    v = Visit(browser, server, "book/report.html")
    try:
        sections = v.page.eval_on_selector_all("article section section > h2",
                                               "els => els.map(e => e.textContent)")
        rows = v.page.eval_on_selector(  # the first table is the summary, one row per chapter
            "article table", "t => [...t.querySelectorAll('tbody tr')].map(r => r.querySelector('a').href)")
        text = v.page.inner_text("article")
    finally:
        v.close()
    assert len(sections) == len(WRITTEN), sections
    assert len(rows) == len(WRITTEN), rows
    for ch in WRITTEN:
        assert any(r.endswith(f"chapters/{ch.id}/{ch.name}.html") for r in rows), (ch.id, rows)
    assert "not executed" not in text and "smoke" in text and "torch" in text


def test_chapters_have_a_captioned_key_figure_and_launch_and_download(browser, server):
    problems = []
    for ch in WRITTEN:
        v = Visit(browser, server, f"chapters/{ch.id}/{ch.name}.html")
        try:
            figs = v.page.eval_on_selector_all(
                "article figure", "els => els.map(f => [!!f.querySelector('img'), "
                                  "(f.querySelector('figcaption') || {}).textContent || '', "
                                  "f.querySelector('img') ? f.querySelector('img').naturalWidth : 0])")
            if not any(has_img and caption.strip() and width >= 600 for has_img, caption, width in figs):
                problems.append(f"{ch.id}: no captioned figure at least 600 px wide ({figs})")
            links = v.page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
            nb = f"chapters/{ch.id}/{ch.name}.ipynb"
            if not any(h.endswith(f"_sources/{nb}") for h in links):
                problems.append(f"{ch.id}: no .ipynb download link")
            for host in ("mybinder.org", "colab.research.google.com"):
                if not any(host in h and h.endswith(nb) for h in links):
                    problems.append(f"{ch.id}: no {host} launch link to {nb}")
            problems += [f"{ch.id}: {p}" for p in v.problems]
        finally:
            v.close()
    assert not problems, "\n".join(problems)


def test_one_search_box_and_a_working_menu_on_desktop_and_phone(browser, server):
    """The theme's own header stays out (sphinx-book-theme #986): one search box, and the menu button that is
    visible is the one the theme's script drives (it collapses the sidebar on a desktop, opens a drawer on a phone)."""
    for width, height in ((1280, 900), (400, 800)):
        v = Visit(browser, server, "book/intro.html", width=width, height=height)
        try:
            p = v.page
            assert p.locator(".search-button-field:visible").count() <= 1, width
            assert p.locator("#pst-header").evaluate("h => h.getBoundingClientRect().height") == 0, width
            toggle = p.locator(".primary-toggle:visible")
            assert toggle.count() == 1, width
            toggle.click()
            if width >= 960:
                p.wait_for_function("() => { const r = document.querySelector('#pst-primary-sidebar')"
                                    ".getBoundingClientRect(); return r.right <= 0; }", timeout=5_000)
            else:
                p.wait_for_function("() => document.getElementById('pst-primary-sidebar-modal').open", timeout=5_000)
                assert p.locator("#pst-primary-sidebar-modal a[href*='avagrad']").is_visible()
            assert v.problems == [], v.problems
        finally:
            v.close()


def _png(name: str) -> None:
    data = (ARTIFACTS / name).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000, name  # a real, non-blank picture


def test_screenshots_of_the_landing_page_and_a_chapter(browser, server):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    v = Visit(browser, server, "book/intro.html")
    try:
        v.page.screenshot(path=str(ARTIFACTS / "landing.png"))  # the first screen a reader sees
        # a viewport as tall as the page: stitched full-page captures misplace the sticky sidebar
        height = v.page.evaluate("() => document.documentElement.scrollHeight")
        v.page.set_viewport_size({"width": v.page.viewport_size["width"], "height": height})
        v.page.wait_for_timeout(300)
        v.page.screenshot(path=str(ARTIFACTS / "landing-full.png"))
    finally:
        v.close()
    _png("landing.png")
    _png("landing-full.png")
    # the chapter's first screen, then its key figure as a reader sees it (size, labels, legend)
    v = Visit(browser, server, "chapters/08-avagrad/avagrad.html")
    try:
        v.page.screenshot(path=str(ARTIFACTS / "chapter-avagrad.png"))
        fig = v.page.locator("article figure").first
        fig.scroll_into_view_if_needed()
        fig.screenshot(path=str(ARTIFACTS / "figure-avagrad.png"))
        assert fig.bounding_box()["width"] >= 600
    finally:
        v.close()
    _png("chapter-avagrad.png")
    print(f"screenshots in {ARTIFACTS}")

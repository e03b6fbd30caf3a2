"""The book builds, with Sphinx warnings as errors, from the chapters executed at smoke scale."""

import html as htmllib
import json
import re

import pytest

from effcourse.book.notebooks import chapters

WRITTEN = [c for c in chapters(written_only=True)]


@pytest.mark.slow
def test_book_builds_without_warnings(smoke_site):
    site = smoke_site
    assert "book/intro.html" in (site / "index.html").read_text()  # the root page redirects to the landing page
    assert "effcourse" in (site / "book" / "intro.html").read_text()
    for ch in WRITTEN:
        page = site / "chapters" / ch.id / f"{ch.name}.html"
        assert page.exists(), page
        html = page.read_text()
        assert "claim" in html and "Traceback" not in html
        assert "widget-state" not in html and "embed-amd" not in html  # progress-bar widgets are dropped


@pytest.mark.slow
def test_report_page_is_generated_from_this_builds_records(smoke_site):
    html = (smoke_site / "book" / "report.html").read_text()
    assert "the source checkout holds no numbers" not in html
    (download,) = (smoke_site / "_downloads").glob("*/report.json")
    records = json.loads(download.read_text())
    assert sorted(records) == [c.id for c in WRITTEN]
    text = _alnum(htmllib.unescape(re.sub(r"<[^>]+>", "", html)))  # smart quotes and markup do not matter
    for ch in WRITTEN:
        rec = records[ch.id]
        assert rec["scale"] == "smoke"
        assert f"{ch.name}.html" in html
        for claim in rec["claims"]:  # every recorded claim is on the page, with this run's number
            assert _alnum(claim["name"]) in text, claim["name"]
            assert _alnum(claim["ours"]) in text, claim["ours"]


def _alnum(s: str) -> str:
    return re.sub(r"[^a-z0-9]", "", s.lower())


@pytest.mark.slow
def test_site_serves_mathjax_itself(smoke_site):
    page = (smoke_site / "chapters" / "08-avagrad" / "avagrad.html").read_text()
    assert "cdn.jsdelivr.net/npm/mathjax" not in page and "_static/mathjax/tex-chtml.js" in page
    assert (smoke_site / "_static" / "mathjax" / "tex-chtml.js").exists()

"""The book builds, with Sphinx warnings as errors, by ``make book``'s command in a clean copy of the repository,
from the suite's one smoke execution of each chapter."""

import html as htmllib
import json
import re

import pytest

from effcourse.book.notebooks import chapters

WRITTEN = [c for c in chapters(written_only=True)]


def test_make_book_runs_the_command_the_tests_run():
    from pathlib import Path

    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    assert "$(PY) -m effcourse.book.notebooks book $(RUN_OPTS)" in makefile  # the fixture runs `book --scale smoke`


@pytest.mark.slow
def test_book_from_a_clean_copy_reuses_the_suites_executions(book_build, smoke_runs):
    """The README's first command on a clean copy: it finds the suite's smoke executions of the same sources in its
    cache (the execution key covers the chapter's code, every library file it imports, scale, seed, threads and
    the installed versions), so it renders without executing any chapter again."""
    proc = book_build["proc"]
    if proc is None:
        pytest.skip("EFFCOURSE_TEST_SITE reuses a site built earlier")
    assert proc["returncode"] == 0, proc["stdout"][-3000:] + proc["stderr"][-3000:]
    out = proc["stdout"]
    assert "Traceback" not in proc["stderr"] and "without encryption" not in out + proc["stderr"]
    assert out.count("reused (unchanged)") == len(WRITTEN) and "executed in" not in out
    executed = book_build["root"] / "_build" / "executed" / "smoke"
    for ch in WRITTEN:
        rec = json.loads((executed / ch.id / "metrics.json").read_text())
        res = smoke_runs.get(ch.id)
        assert not isinstance(res, Exception), f"{ch.id} failed at smoke scale (see its regression test)"
        one = json.loads(res[1].read_text())
        assert (rec["claims"], rec["metrics"]) == (one["claims"], one["metrics"])


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

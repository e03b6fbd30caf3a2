"""The book builds, with Sphinx warnings as errors, from the chapters executed at smoke scale."""

import pytest

from effcourse.notebooks import build_book


@pytest.mark.slow
def test_book_builds_without_warnings(smoke_runs, tmp_path):
    runs = smoke_runs.all()
    failed = {k: v for k, v in runs.items() if isinstance(v, Exception)}
    if failed:
        pytest.fail(f"chapters failed to execute, so the book cannot build: {sorted(failed)}")
    executed = {k: nb for k, (nb, _) in runs.items()}
    site = build_book(scale="smoke", out=tmp_path / "site", executed=executed, progress=False)
    assert "book/intro.html" in (site / "index.html").read_text()  # the root page redirects to the landing page
    assert "effcourse" in (site / "book" / "intro.html").read_text()
    for ch in executed:
        page = site / "chapters" / ch / f"{ch.split('-', 1)[1]}.html"
        assert page.exists(), page
        html = page.read_text()
        assert "claim" in html and "Traceback" not in html

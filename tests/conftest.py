"""Shared fixtures: the chapters executed once per session at ``smoke`` scale, and the baseline refresh option."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "_build" / "test-smoke"


def pytest_addoption(parser):
    parser.addoption("--update-baselines", action="store_true", default=False,
                     help="rewrite tests/baselines/<chapter>.json from this run's smoke metrics (on purpose only)")


class SmokeRuns:
    """Chapters executed at smoke scale on first request, once per session (shared by regression and book tests)."""

    def __init__(self):
        self._done: dict[str, object] = {}

    def get(self, chapter_id: str):
        """(executed notebook, metrics path), or the exception the execution raised."""
        from effcourse.book.notebooks import execute, find_chapter

        if chapter_id not in self._done:
            try:
                self._done[chapter_id] = execute(find_chapter(chapter_id, ROOT), "smoke", seed=0, out_dir=BUILD,
                                                 force=True)
            except Exception as err:  # reported by the test that asked, not by the fixture
                self._done[chapter_id] = err
        return self._done[chapter_id]

    def all(self) -> dict[str, object]:
        from effcourse.book.notebooks import chapters

        return {ch.id: self.get(ch.id) for ch in chapters(ROOT, written_only=True)}


@pytest.fixture(scope="session")
def smoke_runs() -> SmokeRuns:
    return SmokeRuns()


@pytest.fixture(scope="session")
def smoke_site(smoke_runs, tmp_path_factory) -> Path:
    """The book built once per session from the smoke executions (its HTML folder).

    ``EFFCOURSE_TEST_SITE=<html folder>`` reuses a site already built, to iterate on the site tests quickly.
    """
    import os

    from effcourse.book.notebooks import build_book

    if os.environ.get("EFFCOURSE_TEST_SITE"):
        return Path(os.environ["EFFCOURSE_TEST_SITE"])

    runs = smoke_runs.all()
    failed = {k: v for k, v in runs.items() if isinstance(v, Exception)}
    if failed:
        pytest.fail(f"chapters failed to execute, so the book cannot build: {sorted(failed)}")
    executed = {k: nb for k, (nb, _) in runs.items()}
    return build_book(scale="smoke", out=tmp_path_factory.mktemp("book") / "site", executed=executed, progress=False)

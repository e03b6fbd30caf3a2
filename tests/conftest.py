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


def clean_copy(dest: Path) -> Path:
    """What a fresh clone of this working tree holds (tracked files and new ones git does not ignore), in ``dest``."""
    import shutil
    import subprocess

    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


@pytest.fixture(scope="session")
def book_build(tmp_path_factory) -> dict:
    """``make book``'s command, at smoke scale, in a clean copy of the repository, with the machine's default thread
    count (no ``EFFCOURSE_THREADS``/``OMP_NUM_THREADS``): the README's first command as a new user runs it.

    Returns the completed process, the copy's root and the site folder.  ``EFFCOURSE_TEST_SITE=<html folder>``
    reuses a site already built, to iterate on the site tests quickly.
    """
    import os
    import subprocess
    import sys

    if os.environ.get("EFFCOURSE_TEST_SITE"):
        site = Path(os.environ["EFFCOURSE_TEST_SITE"])
        return {"proc": None, "root": site.parents[2], "site": site}
    root = clean_copy(tmp_path_factory.mktemp("clone"))
    env = {k: v for k, v in os.environ.items()
           if k not in ("EFFCOURSE_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "EFFCOURSE_SCALE", "MPLBACKEND")}
    env["PYTHONPATH"] = str(root)  # the copy's library, in this process and in the kernels it starts
    proc = subprocess.run([sys.executable, "-m", "effcourse.book.notebooks", "book", "--scale", "smoke"], cwd=root,
                          env=env, capture_output=True, text=True)
    return {"proc": proc, "root": root, "site": root / "_build" / "site-smoke" / "_build" / "html"}


@pytest.fixture(scope="session")
def smoke_site(book_build) -> Path:
    """The HTML folder of the book built by :func:`book_build`."""
    proc = book_build["proc"]
    if proc is not None and proc.returncode != 0:
        pytest.fail(f"the book did not build (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return book_build["site"]

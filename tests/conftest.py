"""Shared fixtures: the chapters executed once per run at ``smoke`` scale, the book built once from them, and the
baseline refresh option.

``make test`` runs pytest-xdist workers (``-n auto --dist worksteal``).  A session fixture runs once per worker, so
the expensive ones do their work once per *run* instead: the first worker to need it does it under a file lock in a
folder every worker of the run shares (:func:`once`), and the others wait for it and read what it left.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SECONDS = ROOT / "_build" / "test-smoke-seconds.json"  # last run's chapter times: the longest starts first


def pytest_addoption(parser):
    parser.addoption("--update-baselines", action="store_true", default=False,
                     help="rewrite tests/baselines/<chapter>.json from this run's smoke metrics (on purpose only)")


def shared_dir(tmp_path_factory) -> Path:
    """A folder that every xdist worker of this run sees (this session's own temp folder without xdist)."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    base = tmp_path_factory.getbasetemp()
    path = base.parent / f"shared-{run}" if run else base / "shared"
    path.mkdir(parents=True, exist_ok=True)
    return path


def once(folder: Path, name: str, work: Callable[[], dict]) -> dict:
    """``work()``'s JSON result, computed by the first caller of this run and read by every later one (any worker)."""
    with open(folder / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if work() raises
        done = folder / f"{name}.json"
        if not done.exists():
            done.write_text(json.dumps(work()))
        return json.loads(done.read_text())


class SmokeRuns:
    """Every written chapter executed once per run at smoke scale, one thread each, as many side by side as there
    are cores.  The one execution serves the baselines, the stored outputs of the marked cells (nbval's comparison)
    and the book build."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._done: dict[str, object] | None = None

    def _execute_all(self) -> dict:
        from effcourse.book.notebooks import chapters, execute_side_by_side

        ids = [ch.id for ch in chapters(ROOT, written_only=True)]
        last = json.loads(SECONDS.read_text()) if SECONDS.exists() else {}
        ids.sort(key=lambda i: last.get(i, 0.0), reverse=True)  # the longest first: the cores finish together
        futures = execute_side_by_side(ids, root=ROOT, scale="smoke", seed=0, out_dir=self.folder, force=True,
                                       threads=1)
        out = {}
        for chapter_id, fut in futures.items():
            try:
                nb, metrics, _ = fut.result()
                out[chapter_id] = {"notebook": str(nb), "metrics": str(metrics)}
            except Exception as err:  # reported by the test that asks, not by the fixture
                out[chapter_id] = {"error": f"{type(err).__name__}: {err}"}
        seconds = {i: json.loads(Path(r["metrics"]).read_text())["execution"]["seconds"]
                   for i, r in out.items() if "metrics" in r}
        SECONDS.parent.mkdir(parents=True, exist_ok=True)
        SECONDS.write_text(json.dumps(seconds, indent=1))
        return out

    def get(self, chapter_id: str):
        """(executed notebook, metrics path), or a RuntimeError saying why the execution failed."""
        if self._done is None:
            self._done = once(self.folder, "smoke-runs", self._execute_all)
        r = self._done[chapter_id]
        return RuntimeError(r["error"]) if "error" in r else (Path(r["notebook"]), Path(r["metrics"]))

    def all(self) -> dict[str, object]:
        from effcourse.book.notebooks import chapters

        return {ch.id: self.get(ch.id) for ch in chapters(ROOT, written_only=True)}


@pytest.fixture(scope="session")
def smoke_runs(tmp_path_factory) -> SmokeRuns:
    folder = shared_dir(tmp_path_factory) / "smoke"
    folder.mkdir(exist_ok=True)
    return SmokeRuns(folder)


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
def book_build(tmp_path_factory, smoke_runs) -> dict:
    """``make book``'s command, at smoke scale, in a clean copy of the repository: the README's first command as a
    new user runs it, with the suite's own smoke executions in the copy's cache (one thread, as the suite runs
    them), so the command reuses them instead of executing every chapter a second time and only renders.  Once
    per run (:func:`once`).

    Returns the command's exit code and output, the copy's root and the site folder.  ``EFFCOURSE_TEST_SITE=<html
    folder>`` reuses a site already built, to iterate on the site tests quickly.
    """
    if os.environ.get("EFFCOURSE_TEST_SITE"):
        site = Path(os.environ["EFFCOURSE_TEST_SITE"])
        return {"proc": None, "root": site.parents[2], "site": site}
    folder = shared_dir(tmp_path_factory)

    def build() -> dict:
        import shutil
        import subprocess
        import sys

        root = clean_copy(folder / "clone")
        for chapter_id, res in smoke_runs.all().items():
            if not isinstance(res, Exception):  # a failed chapter is executed (and fails) again in the build
                shutil.copytree(res[0].parent, root / "_build" / "executed" / "smoke" / chapter_id)
        env = {k: v for k, v in os.environ.items() if k not in ("EFFCOURSE_SCALE", "MPLBACKEND")}
        env.update(PYTHONPATH=str(root), EFFCOURSE_THREADS="1")  # the copy's library, here and in its kernels
        proc = subprocess.run([sys.executable, "-m", "effcourse.book.notebooks", "book", "--scale", "smoke"],
                              cwd=root, env=env, capture_output=True, text=True)
        return {"returncode": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr, "root": str(root)}

    r = once(folder, "book-build", build)
    root = Path(r["root"])
    return {"proc": r, "root": root, "site": root / "_build" / "site-smoke" / "_build" / "html"}


@pytest.fixture(scope="session")
def smoke_site(book_build) -> Path:
    """The HTML folder of the book built by :func:`book_build`."""
    proc = book_build["proc"]
    if proc is not None and proc["returncode"] != 0:
        pytest.fail(f"the book did not build (exit {proc['returncode']}):\n{proc['stdout'][-3000:]}\n"
                    f"{proc['stderr'][-3000:]}")
    return book_build["site"]

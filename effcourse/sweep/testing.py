"""Helpers for tests of a chapter's sweep (as ``numpy.testing`` is for NumPy's): a dry run in a fresh process."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from .context import KILL_ENV

__all__ = ["dry_run_cli", "dry_run_here", "resume_and_rerun"]


def dry_run_cli(chapter: str, out: str | os.PathLike, only: str, *, kill_after: int | None = None,
                extra: Sequence[str] = (), timeout: float = 600) -> subprocess.CompletedProcess:
    """``python -m effcourse.sweep run CHAPTER --dry-run --only ONLY --out OUT --threads 1`` in a fresh process.

    Its environment is the caller's without ``$EFFCOURSE_DATA`` (the dry run writes its own synthetic files) and
    without the kill hook, unless ``kill_after`` sets it: the process then kills itself with SIGKILL after that
    many checkpoint writes (return code -9), the death that resuming must survive.
    """
    env = {k: v for k, v in os.environ.items() if k not in (KILL_ENV, "EFFCOURSE_DATA")}
    env.update(OMP_NUM_THREADS="1", EFFCOURSE_THREADS="1")
    if kill_after is not None:
        env[KILL_ENV] = str(kill_after)
    cmd = [sys.executable, "-m", "effcourse.sweep", "run", chapter, "--dry-run", "--only", only, "--out",
           str(Path(out)), "--threads", "1", *extra]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


@contextlib.contextmanager
def _without(*names: str) -> Iterator[None]:
    saved = {k: os.environ.pop(k) for k in names if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def dry_run_here(chapter: str, out: str | os.PathLike, only: str, *, extra: Sequence[str] = ()) -> int:
    """:func:`dry_run_cli`'s command (never killed) in this process: no interpreter to start and no imports to
    repeat, the seconds that dominate a small run.  Returns the command's exit code; the environment is left as it
    was (``$EFFCOURSE_DATA`` is set aside while it runs, as in the fresh process)."""
    from .cli import main

    with _without(KILL_ENV, "EFFCOURSE_DATA"):
        return main(["run", chapter, "--dry-run", "--only", only, "--out", str(Path(out)), "--threads", "1", *extra])


def resume_and_rerun(chapter: str, killed_out: str | os.PathLike, clean_out: str | os.PathLike, run_id: str, *,
                     extra: Sequence[str] = ()) -> tuple[dict, dict]:
    """Finish the run ``run_id`` that was killed in ``killed_out``, run it uninterrupted in ``clean_out`` (both in
    this process, :func:`dry_run_here`; the kill itself needs a process of its own, :func:`dry_run_cli`), and
    return both ``result.json`` records: ``(resumed, clean)``.

    Raises ``AssertionError`` (it is a test helper) when either run fails, naming its error, or when the resumed
    record does not say ``resumed`` or the clean one does.
    """
    records = []
    for out in (killed_out, clean_out):
        code = dry_run_here(chapter, out, run_id, extra=extra)
        folder = Path(out) / chapter / run_id
        if code != 0:
            err = folder / "error.json"
            why = json.loads(err.read_text())["traceback"][-2000:] if err.exists() else "(no error.json)"
            raise AssertionError(f"{chapter} {run_id} in {out} exited {code}:\n{why}")
        records.append(json.loads((folder / "result.json").read_text()))
    resumed, clean = records
    if resumed["resumed"] is not True or clean["resumed"] is not False:
        raise AssertionError(f"resumed flags: {resumed['resumed']!r} after the kill, {clean['resumed']!r} without")
    return resumed, clean

"""Helpers for tests of a chapter's sweep (as ``numpy.testing`` is for NumPy's): a dry run in a fresh process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from .context import KILL_ENV

__all__ = ["dry_run_cli"]


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

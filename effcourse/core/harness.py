"""The three-scale notebook harness: scales, seeding, devices, claims and recorded metrics.

Every chapter starts with a papermill ``parameters`` cell (``SCALE``, ``SEED``, ``DEVICE``) and then::

    run = Run("08-avagrad", scale=SCALE, seed=SEED, device=DEVICE)
    cfg = run.cfg                        # this chapter's configuration at this scale
    ...
    run.claim("AvaGrad's best lr does not move with eps", spread <= 1.0, thesis="alpha*=1.0 for all 21 eps",
              ours=f"spread {spread:.2f} decades")
    run.metric("avagrad/best_val_err", err)
    run.claims_table()                   # the table that closes the chapter

A claim asserts: a failed claim raises :class:`ClaimFailed` and so fails papermill, nbval and ``make book``.
When ``EFFCOURSE_METRICS`` names a file, the run (re)writes one JSON object there after every claim or metric,
so the file is complete even when a later claim fails.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import SCALES, config
from .tables import Table

__all__ = [
    "ClaimFailed",
    "Run",
    "resolve_device",
    "resolve_scale",
    "seed_everything",
]

SCALE_ENV = "EFFCOURSE_SCALE"
METRICS_ENV = "EFFCOURSE_METRICS"


class ClaimFailed(AssertionError):
    """A thesis claim did not hold in this run."""


def resolve_scale(scale: str | None = None) -> str:
    """Return the scale to run at: ``scale`` if given, else ``$EFFCOURSE_SCALE``, else ``"book"``."""
    if scale is None:
        scale = os.environ.get(SCALE_ENV) or "book"
    if not isinstance(scale, str) or scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES} (or set {SCALE_ENV}); got {scale!r}")
    return scale


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA when present, else the CPU; anything else must name an available device."""
    if isinstance(device, torch.device):
        dev = device
    elif device == "auto":
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    elif isinstance(device, str):
        try:
            dev = torch.device(device)
        except RuntimeError as err:
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got {device!r}") from err
    else:
        raise TypeError(f"device must be a str or torch.device; got {type(device).__name__}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for CUDA, but torch.cuda.is_available() is False")
    return dev


def seed_everything(seed: int, deterministic: bool = True) -> torch.Generator:
    """Seed Python, NumPy and torch; with ``deterministic`` CPU runs repeat bit for bit.

    Returns a fresh CPU generator seeded with ``seed`` for code that wants its own stream.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int; got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        # warn_only: a few CUDA kernels have no deterministic variant; the CPU path is fully deterministic.
        torch.use_deterministic_algorithms(True, warn_only=True)
        if torch.backends.cudnn.is_available():
            torch.backends.cudnn.benchmark = False
    return torch.Generator().manual_seed(seed)


def _jsonable(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        return x.item() if x.numel() == 1 else x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return x


@dataclass
class ClaimRow:
    name: str
    held: bool
    thesis: str
    ours: str
    asserted: bool
    value: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "held": self.held, "thesis": self.thesis, "ours": self.ours,
                "asserted": self.asserted, "value": self.value}


@dataclass
class Run:
    """One execution of a chapter: its scale, seed, device, configuration, claims and metrics."""

    chapter: str
    scale: str | None = None
    seed: int = 0
    device: str | torch.device = "auto"
    metrics_path: str | os.PathLike | None = None
    claims: list[ClaimRow] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.scale = resolve_scale(self.scale)
        self.device = resolve_device(self.device)
        self.generator = seed_everything(self.seed)
        self.cfg = config(self.chapter, self.scale)
        if self.metrics_path is None:
            self.metrics_path = os.environ.get(METRICS_ENV) or None
        self.started = _dt.datetime.now(_dt.timezone.utc)
        self._write()

    # ------------------------------------------------------------------ recording
    def metric(self, name: str, value: float) -> float:
        """Record a number that the regression tests compare with ``tests/baselines/<chapter>.json``."""
        v = _jsonable(value)
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise TypeError(f"metric {name!r} must be a real number; got {value!r}")
        self.metrics[name] = float(v)
        self._write()
        return float(v)

    def claim(self, name: str, holds: bool, *, thesis: str, ours: str, value: float | None = None,
              min_scale: str = "smoke") -> None:
        """Record a claim row and assert it (at ``min_scale`` and above; below it the row is shown, not asserted).

        ``value`` (optional) is also recorded as metric ``claim/<name>``.  Returns nothing, so that a notebook cell
        ending in a claim shows no output; the row is in ``run.claims``.
        """
        if min_scale not in SCALES:
            raise ValueError(f"min_scale must be one of {SCALES}; got {min_scale!r}")
        held = bool(holds)
        asserted = SCALES.index(self.scale) >= SCALES.index(min_scale)
        if value is not None:
            value = float(_jsonable(value))
            self.metrics[f"claim/{name}"] = value
        self.claims = [c for c in self.claims if c.name != name]
        self.claims.append(ClaimRow(name, held, str(thesis), str(ours), asserted, value))
        self._write()
        if asserted and not held:
            raise ClaimFailed(f"claim did not hold at scale {self.scale!r}: {name} (ours: {ours}; thesis: {thesis})")

    def record(self) -> dict[str, Any]:
        """The JSON object written to ``$EFFCOURSE_METRICS``."""
        return {
            "chapter": self.chapter,
            "scale": self.scale,
            "seed": self.seed,
            "claims": [{k: v for k, v in c.as_dict().items()} for c in self.claims],
            "metrics": dict(self.metrics),
            "env": {
                "date": self.started.isoformat(timespec="seconds"),
                "torch": torch.__version__,
                "python": platform.python_version(),
                "device": str(self.device),
                "device_name": (torch.cuda.get_device_name(self.device) if self.device.type == "cuda"
                                else platform.processor() or platform.machine()),
                "threads": torch.get_num_threads(),
            },
        }

    def _write(self) -> None:
        if not self.metrics_path:
            return
        path = Path(self.metrics_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.record(), indent=1, default=_jsonable))
        tmp.replace(path)

    # ------------------------------------------------------------------ display
    def claims_markdown(self) -> str:
        """The claims table as Markdown (rendered by Jupyter and by the book)."""
        rows = [(c.name, c.thesis, c.ours,
                 ("yes" if c.held else "**no**") + ("" if c.asserted else f" (not asserted at {self.scale})"))
                for c in self.claims]
        body = Table(rows, ["claim", "thesis", "this run", "held"], escape_html=True).to_markdown()
        # the held column carries Markdown emphasis on purpose; the helper escapes only HTML and pipes
        return (f"{body}\n\n*Scale `{self.scale}`, seed {self.seed}, device `{self.device}`, "
                f"torch {torch.__version__}.*")

    def table(self, rows, columns=None, **kwargs) -> Table:
        """A Markdown table of ``rows`` (see :func:`effcourse.core.tables.table`), shown when a cell ends in it."""
        return Table(rows, columns, **kwargs)

    def claims_table(self):
        """Display the claims table (returns an IPython ``Markdown`` object)."""
        from IPython.display import Markdown

        return Markdown(self.claims_markdown())

    def __repr__(self) -> str:
        return f"Run(chapter={self.chapter!r}, scale={self.scale!r}, seed={self.seed}, device='{self.device}')"


def load_record(path: str | os.PathLike) -> Mapping[str, Any]:
    """Read a metrics file written by :class:`Run`."""
    return json.loads(Path(path).read_text())

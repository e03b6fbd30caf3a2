"""The three-scale notebook harness: scales, seeding, devices, claims and recorded metrics.

Every chapter starts with a papermill ``parameters`` cell (``SCALE``, ``SEED``, ``DEVICE``) and then::

    run = Run("08-avagrad", scale=SCALE, seed=SEED, device=DEVICE)
    cfg = run.cfg                        # this chapter's configuration at this scale
    ...
    seeds = run.seeds(3)                 # experiment seeds derived from SEED: 1000*SEED, 1000*SEED+1, ...
    run.claim("median over 3 seeds: AvaGrad's best lr moves < 1 decade with eps", spread <= 1.0,
              kind="empirical", thesis="alpha*=1.0 for all 21 eps", ours=f"spread {spread:.2f} decades")
    run.metric("avagrad/best_val_err", err)
    run.claims_table()                   # the table that closes the chapter

A claim asserts: a failed claim raises :class:`ClaimFailed` and so fails papermill, nbval and ``make book``.
Each claim has a ``kind``: ``"math"`` (an identity or theorem checked up to a stated tolerance) or ``"empirical"``
(a statement about training outcomes, with its criterion over seeds in its name).

Environment variables the harness reads (the command line, ``python -m effcourse.book.notebooks``, sets them):

* ``EFFCOURSE_SCALE``: the scale when the parameters cell does not fix one.
* ``EFFCOURSE_METRICS``: a file the run (re)writes as one JSON object after every claim or metric, so the file is
  complete even when a later claim fails.
* ``EFFCOURSE_THREADS``: the torch thread count, set explicitly so results never depend on a machine's default.
* ``EFFCOURSE_CLAIMS``: ``assert`` (default) or ``report``; ``report`` records failed claims without raising, which
  is how ``seeds`` measures a claim's hold rate over many base seeds.
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

from .config import SCALES, config, deviations
from .numerics import resolve_deterministic, set_deterministic
from .tables import Table

__all__ = [
    "ClaimFailed",
    "Run",
    "resolve_device",
    "resolve_scale",
    "experiment_seeds",
    "resolve_threads",
    "seed_everything",
    "synchronize",
]

SCALE_ENV = "EFFCOURSE_SCALE"
METRICS_ENV = "EFFCOURSE_METRICS"
THREADS_ENV = "EFFCOURSE_THREADS"
CLAIMS_ENV = "EFFCOURSE_CLAIMS"
KINDS = ("math", "empirical")
CLAIM_MODES = ("assert", "report")
SEED_STRIDE = 1000  # experiment seeds of base seed s are s*1000 .. s*1000+999: base seeds never share one


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


def synchronize(device: torch.device) -> None:
    """Wait for ``device``'s queued kernels (CUDA launches return at once); nothing to wait for on a CPU.  Call it on
    both sides of a timed region, so that the clock measures the work and not its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def resolve_threads(threads: int | str | None = None) -> int:
    """The torch thread count: ``threads`` if given, else ``$EFFCOURSE_THREADS``, else torch's current count."""
    if threads is None:
        threads = os.environ.get(THREADS_ENV) or torch.get_num_threads()
    try:
        n = int(threads)
    except (TypeError, ValueError):
        raise ValueError(f"threads must be a positive int (or set {THREADS_ENV}); got {threads!r}") from None
    if n < 1 or str(n) != str(threads).strip():
        raise ValueError(f"threads must be a positive int (or set {THREADS_ENV}); got {threads!r}")
    return n


def experiment_seeds(base: int, k: int, offset: int = 0) -> list[int]:
    """``k`` experiment seeds of base seed ``base``: ``1000*base + offset + i`` for ``i < k``.

    The rule of :meth:`Run.seeds`, also used by a sweep's plan (:mod:`effcourse.sweep`), so that a notebook and the
    sweep whose results it reads agree on every seed.
    """
    for name, v in (("base", base), ("k", k), ("offset", offset)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise ValueError(f"{name} must be a non-negative int; got {v!r}")
    if offset + k > SEED_STRIDE:
        raise ValueError(f"offset + k must be at most {SEED_STRIDE}; got {offset} + {k}")
    return [SEED_STRIDE * base + offset + i for i in range(k)]


def seed_everything(seed: int, deterministic: bool = True) -> torch.Generator:
    """Seed Python, NumPy and torch, and set the kernels (:func:`effcourse.core.numerics.set_deterministic`): with
    ``deterministic`` runs repeat bit for bit.

    Returns a fresh CPU generator seeded with ``seed`` for code that wants its own stream.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int; got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    set_deterministic(bool(deterministic))
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
    kind: str = "empirical"
    reported: bool = False  # shown with its outcome and never asserted, at any scale

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "held": self.held, "thesis": self.thesis, "ours": self.ours,
                "asserted": self.asserted, "reported": self.reported, "value": self.value}


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
    threads: int | None = None
    experiment_seeds: list[int] = field(default_factory=list)
    deterministic: bool | str | None = None

    def __post_init__(self) -> None:
        self.scale = resolve_scale(self.scale)
        self.device = resolve_device(self.device)
        self.threads = resolve_threads(self.threads)
        # explicit, so that a result never depends on how many cores the machine happens to have
        torch.set_num_threads(self.threads)
        self.claim_mode = os.environ.get(CLAIMS_ENV) or "assert"
        if self.claim_mode not in CLAIM_MODES:
            raise ValueError(f"{CLAIMS_ENV} must be one of {CLAIM_MODES}; got {self.claim_mode!r}")
        # on for smoke and book (bit-for-bit reruns); off at full: cuDNN autotuning and TF32 on a GPU
        self.deterministic = resolve_deterministic(self.deterministic, self.scale)
        self.generator = seed_everything(self.seed, deterministic=self.deterministic)
        self._results = None
        self.cfg = config(self.chapter, self.scale)
        if self.dry_run:
            from ..sweep.spec import sweep_config

            self.cfg = sweep_config(self.chapter, dry_run=True)
        if self.scale == "full":
            self.preflight()
        if self.metrics_path is None:
            self.metrics_path = os.environ.get(METRICS_ENV) or None
        self.started = _dt.datetime.now(_dt.timezone.utc)
        self._write()

    # ------------------------------------------------------------------ full scale
    def preflight(self) -> None:
        """Before any cell of a ``full`` run: the sweep's results must be there (see :meth:`sweep_results`)."""
        self.sweep_results()

    @property
    def dry_run(self) -> bool:
        """``$EFFCOURSE_DRY_RUN=1`` at ``full``: the configuration of ``sweep run --dry-run`` (epochs cut)."""
        return self.scale == "full" and os.environ.get("EFFCOURSE_DRY_RUN", "") not in ("", "0")

    def sweep_results(self):
        """At ``full`` scale, the results of the chapter's sweep in ``$EFFCOURSE_RESULTS``
        (:class:`effcourse.sweep.Results`): the notebook reads its thesis-scale experiments from them instead of
        training inline.  Missing or unfinished results raise an error naming the exact ``sweep run`` command."""
        if self.scale != "full":
            raise ValueError(f"sweep results exist at scale 'full' only; this run is at {self.scale!r}")
        if self._results is None:
            from ..sweep import load_results

            self._results = load_results(self.chapter, seed=self.seed, dry_run=self.dry_run)
        return self._results

    # ------------------------------------------------------------------ seeds
    def seeds(self, k: int, offset: int = 0) -> list[int]:
        """``k`` experiment seeds derived from the base seed: ``1000*SEED + offset + i`` for ``i < k``.

        The one way a chapter gets seeds for its experiments, so that another ``SEED`` is an independent replicate;
        every seed handed out is recorded in ``experiment_seeds``.
        """
        out = experiment_seeds(self.seed, k, offset)
        self.experiment_seeds = sorted(set(self.experiment_seeds) | set(out))
        self._write()
        return out

    def generator_for(self, offset: int = 0, device: str | torch.device = "cpu") -> torch.Generator:
        """A torch generator seeded with experiment seed ``1000*SEED + offset`` (recorded like :meth:`seeds`)."""
        (s,) = self.seeds(1, offset)
        return torch.Generator(device=device).manual_seed(s)

    # ------------------------------------------------------------------ recording
    def metric(self, name: str, value: float) -> float:
        """Record a number that the regression tests compare with ``tests/baselines/<chapter>.json``."""
        v = _jsonable(value)
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise TypeError(f"metric {name!r} must be a real number; got {value!r}")
        self.metrics[name] = float(v)
        self._write()
        return float(v)

    def claim(self, name: str, holds: bool, *, kind: str, thesis: str, ours: str, value: float | None = None,
              min_scale: str = "smoke", assert_claim: bool = True) -> bool:
        """Record a claim row and assert it (at ``min_scale`` and above; below it the row is shown, not asserted).

        ``kind`` is ``"math"`` (an identity or theorem check, exact up to a stated tolerance) or ``"empirical"``.
        ``assert_claim=False`` makes a *reported* claim: shown with its outcome, never asserted (for a claim whose
        hold rate over fresh seeds is below 9 of 10; the prose says why).  ``value`` (optional) is also recorded as
        metric ``claim/<name>``.  Returns whether the claim held, so prose can follow the outcome.
        """
        if min_scale not in SCALES:
            raise ValueError(f"min_scale must be one of {SCALES}; got {min_scale!r}")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")
        if holds is None:
            raise TypeError(f"holds must be a bool for claim {name!r}; got None")
        held = bool(holds)
        asserted = bool(assert_claim) and SCALES.index(self.scale) >= SCALES.index(min_scale)
        if value is not None:
            value = float(_jsonable(value))
            self.metrics[f"claim/{name}"] = value
        self.claims = [c for c in self.claims if c.name != name]
        self.claims.append(ClaimRow(name, held, str(thesis), str(ours), asserted, value, kind, not assert_claim))
        self._write()
        if asserted and not held and self.claim_mode == "assert":
            raise ClaimFailed(f"claim did not hold at scale {self.scale!r}: {name} (ours: {ours}; thesis: {thesis})")
        return held

    def record(self) -> dict[str, Any]:
        """The JSON object written to ``$EFFCOURSE_METRICS``."""
        return {
            "chapter": self.chapter,
            "scale": self.scale,
            "seed": self.seed,
            "experiment_seeds": list(self.experiment_seeds),
            "claims": [{k: v for k, v in c.as_dict().items()} for c in self.claims],
            "metrics": dict(self.metrics),
            "env": {
                "date": self.started.isoformat(timespec="seconds"),
                "torch": torch.__version__,
                "python": platform.python_version(),
                "device": str(self.device),
                "device_name": (torch.cuda.get_device_name(self.device) if self.device.type == "cuda"
                                else platform.processor() or platform.machine()),
                "threads": self.threads,
                "deterministic": self.deterministic,
                # measured by the kernel itself: what the chapter cost, for the report (shown, never asserted)
                "seconds": round((_dt.datetime.now(_dt.timezone.utc) - self.started).total_seconds(), 1),
                "peak_rss_mb": _peak_rss_mb(),
                **({"cuda_peak_mb": round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1)}
                   if self.device.type == "cuda" else {}),
            },
            "deviations": [vars(d) for d in deviations(self.chapter)],
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
    def _held(self, c: ClaimRow) -> str:
        mark = "yes" if c.held else "**no**"
        if c.asserted:
            return mark
        return mark + (" (reported, not asserted)" if c.reported else f" (not asserted at {self.scale})")

    def claims_markdown(self) -> str:
        """The claims table as Markdown (rendered by Jupyter and by the book): empirical claims, then checks of the
        mathematics."""
        parts = []
        for kind, title in (("empirical", "Empirical claims"), ("math", "Checks of the mathematics")):
            rows = [(c.name, c.thesis, c.ours, self._held(c)) for c in self.claims if c.kind == kind]
            if rows:
                # the held column carries Markdown emphasis on purpose; the helper escapes only HTML and pipes
                parts.append(f"**{title}**\n\n"
                             + Table(rows, ["claim", "thesis", "this run", "held"], escape_html=True).to_markdown())
        seeds = ", ".join(map(str, self.experiment_seeds)) or "none"
        return ("\n\n".join(parts) + f"\n\n*Scale `{self.scale}`, base seed {self.seed} (experiment seeds {seeds}), "
                f"device `{self.device}`, {self.threads} threads, torch {torch.__version__}.*")

    def table(self, rows, columns=None, **kwargs) -> Table:
        """A Markdown table of ``rows`` (see :func:`effcourse.core.tables.table`), shown when a cell ends in it."""
        return Table(rows, columns, **kwargs)

    def deviations_table(self) -> Table:
        """The chapter's departures from its thesis (``DEVIATIONS`` in its ``config.py``) as a table."""
        rows = [{"topic": d.topic, "thesis": d.thesis, "here": d.here, "why": d.why}
                for d in deviations(self.chapter)]
        if not rows:
            raise ValueError(f"{self.chapter} lists no deviations: add DEVIATIONS to its config.py")
        return self.table(rows)

    def claims_table(self):
        """Display the claims table (returns an IPython ``Markdown`` object)."""
        from IPython.display import Markdown

        return Markdown(self.claims_markdown())

    def __repr__(self) -> str:
        return f"Run(chapter={self.chapter!r}, scale={self.scale!r}, seed={self.seed}, device='{self.device}')"


def _peak_rss_mb() -> float | None:
    """Peak resident memory of this process so far, in MiB (None where the platform does not say)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if platform.system() == "Darwin" else 2**10), 1)  # bytes on macOS, KiB on Linux


def load_record(path: str | os.PathLike) -> Mapping[str, Any]:
    """Read a metrics file written by :class:`Run`."""
    return json.loads(Path(path).read_text())

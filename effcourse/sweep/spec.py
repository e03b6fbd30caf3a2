"""What a sweep is made of: a chapter's ``full`` experiments as a list of independent runs.

Each chapter declares its runs in ``effcourse/<subpackage>/sweep.py`` (the *chapter module*), which defines

- ``plan(cfg, seed) -> list[RunSpec]``: the independent runs of the chapter's ``full`` configuration ``cfg`` at
  base seed ``seed`` (experiment seeds ``1000*seed + offset + i``, as :meth:`effcourse.Run.seeds` hands out);
- ``execute(spec, ctx) -> dict``: train one run and return its JSON-able result, checkpointing through ``ctx``
  (:class:`effcourse.sweep.RunContext`) so that a killed run resumes where it stopped;
- ``DRY_RUN``: the configuration keys that ``--dry-run`` overrides (epochs and steps cut to one or two, sizes to a
  few samples), everything else staying the thesis's;
- ``DATA``: the data sets its runs read from ``$EFFCOURSE_DATA`` (names of
  :func:`effcourse.sweep.synthetic.write` ), empty when it generates its own;
- ``flops(spec, cfg) -> float``: the floating-point operations of one run, for ``sweep plan``'s GPU-hours;
- optionally ``DEVICE = "cpu"``: its runs are CPU-bound (a convex solver), so they never hold a GPU;
- optionally ``COST_NOTE``: one sentence that ``sweep plan`` prints beside the FLOP-based estimate when FLOPs are
  not what the runs' time depends on (small models bound by per-step overhead, a CPU solver).

A run may keep files beside its ``result.json`` in ``ctx.dir`` (e.g. ``model.pt``); the notebook finds them with
``results.run_dir(run_id)``.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from ..core.config import CHAPTER_PACKAGES, Config, config, package_name
from ..core.harness import experiment_seeds  # noqa: F401 - re-exported

__all__ = ["RunSpec", "SweepConfigError", "chapter_id", "chapter_module", "config_hash", "experiment_seeds",
           "sweep_config"]

_SAFE = re.compile(r"[^A-Za-z0-9.+=-]+")


class SweepConfigError(ValueError):
    """A sweep was asked for something that does not exist or does not fit (chapter, pattern, folder, data)."""


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return f"{v:.3g}".replace("e-0", "e-").replace("e+0", "e")
    if isinstance(v, (list, tuple)):
        return "+".join(_fmt(x) for x in v)
    return str(v)


@dataclass(frozen=True)
class RunSpec:
    """One independent run: an experiment (a name that groups runs), its parameters, and its seed.

    ``run_id`` is ``<experiment>/<k1>=<v1>_<k2>=<v2>_s=<seed>``: readable, a valid folder name, unique within a
    plan (a long one ends in a hash of its parameters), and what ``--only`` patterns match.
    """

    experiment: str
    params: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    after: tuple[str, ...] = ()  # experiments whose runs must all be done first (e.g. a grid before the final runs)

    def __post_init__(self) -> None:
        if not isinstance(self.experiment, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", self.experiment):
            raise ValueError(f"experiment must be a lower-case name like 'grid' or 'wrn-28-10'; "
                             f"got {self.experiment!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative int; got {self.seed!r}")
        try:
            json.dumps(dict(self.params), allow_nan=False)
        except (TypeError, ValueError) as e:
            raise ValueError(f"params of {self.experiment!r} must be JSON values (finite numbers, strings, lists); "
                             f"{e}") from None
        object.__setattr__(self, "params", dict(self.params))
        object.__setattr__(self, "after", tuple(self.after))

    @property
    def run_id(self) -> str:
        body = "_".join(f"{k}={_SAFE.sub('-', _fmt(v))}" for k, v in self.params.items())
        body = f"{body}_s={self.seed}" if body else f"s={self.seed}"
        if len(body) > 96:
            digest = hashlib.sha1(json.dumps(self.params, sort_keys=True).encode()).hexdigest()[:10]
            body = f"{body[:80]}-{digest}_s={self.seed}"
        return f"{self.experiment}/{body}"

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "experiment": self.experiment, "params": dict(self.params), "seed": self.seed,
                "after": list(self.after)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunSpec:
        return cls(d["experiment"], d.get("params", {}), int(d["seed"]), tuple(d.get("after", ())))


REQUIRED = ("plan", "execute", "DRY_RUN", "DATA", "flops")


def chapter_id(chapter: str) -> str:
    """The chapter id (``"08-avagrad"``) of ``chapter``, given as id or name; an unknown one is a clear error."""
    try:
        pkg = package_name(chapter)
    except ValueError as e:
        raise SweepConfigError(str(e)) from None
    return next(cid for cid, p in CHAPTER_PACKAGES.items() if p == pkg)


def chapter_module(chapter: str) -> ModuleType:
    """The chapter's sweep module ``effcourse.<subpackage>.sweep``, checked to define what a sweep needs."""
    cid = chapter_id(chapter)
    mod = importlib.import_module(f"effcourse.{CHAPTER_PACKAGES[cid]}.sweep")
    missing = [name for name in REQUIRED if not hasattr(mod, name)]
    if missing:
        raise TypeError(f"{mod.__name__} must define {list(REQUIRED)}; it lacks {missing}")
    return mod


def sweep_config(chapter: str, dry_run: bool = False) -> Config:
    """The ``full`` configuration that a sweep of ``chapter`` runs (with the module's ``DRY_RUN`` cuts if asked)."""
    cid = chapter_id(chapter)
    cfg = config(cid, "full")
    if dry_run:
        cuts: Mapping[str, Any] = chapter_module(cid).DRY_RUN
        cfg = cfg.replace(**cuts)
    return cfg


def config_hash(chapter: str, cfg: Mapping[str, Any], seed: int, dry_run: bool) -> str:
    """A short hash of what a sweep's results depend on: chapter, configuration, base seed, dry run."""
    blob = json.dumps({"chapter": chapter_id(chapter), "cfg": dict(cfg), "seed": seed, "dry_run": bool(dry_run)},
                      sort_keys=True, default=repr)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def check_plan(specs: Sequence[RunSpec], chapter: str) -> list[RunSpec]:
    """A plan must be a non-empty list of RunSpecs with distinct run ids."""
    specs = list(specs)
    if not specs or not all(isinstance(s, RunSpec) for s in specs):
        raise TypeError(f"{chapter}: plan() must return a non-empty list of RunSpec")
    seen: dict[str, RunSpec] = {}
    for s in specs:
        if s.run_id in seen:
            raise ValueError(f"{chapter}: two runs share the id {s.run_id!r}")
        seen[s.run_id] = s
    experiments = {s.experiment for s in specs}
    for s in specs:
        bad = [e for e in s.after if e not in experiments or e == s.experiment]
        if bad:
            raise ValueError(f"{chapter}: run {s.run_id!r} waits for {bad}, which are not other experiments of the "
                             f"plan ({sorted(experiments)})")
    return specs


def gpu_hours(flops: float, throughput: float) -> float:
    """Hours on one GPU that sustains ``throughput`` FLOP/s."""
    if not (isinstance(throughput, (int, float)) and math.isfinite(throughput) and throughput > 0):
        raise ValueError(f"throughput must be a positive number of FLOP/s; got {throughput!r}")
    return float(flops) / throughput / 3600.0


def training_flops(make_model: Callable[[], Any], input_shape: Sequence[int], samples: float,
                   backward: bool = True) -> float:
    """FLOPs of training on ``samples`` examples: one forward (and backward) pass counted on a batch of one.

    Counted by ``torch.utils.flop_counter`` on the meta device, so a WRN-28-10 costs nothing to count.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        model = make_model()
        x = torch.zeros(1, *input_shape)
    counter = FlopCounterMode(display=False)
    with counter:
        out = model(x)
        if backward:
            out.float().sum().backward()
    return float(counter.get_total_flops()) * float(samples)

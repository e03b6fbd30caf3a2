"""What one run of a sweep sees: its spec, configuration, device and folder, and checkpoints that survive a kill.

A checkpoint holds whatever state the run hands over (``state_dict()`` of models, optimizers, schedulers ...) plus
every random stream (Python, NumPy, torch CPU and CUDA, and the generators the run asked the context for), written
atomically (a temporary file, then a rename), so that a run killed at any moment resumes from its last checkpoint
and continues exactly as it would have.
"""

from __future__ import annotations

import os
import random
import signal
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.config import Config
from ..core.train import History
from .spec import RunSpec

__all__ = ["FitCheckpoint", "KILL_ENV", "RunContext", "StepCheckpoint"]

# Test hook: after this many checkpoint writes the process kills itself with SIGKILL (a real, unclean death), so
# that kill-and-resume is tested deterministically.  Never set outside tests.
KILL_ENV = "EFFCOURSE_SWEEP_KILL_AFTER"


def _rng_state(generators: Mapping[str, torch.Generator]) -> dict[str, Any]:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "generators": {k: g.get_state() for k, g in generators.items()}}


def _set_rng_state(state: Mapping[str, Any], generators: Mapping[str, torch.Generator]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    for k, s in state["generators"].items():
        if k in generators:
            generators[k].set_state(s)


@dataclass
class RunContext:
    """The world of one run: ``spec``, ``cfg`` (the sweep's configuration), ``device``, its folder ``dir``."""

    spec: RunSpec
    cfg: Config
    device: torch.device
    dir: Path
    dry_run: bool = False
    base_seed: int = 0  # the sweep's base seed (the notebook's SEED), for streams shared by runs (a data split)
    results: Any = None  # the sweep's Results: the finished runs this one waits for (``spec.after``)
    generators: dict[str, torch.Generator] = field(default_factory=dict)
    saves: int = 0

    @property
    def seed(self) -> int:
        return self.spec.seed

    @property
    def params(self) -> Mapping[str, Any]:
        return self.spec.params

    def generator(self, name: str = "main", offset: int = 0) -> torch.Generator:
        """A CPU generator seeded with ``seed + offset``, saved and restored with every checkpoint."""
        if name not in self.generators:
            self.generators[name] = torch.Generator().manual_seed(self.seed + offset)
        return self.generators[name]

    # ------------------------------------------------------------------ checkpoints
    def _path(self, name: str) -> Path:
        if not name.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"checkpoint name must be letters, digits, '-' and '_'; got {name!r}")
        return self.dir / f"checkpoint-{name}.pt"

    def save(self, name: str, step: int, **state: Any) -> None:
        """Write checkpoint ``name`` at ``step``: ``state`` (objects with ``state_dict`` are saved as theirs) and
        every random stream."""
        blob = {"step": int(step), "rng": _rng_state(self.generators),
                "state": {k: (v.state_dict() if hasattr(v, "state_dict") else v) for k, v in state.items()}}
        path = self._path(name)
        tmp = path.with_suffix(".tmp")
        torch.save(blob, tmp)
        os.replace(tmp, path)
        self.saves += 1
        kill_after = os.environ.get(KILL_ENV)
        if kill_after and self.saves >= int(kill_after):
            os.kill(os.getpid(), signal.SIGKILL)

    def load(self, name: str, **into: Any) -> tuple[int, dict[str, Any]] | None:
        """Resume from checkpoint ``name``: restore the random streams, load the saved state into the objects
        passed as ``into`` (by ``load_state_dict``), and return ``(step, state)``; ``None`` if there is none."""
        path = self._path(name)
        if not path.exists():
            return None
        blob = torch.load(path, map_location="cpu", weights_only=False)
        _set_rng_state(blob["rng"], self.generators)
        for k, obj in into.items():
            if k not in blob["state"]:
                raise KeyError(f"checkpoint {path} holds no {k!r}; it holds {sorted(blob['state'])}")
            if obj is not None:
                obj.load_state_dict(blob["state"][k])
        return blob["step"], blob["state"]

    def step_checkpoint(self, name: str, every: int = 1) -> StepCheckpoint:
        """Checkpoint ``name`` for a step loop of the library's own (``save(step, **state)``, ``load()`` ->
        ``(step, state)`` or ``None``, saved every ``every`` steps): what the MeZO and blockwise loops take."""
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ValueError(f"every must be a positive int; got {every!r}")
        return StepCheckpoint(self, name, every)

    def fit_checkpoint(self, name: str = "fit", every: int = 1, **extra: Any) -> FitCheckpoint:
        """A checkpoint for :func:`effcourse.core.train.fit` (``fit(..., checkpoint=ctx.fit_checkpoint())``):
        saved every ``every`` epochs with model, optimizers, scheduler, the batch generator, the history and the
        ``extra`` objects (anything with ``state_dict``/``load_state_dict``)."""
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive int; got {every!r}")
        return FitCheckpoint(self, name, every, extra)


@dataclass
class StepCheckpoint:
    """One named checkpoint of a run, for loops that save ``(step, state)`` every ``every`` steps."""

    ctx: RunContext
    name: str
    every: int = 1

    def save(self, step: int, **state: Any) -> None:
        self.ctx.save(self.name, step, **state)

    def load(self) -> tuple[int, dict[str, Any]] | None:
        return self.ctx.load(self.name)


@dataclass
class FitCheckpoint:
    """Saves and restores the state of :func:`effcourse.core.train.fit` at epoch boundaries."""

    ctx: RunContext
    name: str
    every: int
    extra: dict[str, Any]

    def restore(self, model, optimizers, scheduler, generator) -> tuple[int, int, History, bool] | None:
        """``(epochs, steps, history, finished)`` of the saved state, loaded into the objects."""
        got = self.ctx.load(self.name)
        if got is None:
            return None
        step, st = got
        model.load_state_dict(st["model"])
        for o, s in zip(optimizers, st["optimizers"]):
            o.load_state_dict(s)
        if scheduler is not None and st["scheduler"] is not None:
            scheduler.load_state_dict(st["scheduler"])
        if generator is not None and st["generator"] is not None:
            generator.set_state(st["generator"])
        for k, obj in self.extra.items():
            obj.load_state_dict(st["extra"][k])
        return st["epoch"], step, History(**st["history"]), bool(st["finished"])

    def save(self, epoch: int, step: int, model, optimizers, scheduler, generator, history: History,
             last: bool) -> None:
        if epoch % self.every and not last:
            return
        self.ctx.save(self.name, step, epoch=epoch, model=model.state_dict(),
                      optimizers=[o.state_dict() for o in optimizers],
                      scheduler=scheduler.state_dict() if scheduler is not None else None,
                      generator=generator.get_state() if generator is not None else None,
                      history=asdict(history), finished=bool(last),
                      extra={k: v.state_dict() for k, v in self.extra.items()})

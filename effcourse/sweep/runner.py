"""Plan, run and inspect a chapter's ``full`` sweep; load its results for the notebook."""

from __future__ import annotations

import fnmatch
import os
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.config import Config
from ..core.numerics import Numerics, resolve_deterministic, training_numerics
from . import synthetic
from .spec import (
    RunSpec,
    SweepConfigError,
    chapter_id,
    chapter_module,
    check_plan,
    config_hash,
    gpu_hours,
    sweep_config,
)
from .store import Results, Store, SweepResultsMissing

__all__ = ["Sweep", "RESULTS_ENV", "DRY_RUN_ENV", "H100_FLOPS", "load_results", "execute_one", "select"]

RESULTS_ENV = "EFFCOURSE_RESULTS"
DRY_RUN_ENV = "EFFCOURSE_DRY_RUN"
# Sustained training throughput assumed for "one H100-class GPU" when a plan turns FLOPs into GPU-hours: ~10 % of
# its dense bf16 peak, what small-image CNN training sustains in practice.  `make gpu-check` measures the figure of
# a real GPU, and `sweep plan --throughput` takes it.
H100_FLOPS = 1e14


def select(specs: Sequence[RunSpec], only: str | None, chapter: str) -> list[RunSpec]:
    """The runs whose id matches the glob ``only`` (all when ``None``); a pattern matching nothing is an error."""
    if only is None:
        return list(specs)
    picked = [s for s in specs if fnmatch.fnmatchcase(s.run_id, only) or fnmatch.fnmatchcase(s.experiment, only)]
    if not picked:
        exps = sorted({s.experiment for s in specs})
        raise SweepConfigError(f"--only {only!r} matches no run of {chapter}; its experiments are {exps} and run ids "
                               f"look like {specs[0].run_id!r} (a glob such as '{exps[0]}/*')")
    return picked


@dataclass
class Sweep:
    """One chapter's sweep: its configuration (``full``, cut by ``DRY_RUN`` when ``dry_run``), base seed and runs."""

    chapter: str
    seed: int = 0
    dry_run: bool = False

    def __post_init__(self) -> None:
        self.chapter = chapter_id(self.chapter)
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise SweepConfigError(f"seed must be a non-negative int; got {self.seed!r}")
        self.module = chapter_module(self.chapter)
        self.cfg: Config = sweep_config(self.chapter, self.dry_run)
        self.specs = check_plan(self.module.plan(self.cfg, self.seed), self.chapter)
        self.hash = config_hash(self.chapter, self.cfg, self.seed, self.dry_run)

    @property
    def device(self) -> str | None:
        """The device every run of this chapter uses whatever is available (``DEVICE``), or ``None``."""
        dev = getattr(self.module, "DEVICE", None)
        if dev not in (None, "cpu"):
            raise TypeError(f"{self.module.__name__}.DEVICE must be 'cpu' or absent; got {dev!r}")
        return dev

    @property
    def data(self) -> tuple[str, ...]:
        return tuple(self.module.DATA)

    def flops(self, spec: RunSpec) -> float:
        return float(self.module.flops(spec, self.cfg))

    def gpu_hours(self, specs: Sequence[RunSpec] | None = None, throughput: float = H100_FLOPS) -> float:
        return sum(gpu_hours(self.flops(s), throughput) for s in (self.specs if specs is None else specs))

    def command(self, out: str | os.PathLike) -> str:
        """The shell command that produces this sweep's results in ``out``."""
        return (f"python -m effcourse.sweep run {self.chapter} --out {out}"
                + (f" --seed {self.seed}" if self.seed else "") + (" --dry-run" if self.dry_run else ""))


def load_results(chapter: str, out: str | os.PathLike | None = None, seed: int = 0, dry_run: bool = False) -> Results:
    """The finished runs of ``chapter``'s sweep in ``out`` (default ``$EFFCOURSE_RESULTS``), for a notebook at
    ``full``; missing results raise :class:`SweepResultsMissing` naming the exact ``sweep run`` command."""
    sw = Sweep(chapter, seed, dry_run)
    if out is None:
        out = os.environ.get(RESULTS_ENV)
        if not out:
            raise SweepResultsMissing(
                f"{sw.chapter} at scale 'full' reads its experiments from a sweep, and {RESULTS_ENV} is not set. "
                f"Run the sweep (hours to days on GPUs; resumable), then point {RESULTS_ENV} at its folder:\n"
                f"    {sw.command('results')}\n    {RESULTS_ENV}=results")
    store = Store(Path(out), sw.chapter)
    m = store.manifest()
    if m is None:
        raise SweepResultsMissing(f"no sweep of {sw.chapter} in {store.out}: run\n    {sw.command(out)}")
    if m["config_hash"] != sw.hash:
        raise SweepResultsMissing(
            f"{store.root} holds a sweep of another configuration (config hash {m['config_hash']}, base seed "
            f"{m['seed']}, dry_run={m['dry_run']}); this notebook needs {sw.hash} (base seed {seed}, "
            f"dry_run={dry_run}): run\n    {sw.command(out)}")
    states = store.states(sw.specs)
    missing = [s for k in ("running", "failed", "interrupted", "pending") for s in states[k]]
    if missing:
        counts = ", ".join(f"{len(states[k])} {k}" for k in ("done", "running", "failed", "interrupted", "pending")
                           if states[k])
        retry = " --retry-failed" if states["failed"] else ""
        flags = Numerics(**m.get("numerics", {})).flags()  # resumed with the numerics its runs were made with
        raise SweepResultsMissing(f"the sweep of {sw.chapter} in {store.out} is not finished ({counts}; first "
                                  f"missing: {missing[0].run_id}): run\n    {sw.command(out)}{flags}{retry}")
    return Results(store, sw.specs)


def execute_one(chapter: str, out: str, spec_dict: dict[str, Any], seed: int, dry_run: bool, device: str,
                threads: int, keep_checkpoints: bool, data: str | None,
                numerics: dict[str, Any] | None = None) -> tuple[str, str, str]:
    """Run one spec in this process (a local worker or a Ray task): ``(run_id, "done" | "failed", message)``.

    ``numerics`` (``{"precision": "bf16", "channels_last": True}``) sets the training steps' precision and memory
    format (:func:`effcourse.core.numerics.training_numerics`); default fp32, contiguous.

    Never raises for a failure of the run itself: the error and its traceback go to the run's ``error.json``.
    """
    before = os.environ.get("EFFCOURSE_DATA")
    if data:  # the loaders read $EFFCOURSE_DATA; restored afterwards, as this may be the caller's own process
        os.environ["EFFCOURSE_DATA"] = data
    try:
        return _execute_one(chapter, out, spec_dict, seed, dry_run, device, threads, keep_checkpoints,
                            numerics or {})
    finally:
        if before is None:
            os.environ.pop("EFFCOURSE_DATA", None)
        else:
            os.environ["EFFCOURSE_DATA"] = before


def _execute_one(chapter: str, out: str, spec_dict: dict[str, Any], seed: int, dry_run: bool, device: str,
                 threads: int, keep_checkpoints: bool, numerics: dict[str, Any]) -> tuple[str, str, str]:
    import torch

    from ..core.harness import resolve_device, seed_everything
    from .context import RunContext

    sw = Sweep(chapter, seed, dry_run)
    spec = RunSpec.from_dict(spec_dict)
    store = Store(Path(out), chapter)
    dev = resolve_device(sw.device or device)
    torch.set_num_threads(threads)
    store.mark_running(spec, str(dev))
    t0 = time.perf_counter()
    try:
        # deterministic kernels for dry runs and on a CPU; on a GPU a run is full scale: cuDNN autotuning and TF32
        # unless $EFFCOURSE_DETERMINISTIC says otherwise
        seed_everything(spec.seed, deterministic=dry_run or dev.type == "cpu" or resolve_deterministic(None, "full"))
        ctx = RunContext(spec, sw.cfg, dev, store.run_dir(spec), dry_run, base_seed=seed,
                         results=Results(store, sw.specs))
        resumed = any(ctx.dir.glob("checkpoint-*.pt"))
        with training_numerics(**numerics):
            result = sw.module.execute(spec, ctx)
        if not isinstance(result, dict):
            raise TypeError(f"{sw.module.__name__}.execute must return a dict; got {type(result).__name__}")
        info = {"seconds": round(time.perf_counter() - t0, 2), "device": str(dev), "resumed": resumed,
                "torch": torch.__version__, "numerics": dict(numerics),
                **({"cuda_peak_mb": round(torch.cuda.max_memory_allocated(dev) / 2**20, 1)}
                   if dev.type == "cuda" else {})}
        store.finish(spec, result, info, keep_checkpoints)
        return spec.run_id, "done", f"{info['seconds']:.1f} s"
    except Exception as e:  # noqa: BLE001 - a failed run is recorded and the sweep goes on
        store.fail(spec, f"{type(e).__name__}: {e}", traceback.format_exc())
        return spec.run_id, "failed", f"{type(e).__name__}: {e}"


def ready(sw: Sweep, store: Store, todo: Sequence[RunSpec]) -> tuple[list[RunSpec], list[RunSpec]]:
    """``(runnable, waiting)``: the runs whose ``after`` experiments are all done, and the others."""
    states = store.states(sw.specs)
    done = {s.run_id for s in states["done"]}
    unfinished = {s.experiment for s in sw.specs if s.run_id not in done}
    runnable = [s for s in todo if not set(s.after) & unfinished]
    return runnable, [s for s in todo if set(s.after) & unfinished]


def prepare_data(sw: Sweep, out: Path, data: str | None) -> str | None:
    """The data folder the runs read: ``data``/``$EFFCOURSE_DATA`` checked file by file, or for a dry run without
    one, synthetic files in the real formats written under the sweep's folder."""
    if not sw.data:
        return data
    if sw.dry_run and data is None and not os.environ.get("EFFCOURSE_DATA"):
        data = str(synthetic.write(out / sw.chapter / "synthetic-data", list(sw.data), seed=sw.seed))
    root = data or os.environ.get("EFFCOURSE_DATA")
    for name in sw.data:
        try:
            synthetic.check(name, root)
        except (FileNotFoundError, ValueError) as e:
            raise SweepConfigError(f"{sw.chapter} needs data set {name!r}: {e}") from None
    return root

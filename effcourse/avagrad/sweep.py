"""Chapter 8 at the thesis's scale as a sweep (``python -m effcourse.sweep run 08-avagrad``; Savarese 2025, 6.3).

Table 6.1's CIFAR-10 protocol in three experiments:

- ``grid``: every adaptive method trains a WRN-28-4 for each of the 21 x 21 (lr, eps) settings on the training
  split minus a random 5,000-image validation split, scored on that split (Figs. 6.1-6.2 are Adam's and AvaGrad's);
- ``tune-sgd``: SGD (Nesterov momentum 0.9) over the same 21 learning rates;
- ``final``: each method's best setting trains a WRN-28-10 on the whole training set, scored on the test set, three
  seeds (waits for the two experiments above).

Seeds follow the notebook's: the validation split ``run.seeds(1, offset=30)``, grid seeds ``offset=100``, final seeds
``offset=200``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ..core.config import Config
from ..core.data import Split, dataset, holdout
from ..core.harness import experiment_seeds
from ..core.models import WideResNet
from ..core.train import fit
from ..sweep import Results, RunContext, RunSpec, training_flops
from . import tuning
from .pitfall import drop_constant_columns
from .zoo import OPTIMIZERS, optimizer_factory

__all__ = ["DATA", "DRY_RUN", "compare", "execute", "flops", "grid", "plan"]

DATA = ("cifar10",)
# Two lrs and one eps per method, one epoch (two for SGD's tuning: the kill-and-resume test needs two checkpoints)
# on 8 of the synthetic training images (one forward/backward per run, 1 validation image for the grid); the
# networks stay WRN-28-4 and WRN-28-10.
DRY_RUN = dict(grid_eps=[1.0], grid_lrs=[1e-3, 1e-1], grid_epochs=1, compare_epochs=1, n_compare_seeds=1,
               compare_lrs=[1e-3, 1e-1], lr_milestones=[1], subset=8, counter_steps=2_000, counter_runs=2,
               limit_steps=50, n_limit_seeds=2)
CIFAR10_TRAIN, CIFAR10_TEST = 50_000, 10_000
ADAPTIVE = tuple(m for m in OPTIMIZERS if m != "sgd")


def _seeds(cfg: Config, seed: int) -> dict[str, list[int]]:
    return {"split": experiment_seeds(seed, 1, 30), "grid": experiment_seeds(seed, cfg.n_grid_seeds, 100),
            "final": experiment_seeds(seed, cfg.n_compare_seeds, 200)}


def plan(cfg: Config, seed: int) -> list[RunSpec]:
    """The runs of Table 6.1's CIFAR-10 column: grids for every adaptive method, SGD's lr sweep, final trainings."""
    s = _seeds(cfg, seed)
    methods = cfg.grid_methods
    specs = [RunSpec("grid", {"method": m, "eps": e, "lr": lr}, gs)
             for m in methods for e in cfg.grid_eps for lr in cfg.grid_lrs for gs in s["grid"]]
    specs += [RunSpec("tune-sgd", {"method": "sgd", "lr": lr}, s["grid"][0]) for lr in cfg.compare_lrs]
    specs += [RunSpec("final", {"method": m}, fs, after=("grid", "tune-sgd"))
              for m in ("sgd", *methods) for fs in s["final"]]
    return specs


def _data(cfg: Config, base_seed: int, device: torch.device) -> tuple[Split, Split]:
    """(validation split for tuning, the whole split for the final runs), cut to ``cfg.subset`` images if set."""
    base = dataset(cfg.dataset, flat=cfg.model == "mlp", device=device)
    if cfg.subset:
        k = cfg.subset
        base = Split(base.x_train[:k], base.y_train[:k], base.x_test[:k], base.y_test[:k], base.num_classes)
    val = drop_constant_columns(holdout(base, cfg.val_fraction, seed=_seeds(cfg, base_seed)["split"][0]))
    return val, base


def _train(make_model, make_opt, data: Split, ctx: RunContext, epochs: int, cfg: Config) -> dict[str, Any]:
    torch.manual_seed(ctx.seed)  # the initialization (every cell of a grid seed starts from the same weights)
    model = make_model()
    opt = make_opt(list(model.parameters()))
    hist = fit(model, opt, data, generator=ctx.generator(), checkpoint=ctx.fit_checkpoint("train"),
               **tuning.fit_kwargs(cfg, epochs))
    return {"err": hist.final_err, "diverged": hist.diverged, "train_loss": hist.train_loss, "test_err": hist.test_err}


def execute(spec: RunSpec, ctx: RunContext) -> dict[str, Any]:
    """Train one run: a grid cell or SGD's lr on the validation split, or a final WRN-28-10 on the test set."""
    cfg, p = ctx.cfg, spec.params
    val, base = _data(cfg, ctx.base_seed, ctx.device)
    depth, widen = 28, (cfg.widen if spec.experiment == "final" else 4)

    def make_model():
        return WideResNet(depth, widen, base.num_classes).to(ctx.device)

    if spec.experiment == "grid":
        return _train(make_model, lambda ps: optimizer_factory(p["method"], cfg.weight_decay)(ps, p["lr"], p["eps"]),
                      val, ctx, cfg.grid_epochs, cfg)
    if spec.experiment == "tune-sgd":
        return _train(make_model, lambda ps: optimizer_factory("sgd", cfg.weight_decay)(ps, p["lr"], None),
                      val, ctx, cfg.grid_epochs + int(ctx.dry_run), cfg)
    if spec.experiment == "final":
        lr, eps = chosen_setting(ctx.results, cfg, p["method"])
        out = _train(make_model, lambda ps: optimizer_factory(p["method"], cfg.weight_decay)(ps, lr, eps),
                     base, ctx, cfg.compare_epochs, cfg)
        return {**out, "lr": lr, "eps": eps}
    raise ValueError(f"08-avagrad has no experiment {spec.experiment!r}; experiments: grid, tune-sgd, final")


# ---------------------------------------------------------------------------------------------- what the notebook reads
def grid(results: Results, cfg: Config, method: str) -> np.ndarray:
    """``err[i, j]``: validation error of ``method`` at ``cfg.grid_eps[i]``, ``cfg.grid_lrs[j]`` (mean over grid
    seeds; a diverged run counts as 1), as :func:`effcourse.avagrad.tuning.mean_grid` returns it inline."""
    if method not in cfg.grid_methods:
        raise ValueError(f"method must be one of the grid's methods {cfg.grid_methods}; got {method!r}")
    err = np.ones((len(cfg.grid_eps), len(cfg.grid_lrs)))
    for i, e in enumerate(cfg.grid_eps):
        for j, lr in enumerate(cfg.grid_lrs):
            runs = results.where("grid", method=method, eps=e, lr=lr)
            err[i, j] = float(np.mean([r["err"] for _, r in runs]))
    return err


def chosen_setting(results: Results, cfg: Config, method: str) -> tuple[float, float | None]:
    """The (lr, eps) a method's final runs use: the grid's best cell, or SGD's best lr (Table 6.1's protocol)."""
    if method == "sgd":
        errs = np.array([[results.one("tune-sgd", method="sgd", lr=lr)["err"] for lr in cfg.compare_lrs]])
        return float(tuning.best_lr_per_eps(errs, cfg.compare_lrs)[0]), None
    return tuning.best_cell(grid(results, cfg, method), cfg.grid_lrs, cfg.grid_eps)


def compare(results: Results, cfg: Config) -> tuple[dict[str, tuple[float, float | None]], dict[str, np.ndarray]]:
    """``(chosen, test_err)`` over the final runs, as :func:`effcourse.avagrad.tuning.tune_and_test` returns them."""
    methods = ("sgd", *cfg.grid_methods)
    chosen = {m: chosen_setting(results, cfg, m) for m in methods}
    test_err = {m: np.array([r["err"] for _, r in results.where("final", method=m)]) for m in methods}
    return chosen, test_err


# ---------------------------------------------------------------------------------------------- cost
@functools.cache
def _sample_flops(widen: int) -> float:
    return training_flops(lambda: WideResNet(28, widen, 10), (3, 32, 32), 1)


def flops(spec: RunSpec, cfg: Mapping[str, Any]) -> float:
    """Training FLOPs of one run: epochs x training images (forward + backward), plus the evaluations."""
    final = spec.experiment == "final"
    widen = cfg["widen"] if final else 4
    n = cfg["subset"] or CIFAR10_TRAIN
    n_train = n if final else n * (1 - cfg["val_fraction"])
    n_eval = (cfg["subset"] or CIFAR10_TEST) if final else n * cfg["val_fraction"]
    epochs = cfg["compare_epochs"] if final else cfg["grid_epochs"]
    per = _sample_flops(widen)
    return epochs * (n_train * per + n_eval * per / 3)  # an evaluation is a forward pass, ~1/3 of a training step

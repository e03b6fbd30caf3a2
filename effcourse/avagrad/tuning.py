"""Hyperparameter grids over (learning rate, epsilon) and what they say about tuning cost (Savarese 2025, 6.4).

A grid ``err[i, j]`` holds the validation error with ``eps[i]`` and ``lr[j]``.  Separability (Figs. 6.1-6.2) is
read off the best learning rate per epsilon; tuning cost (Figs. 6.5-6.6) off how many grid cells are near-optimal.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..core.data import Split, augmentation
from ..core.train import fit

__all__ = [
    "best_cell",
    "best_lr_per_eps",
    "error_at",
    "expected_random_search_trials",
    "fit_kwargs",
    "grid_sweep",
    "log10_spread",
    "mean_grid",
    "train_once",
    "transfer_gaps",
    "tune_and_test",
]

OptimizerFactory = Callable[[list[torch.nn.Parameter], float, float | None], torch.optim.Optimizer]


def fit_kwargs(cfg: Mapping[str, Any], epochs: int) -> dict[str, Any]:
    """The training protocol of a configuration as keyword arguments of ``fit``.

    Batch size, the data set's augmentation (CIFAR-10's crops and flips) and, when ``cfg["lr_milestones"]`` is
    non-empty, the thesis's step schedule (lr / 5 at each milestone).
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int; got {epochs!r}")
    milestones = list(cfg["lr_milestones"])
    scheduler = (functools.partial(torch.optim.lr_scheduler.MultiStepLR, milestones=milestones, gamma=0.2)
                 if milestones else None)
    return dict(epochs=epochs, batch_size=cfg["batch_size"], augment=augmentation(cfg["dataset"]),
                scheduler=scheduler)


def grid_sweep(make_model: Callable[[], nn.Module], make_optimizer: OptimizerFactory, data: Split,
               lrs: Sequence[float], epss: Sequence[float], seed: int = 0, progress: bool | str = False,
               **fit_kwargs) -> np.ndarray:
    """Validation error (in [0, 1]) for every (eps, lr) pair; diverged runs count as error 1.

    ``fit_kwargs`` go to :func:`effcourse.core.train.fit` (``epochs``, ``batch_size``, ``scheduler``, ``augment`` ...).
    Every cell starts from the same initialization and sees the same minibatch order (both seeded by ``seed``), so
    differences between cells come from the hyperparameters alone.
    """
    lrs, epss = list(lrs), list(epss)
    if not lrs or not epss:
        raise ValueError("lrs and epss must be non-empty")
    err = np.ones((len(epss), len(lrs)))
    cells = [(i, j) for i in range(len(epss)) for j in range(len(lrs))]
    it = cells
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(cells, desc=progress if isinstance(progress, str) else "grid", leave=False)
    for i, j in it:
        err[i, j] = train_once(make_model, lambda ps, i=i, j=j: make_optimizer(ps, lrs[j], epss[i]), data, seed,
                               **fit_kwargs)
    return err


def mean_grid(make_model: Callable[[], nn.Module], make_optimizer: OptimizerFactory, data: Split,
              lrs: Sequence[float], epss: Sequence[float], seeds: Sequence[int], progress: str = "",
              **fit_kwargs) -> np.ndarray:
    """:func:`grid_sweep` averaged over ``seeds`` (each seed: its own initialization and minibatch order)."""
    if not seeds:
        raise ValueError("seeds must be non-empty")
    return np.mean([grid_sweep(make_model, make_optimizer, data, lrs, epss, seed=s,
                               progress=f"{progress} seed {s}" if progress else False, **fit_kwargs)
                    for s in seeds], axis=0)


def train_once(make_model: Callable[[], nn.Module], make_optimizer: Callable[[list], torch.optim.Optimizer],
               data: Split, seed: int = 0, **fit_kwargs) -> float:
    """Final test error of one seeded training run (1.0 if it diverged)."""
    torch.manual_seed(seed)
    model = make_model()
    opt = make_optimizer(list(model.parameters()))
    hist = fit(model, opt, data, generator=torch.Generator().manual_seed(seed), **fit_kwargs)
    return hist.final_err if math.isfinite(hist.final_err) else 1.0


def best_lr_per_eps(err: np.ndarray, lrs: Sequence[float], smooth: bool = True) -> np.ndarray:
    """The best learning rate for each epsilon (row).

    With ``smooth``, each row is first averaged with its neighbours along lr (weights 1/4, 1/2, 1/4): on a small
    validation set one image is 0.2 points, and a flat valley would otherwise pick its argmin at random.
    """
    e = np.asarray(err, dtype=float)
    if smooth and e.shape[1] >= 3:
        pad = np.pad(e, ((0, 0), (1, 1)), mode="edge")
        e = 0.25 * pad[:, :-2] + 0.5 * pad[:, 1:-1] + 0.25 * pad[:, 2:]
    return np.asarray(lrs, dtype=float)[e.argmin(axis=1)]


def best_cell(err: np.ndarray, lrs: Sequence[float], epss: Sequence[float]) -> tuple[float, float]:
    """The (lr, eps) of the grid's lowest error (no smoothing)."""
    i, j = np.unravel_index(np.argmin(err), np.shape(err))
    return lrs[j], epss[i]


def error_at(err: np.ndarray, lrs: Sequence[float], chosen: Sequence[float]) -> np.ndarray:
    """Each row's error at the learning rate ``chosen[row]`` (one of ``lrs``)."""
    lrs = list(lrs)
    missing = [lr for lr in chosen if lr not in lrs]
    if missing or len(chosen) != len(err):
        raise ValueError(f"chosen must hold one of lrs per row of err; got {list(chosen)} for {len(err)} rows")
    return np.array([err[i, lrs.index(lr)] for i, lr in enumerate(chosen)])


def log10_spread(values: Sequence[float]) -> float:
    """max - min of log10(values): how many decades a set of best learning rates spans."""
    v = np.log10(np.asarray(values, dtype=float))
    return float(v.max() - v.min())


def transfer_gaps(err: np.ndarray, lrs: Sequence[float] | None = None, smooth: bool = True) -> np.ndarray:
    """For each eps used for tuning: the worst excess error, over all other eps, of reusing that eps's best lr.

    ``gaps[i] = max_k (err[k, j_i] - min err[k])`` where ``j_i`` is row i's best lr column.  Small gaps mean the
    learning rate, once tuned, can be kept whatever eps is (the practical meaning of separability).
    """
    e = np.asarray(err, dtype=float)
    cols = np.arange(e.shape[1])
    best = best_lr_per_eps(e, cols, smooth=smooth).astype(int)
    return np.array([np.max(e[:, j] - e.min(axis=1)) for j in best])


def expected_random_search_trials(err: np.ndarray, tol: float) -> float:
    """Expected number of uniform draws without replacement from the grid until one is within ``tol`` of its best.

    With K good cells among N this is (N + 1) / (K + 1) (the expected position of the first good card in a
    shuffled deck).
    """
    e = np.asarray(err, dtype=float).ravel()
    good = int(np.sum(e <= e.min() + tol))
    return (e.size + 1) / (good + 1)


def tune_and_test(methods: Sequence[str], factory: Callable[[str], OptimizerFactory],
                  make_model: Callable[[], nn.Module], make_final_model: Callable[[], nn.Module], val: Split,
                  data: Split, lrs: Sequence[float], seeds: Sequence[int], tune_seed: int = 0,
                  tuned: Mapping[str, tuple[float, float | None]] | None = None,
                  **fit_kwargs) -> tuple[dict[str, tuple[float, float | None]], dict[str, np.ndarray]]:
    """The protocol of Table 6.1: tune each method's lr on ``val``, then train on ``data`` from every seed.

    Methods in ``tuned`` keep their given ``(lr, eps)`` (e.g. the best cell of a full grid); the others sweep ``lrs``
    at their default eps (one seed, ``tune_seed``).  ``factory(name)`` gives ``(params, lr, eps) -> optimizer``.
    Returns ``(chosen, test_err)``: the ``(lr, eps)`` per method and its test errors over ``seeds``.
    """
    if not seeds:
        raise ValueError("seeds must be non-empty")
    tuned = dict(tuned or {})
    chosen: dict[str, tuple[float, float | None]] = {}
    for m in methods:
        if m in tuned:
            chosen[m] = tuned[m]
        else:
            errs = grid_sweep(make_model, factory(m), val, lrs, [None], seed=tune_seed, progress=m, **fit_kwargs)
            chosen[m] = (float(best_lr_per_eps(errs, lrs)[0]), None)
    test_err = {m: np.array([train_once(make_final_model, lambda ps, m=m: factory(m)(ps, *chosen[m]), data,
                                        seed=s, **fit_kwargs) for s in seeds]) for m in methods}
    return chosen, test_err

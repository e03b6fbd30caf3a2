"""Hyperparameter grids over (learning rate, epsilon) and what they say about tuning cost (Savarese 2025, 6.4).

A grid ``err[i, j]`` holds the validation error with ``eps[i]`` and ``lr[j]``.  Separability (Figs. 6.1-6.2) is
read off the best learning rate per epsilon; tuning cost (Figs. 6.5-6.6) off how many grid cells are near-optimal.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..core.data import Split
from ..core.train import fit

__all__ = [
    "best_lr_per_eps",
    "expected_random_search_trials",
    "grid_sweep",
    "log10_spread",
    "train_once",
    "transfer_gaps",
]

OptimizerFactory = Callable[[list[torch.nn.Parameter], float, float], torch.optim.Optimizer]


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

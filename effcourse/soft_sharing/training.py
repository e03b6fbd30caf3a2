"""How the thesis trains its models, as thin wrappers around the library's one loop (:func:`effcourse.core.train.fit`).

* :func:`train_classifier`: the CIFAR recipe of Sec. 3.3.3 (SGD Nesterov, step decay, no weight decay on the
  coefficients), optionally with the recurrence regularizer of eq. 3.19.
* :func:`train_curriculum`: the shortest-path curriculum of Sec. 3.4.3 (Adam, one :func:`fit` per phase, the
  optimizer state carried across phases), returning the F1 score (eq. 3.20, corrected) at the end of each phase.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..core.data import Split
from ..core.train import History, fit
from .shortest_path import PathCNN, Phase, f1_score
from .similarity import recurrence_regularizer
from .templates import coefficient_param_groups, sharing_groups, stack_coefficients

__all__ = ["train_classifier", "train_curriculum"]


def train_classifier(model: nn.Module, data: Split, epochs: int, lr: float = 0.1, weight_decay: float = 5e-4,
                     batch_size: int = 128, milestones: Sequence[float] = (0.3, 0.6, 0.8), gamma: float = 0.2,
                     lam: float = 0.0, generator: torch.Generator | None = None,
                     augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
                     progress: bool | str = False, checkpoint: Any | None = None) -> History:
    """The thesis's CIFAR recipe (Sec. 3.3.3): SGD with Nesterov momentum 0.9, the learning rate times ``gamma``
    at the given fractions of ``epochs`` (0.3, 0.6, 0.8 of 200 = epochs 60, 120, 160), weight decay on everything
    but the coefficients, and ``lam`` times the recurrence regularizer (eq. 3.19) of every sharing group.
    The test set is evaluated once, after the last epoch. ``checkpoint`` (a sweep's ``ctx.fit_checkpoint()``) makes
    the run resumable: :func:`fit` saves every epoch and a restarted run continues where it stopped.
    """
    if lam < 0:
        raise ValueError(f"lam must be >= 0; got {lam!r}")
    opt = torch.optim.SGD(coefficient_param_groups(model, weight_decay), lr=lr, momentum=0.9, nesterov=True)
    steps = sorted({max(1, int(round(epochs * f))) for f in milestones})
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, steps, gamma)
    groups = sharing_groups(model)
    reg = None
    if lam > 0:
        if not groups:
            raise ValueError("lam > 0 needs a model with soft-shared layers")

        def reg() -> torch.Tensor:
            return sum(recurrence_regularizer(stack_coefficients(g), lam) for g in groups)
    return fit(model, opt, data, epochs, batch_size, generator=generator, scheduler=sched, augment=augment,
               regularizer=reg, eval_every=epochs, progress=progress, checkpoint=checkpoint)


def _bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, target)


def train_curriculum(net: PathCNN, phases: Sequence[Phase], lr: float = 0.01, epochs: int = 50,
                     batch_size: int = 64, lam: float = 0.0, generator: torch.Generator | None = None,
                     progress: bool | str = False, checkpoint: Callable[[int], Any] | None = None) -> list[float]:
    """Train ``net`` through the curriculum ``phases`` in order (Sec. 3.4.3) and return each phase's test F1.

    One Adam optimizer at a fixed learning rate ``lr`` lives through all phases; each phase is ``epochs`` passes of
    :func:`fit` over its grids with the per-cell logistic loss, plus ``lam`` times the recurrence regularizer
    (eq. 3.19) when ``lam > 0`` (a soft-shared ``net``). After a phase, F1 (eq. 3.20 with its factor 2) is measured
    on the phase's held-out grids, in eval mode.

    ``checkpoint(i)`` (a sweep's ``lambda i: ctx.fit_checkpoint(f"phase{i}")``) gives phase ``i``'s checkpoint: a
    restarted run reloads each finished phase's final state (so its F1 is measured again on the same weights) and
    resumes the unfinished phase at its last epoch.
    """
    if not phases:
        raise ValueError("phases must hold at least one curriculum phase")
    if lam < 0:
        raise ValueError(f"lam must be >= 0; got {lam!r}")
    if lam > 0 and getattr(net, "bank", None) is None:
        raise ValueError("lam > 0 needs a soft-shared net (templates is not None)")
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    reg = (lambda: recurrence_regularizer(net.alpha(), lam)) if lam > 0 else None
    scores = []
    for i, phase in enumerate(phases):
        label = f"{progress} d<={phase.max_distance}" if isinstance(progress, str) else progress
        fit(net, opt, phase.data, epochs, batch_size, loss_fn=_bce, generator=generator, regularizer=reg,
            eval_every=0, progress=label, checkpoint=None if checkpoint is None else checkpoint(i))
        net.eval()
        with torch.no_grad():
            scores.append(f1_score(net(phase.data.x_test) > 0, phase.data.y_test))
        net.train()
    return scores

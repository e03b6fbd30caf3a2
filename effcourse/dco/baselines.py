"""The hand-designed optimizers that DCO is compared with (Gautam 2024, 4.6): SGD, Adam and RMSProp, each with
a learning rate tuned on tasks other than the reported ones.

Every baseline runs on the ``(N, p)`` tensor of all N tasks at once; the three optimizers are elementwise, so one
run is exactly N independent runs (the tasks share no parameters).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .tasks import Tasks, _check_count

__all__ = ["BASELINES", "run_baseline", "tune_baseline"]

BASELINES = ("sgd", "adam", "rmsprop")


def _make_baseline(name: str, params: list[torch.Tensor], lr: float) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    raise ValueError(f"baseline must be one of {BASELINES}; got {name!r}")


def run_baseline(tasks: Tasks, name: str, lr: float, steps: int, theta0: torch.Tensor | None = None
                 ) -> torch.Tensor:
    """Mean validation loss over the tasks after 0..steps full-batch steps of ``name`` (shape ``(steps+1,)``).

    One optimizer on the ``(N, p)`` tensor of all tasks: the optimizers are elementwise, so this is exactly N
    independent runs.  A diverged run shows as inf/nan in the curve (and the loop runs on: the curve keeps its
    length, and :func:`tune_baseline` reads the last point).
    """
    if name not in BASELINES:
        raise ValueError(f"baseline must be one of {BASELINES}; got {name!r}")
    if not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"lr must be a positive number; got {lr!r}")
    _check_count("steps", steps)
    theta = (tasks.init_params() if theta0 is None else theta0).detach().clone().requires_grad_(True)
    opt = _make_baseline(name, [theta], lr)
    curve = torch.empty(steps + 1, dtype=theta.dtype)
    with torch.no_grad():
        curve[0] = tasks.val_loss(theta).mean()
    for t in range(steps):
        opt.zero_grad(set_to_none=True)
        tasks.loss(theta).sum().backward()
        opt.step()
        with torch.no_grad():
            curve[t + 1] = tasks.val_loss(theta).mean()
    return curve


def tune_baseline(tasks: Tasks, name: str, lrs: Sequence[float], steps: int, theta0: torch.Tensor | None = None
                  ) -> tuple[float, torch.Tensor]:
    """Pick the learning rate whose mean validation loss after ``steps`` steps is lowest.

    Returns ``(best_lr, final_losses)`` with one final loss per grid point (inf where the run diverged).  Tune on
    tasks other than the ones reported, so the baseline is not fitted to its own test set.
    """
    lrs = [float(v) for v in lrs]
    if not lrs:
        raise ValueError("lrs must be a non-empty sequence of learning rates")
    finals = torch.empty(len(lrs), dtype=torch.float64)
    for j, lr in enumerate(lrs):
        v = float(run_baseline(tasks, name, lr, steps, theta0)[-1])
        finals[j] = v if math.isfinite(v) else math.inf
    if not torch.isfinite(finals).any():
        raise RuntimeError(f"every learning rate in the grid diverged for {name}: {lrs}")
    return lrs[int(finals.argmin())], finals

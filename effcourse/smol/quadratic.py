"""SMOL on a separable quadratic, where the learned precisions have a closed form (Savarese 2025, Fig. 5.2).

For ``L(w) = sum_i h_i / 2 (w_i - c_i)^2`` and ``eps ~ U(-1, 1)`` (so ``E[eps^2] = 1/3``),
``E L(w + sigma * eps) + lambda sum_i (p_i - 1) = L(w) + sum_i h_i sigma_i^2 / 6 - lambda sum_i log2 sigma_i``,
minimized at ``w = c`` and ``sigma_i^2 = 3 lambda / (h_i ln 2)``: ``p_i* = 1 + 1/2 log2(h_i ln 2 / (3 lambda))``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .parametrization import SMOL

__all__ = ["QuadraticRun", "SeparableQuadratic", "learn_quadratic_precisions", "optimal_precision"]


class SeparableQuadratic(nn.Module):
    """``sum_i h_i / 2 (w_i - c_i)^2`` as a module with one weight tensor ``weight`` (the input is ignored)."""

    def __init__(self, h: Sequence[float] | torch.Tensor, c: Sequence[float] | torch.Tensor):
        super().__init__()
        h = torch.as_tensor(h, dtype=torch.float32)
        c = torch.as_tensor(c, dtype=torch.float32)
        if h.dim() != 1 or h.shape != c.shape or not h.numel():
            raise ValueError(f"h and c must be non-empty vectors of one length; got shapes {tuple(h.shape)}, "
                             f"{tuple(c.shape)}")
        if bool((h <= 0).any()):
            raise ValueError("h (the curvatures) must be positive")
        self.register_buffer("h", h)
        self.register_buffer("c", c)
        self.weight = nn.Parameter(torch.zeros_like(self.c))

    def forward(self, x: torch.Tensor | None = None) -> torch.Tensor:
        return 0.5 * (self.h * (self.weight - self.c) ** 2).sum()


def optimal_precision(h: Sequence[float] | np.ndarray, lam: float) -> np.ndarray:
    """The closed-form optimum ``p_i* = 1 + 1/2 log2(h_i ln 2 / (3 lambda))`` of SMOL's objective on the quadratic."""
    if not lam > 0:
        raise ValueError(f"lam must be positive; got {lam!r}")
    return 1 + 0.5 * np.log2(np.asarray(h, dtype=np.float64) * math.log(2) / (3 * lam))


@dataclass
class QuadraticRun:
    """What :func:`learn_quadratic_precisions` found: ``trace`` holds the real precisions every ``every`` steps."""

    h: list[float]
    c: list[float]
    lam: float
    steps: int
    trace: np.ndarray
    p_learned: np.ndarray
    p_star: np.ndarray
    w_final: np.ndarray

    @property
    def max_gap(self) -> float:
        """``max_i |p_i - p_i*|`` in bits."""
        return float(np.abs(self.p_learned - self.p_star).max())


def learn_quadratic_precisions(h: Sequence[float], c: Sequence[float], lam: float, steps: int, samples: int, *,
                               lr_w: float = 1e-3, lr_s: float = 1e-2, p_init: float = 8.0, every: int = 50,
                               seed: int | None = None, device: str | torch.device = "cpu") -> QuadraticRun:
    """SMOL's objective (Def. 5.5) on :class:`SeparableQuadratic`: SGD on ``w``, Adam on ``s``, ``samples`` noise draws
    per step from the global generator (reseeded with ``seed`` first, when given), ``w`` clipped after each step
    (grid scale 1: the weights are the grid)."""
    if not isinstance(steps, int) or steps < 1 or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"steps and samples must be positive ints; got {steps!r}, {samples!r}")
    if seed is not None:
        torch.manual_seed(seed)
    quad = SeparableQuadratic(h, c).to(device)
    smol = SMOL(quad, ["weight"], scale=1.0, p_init=p_init)
    w_opt = torch.optim.SGD(smol.model_parameters(), lr=lr_w)
    s_opt = torch.optim.Adam(smol.precision_parameters(), lr=lr_s)
    trace = []
    # one deterministic loss and no data set: a plain loop, not core.train.fit's minibatches
    for step in range(steps):
        loss = sum(quad() for _ in range(samples)) / samples + lam * smol.penalty()
        w_opt.zero_grad()
        s_opt.zero_grad()
        loss.backward()
        w_opt.step()
        s_opt.step()
        smol.clip_()
        if step % every == 0 or step == steps - 1:
            trace.append(smol.real_precisions()["weight"].cpu().numpy().copy())
    return QuadraticRun(list(h), list(c), lam, steps, np.array(trace),
                        smol.real_precisions()["weight"].cpu().numpy(), optimal_precision(h, lam),
                        smol.grid_weight("weight").detach().cpu().numpy())

"""The stochastic problem on which Adam fails for any epsilon (Savarese 2025, Theorem 6.1, eqs. 6.13-6.23).

On w in [0, 1]:  f_s(w) = C w^2 / 2 with probability p = (1 + delta) / (C + 1), and -w otherwise, so
grad f(w) = p C w - (1 - p), w* = (1 - p) / (C p), grad f(1) = delta.  For C large enough (given eps and beta2)
Adam's expected step points away from w* (bound 6.23), and it drifts to w = 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["METHODS", "RareSpikeProblem", "adam_drift_bound", "run_methods"]

METHODS = ("adam", "amsgrad", "delayed_adam", "adam_eps_schedule")


@dataclass(frozen=True)
class RareSpikeProblem:
    """Eq. 6.14: a rare large quadratic term (weight C) against a frequent linear pull towards w = 1."""

    C: float = 999.0
    delta: float = 1.0

    def __post_init__(self):
        if not (self.C > 0 and self.delta >= 0 and (1 + self.delta) / (self.C + 1) < 1):
            raise ValueError(f"need C > 0, delta >= 0 and p = (1+delta)/(C+1) < 1; got C={self.C}, "
                             f"delta={self.delta}")

    @property
    def p(self) -> float:
        return (1 + self.delta) / (self.C + 1)

    @property
    def w_star(self) -> float:
        return (1 - self.p) / (self.C * self.p)

    def grad(self, w: torch.Tensor) -> torch.Tensor:
        """The full gradient, p C w - (1 - p)."""
        return self.p * self.C * w - (1 - self.p)

    def second_moment(self) -> float:
        """E[g^2] at w = 1: 1 - p + p C^2 = (1 + delta) C - delta (the corrected last line of eq. 6.21)."""
        return 1 - self.p + self.p * self.C ** 2


def adam_drift_bound(C: float, delta: float, beta2: float, eps: float) -> float:
    """Right-hand side of eq. 6.23: a lower bound on E[w_{t+1} - w_t] / alpha for Adam with beta1 = 0.

    Positive means Adam's expected step moves away from w* towards w = 1.
    """
    if not 0 <= beta2 < 1:
        raise ValueError(f"beta2 must be in [0, 1); got {beta2!r}")
    if eps < 0:
        raise ValueError(f"eps must be >= 0; got {eps!r}")
    p = (1 + delta) / (C + 1)
    rare = -p / math.sqrt(1 - beta2)
    frequent = (1 - p) / (math.sqrt(beta2 * (1 + delta) * C + 1 - beta2) + eps)
    return rare + frequent


@torch.no_grad()
def run_methods(problem: RareSpikeProblem, steps: int, lr: float = 1e-4, beta2: float = 0.99, eps: float = 1e-8,
                w1: float = 1.0, runs: int = 3, methods: tuple[str, ...] = METHODS, record_every: int = 100,
                generator: torch.Generator | None = None, device: str | torch.device = "cpu",
                chunk: int = 4096) -> dict[str, torch.Tensor]:
    """Run several methods with beta1 = 0 and projection onto [0, 1], batched over ``runs`` independent runs each.

    The samples come from ``generator`` (seed it from the chapter's base seed); every method sees the same sample
    sequences.  Returns, per method, the running mean over steps of
    ``||grad f(w_t)||^2`` recorded every ``record_every`` steps (shape ``runs x steps // record_every``), plus the
    final iterates under ``"<method>/w"``.  ``adam_eps_schedule`` uses eps_t = t^1.5 and lr_t = lr * eps_t (our
    reading of the thesis's section 6.5.1, which leaves lr_t unspecified).
    """
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"unknown method {m!r}; choose from {METHODS}")
    if not isinstance(runs, int) or runs < 1:
        raise ValueError(f"runs must be a positive int; got {runs!r}")
    if steps < record_every or record_every < 1:
        raise ValueError(f"need steps >= record_every >= 1; got steps={steps}, record_every={record_every}")
    dt = torch.float64
    w = {m: torch.full((runs,), float(w1), dtype=dt, device=device) for m in methods}
    v = {m: torch.zeros(runs, dtype=dt, device=device) for m in methods}
    vmax = torch.zeros(runs, dtype=dt, device=device)
    acc = {m: torch.zeros(runs, dtype=dt, device=device) for m in methods}
    rec: dict[str, list[torch.Tensor]] = {m: [] for m in methods}
    C, p = problem.C, problem.p
    t = 0
    while t < steps:
        n = min(chunk, steps - t)
        rare = torch.rand((n, runs), generator=generator, dtype=dt).to(device) < p
        for k in range(n):
            t += 1
            r = rare[k]
            for m in methods:
                g = torch.where(r, C * w[m], torch.full_like(w[m], -1.0))
                if m == "delayed_adam":
                    step = lr * g / (v[m].sqrt() + eps)          # eta from v_{t-1}
                    v[m].mul_(beta2).add_((1 - beta2) * g * g)
                else:
                    v[m].mul_(beta2).add_((1 - beta2) * g * g)
                    if m == "adam":
                        step = lr * g / (v[m].sqrt() + eps)
                    elif m == "amsgrad":
                        torch.maximum(vmax, v[m], out=vmax)
                        step = lr * g / (vmax.sqrt() + eps)
                    else:  # adam_eps_schedule
                        eps_t = float(t) ** 1.5
                        step = lr * eps_t * g / (v[m].sqrt() + eps_t)
                w[m] = (w[m] - step).clamp_(0.0, 1.0)
                acc[m] += problem.grad(w[m]) ** 2
            if t % record_every == 0:
                for m in methods:
                    rec[m].append(acc[m] / t)
    out: dict[str, torch.Tensor] = {m: torch.stack(rec[m], dim=1) for m in methods}
    out.update({f"{m}/w": w[m] for m in methods})
    return out

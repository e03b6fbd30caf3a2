"""The zeroth-order methods on stacks of parameter vectors: ``k`` replicas (seeds) trained side by side.

Running replicas as rows of one tensor turns a Python loop over seeds into one batched tensor operation, which is
what makes the thesis's least-squares experiment (Fig. 3.1a, ~1e7 single-sample forward passes per run) and the
MLP batch-size study (Fig. 3.1b) affordable on a laptop CPU.  The problems live in :mod:`effcourse.mezo.problems`.
The arithmetic is that of :mod:`effcourse.mezo.optim` (MeZO, Def. 3; MeZO-SVRG, Alg. 3) with the directions drawn
in chunks; the ``nn.Module`` optimizers there are the memory-efficient versions.

Every replica draws its own minibatch, and a run is measured in single-sample queries (``2b`` per MeZO step,
``2n`` per MeZO-SVRG anchor step, ``4b`` per minibatch step), so these loops cannot be the epoch-based
:func:`effcourse.core.train.fit` (one model, one shared minibatch per step).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

__all__ = ["Trace", "run_fo_sgd", "run_mezo", "run_mezo_svrg", "svrg_budget"]


@dataclass
class Trace:
    """Full-batch loss of each replica at logged points, against single-sample queries, steps and seconds."""

    queries: list[int] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    loss: list[torch.Tensor] = field(default_factory=list)
    theta: torch.Tensor | None = None

    def log(self, q: int, t: int, sec: float, loss: torch.Tensor) -> None:
        """Append one point: queries so far, steps so far, seconds so far, the ``k`` losses."""
        self.queries.append(q)
        self.steps.append(t)
        self.seconds.append(sec)
        self.loss.append(loss.detach().cpu())

    def losses(self) -> torch.Tensor:
        """``points x k``."""
        return torch.stack(self.loss)

    def final(self) -> torch.Tensor:
        """The ``k`` losses at the last logged point."""
        return self.loss[-1]


def _log_every(steps: int, points: int) -> int:
    return max(1, steps // max(points, 1))


def _finite(x: torch.Tensor) -> torch.Tensor:
    return torch.nan_to_num(x, nan=float("inf"), posinf=float("inf"))


def _sample(n: int, k: int, b: int, c: int, gen: torch.Generator, device) -> torch.Tensor | None:
    if b >= n:
        return None
    return torch.randint(0, n, (c, k, b), generator=gen, device=device)


@torch.no_grad()
def run_mezo(problem, theta0: torch.Tensor, lr: float, mu: float, batch_size: int, budget: int,
             generator: torch.Generator, points: int = 100, sign: bool = False, chunk: int = 256) -> Trace:
    """MeZO / ZO-SGD (Def. 3) on ``k`` replicas for ``budget`` queries (``2b`` per step).

    ``sign=True`` is ZO-signSGD (Liu et al. 2019): the update uses ``sign(pg z)``.
    """
    if batch_size < 1 or budget < 2 * batch_size:
        raise ValueError(f"need batch_size >= 1 and budget >= 2 batch_size; got {batch_size}, {budget}")
    theta = theta0.clone()
    k, D = theta.shape
    b = min(batch_size, problem.n)
    steps = budget // (2 * b)
    every = _log_every(steps, points)
    tr, t0 = Trace(), time.perf_counter()
    tr.log(0, 0, 0.0, problem.loss(theta))
    for c0 in range(0, steps, chunk):
        c = min(chunk, steps - c0)
        Z = torch.randn(c, k, D, generator=generator, dtype=theta.dtype, device=theta.device)
        I = _sample(problem.n, k, b, c, generator, theta.device)
        for j in range(c):
            z = Z[j]
            idx = None if I is None else I[j].repeat(2, 1)
            f = problem.loss(torch.cat([theta + mu * z, theta - mu * z]), idx)
            pg = (f[:k] - f[k:]) / (2 * mu)
            step = pg[:, None] * z
            theta -= lr * (step.sign() if sign else step)
            t = c0 + j + 1
            if t % every == 0 or t == steps:
                tr.log(2 * b * t, t, time.perf_counter() - t0, _finite(problem.loss(theta)))
    tr.theta = theta
    return tr


def svrg_budget(n: int, batch_size: int, q: int, steps: int, anchor_size: int | None = None) -> int:
    """The query budget that buys :func:`run_mezo_svrg` ``steps`` iterations (at least one anchor cycle of ``q``).

    One cycle costs ``2 n_a + (q - 1) 4 b`` queries: an anchor step on ``n_a`` samples (``n`` or ``anchor_size``)
    and ``q - 1`` minibatch steps of ``b``.
    """
    if min(n, batch_size, q, steps) < 1:
        raise ValueError(f"n, batch_size, q and steps must be >= 1; got {n}, {batch_size}, {q}, {steps}")
    na = n if anchor_size is None else min(anchor_size, n)
    return (2 * na + (q - 1) * 4 * min(batch_size, n)) * max(1, steps // q)


@torch.no_grad()
def run_mezo_svrg(problem, theta0: torch.Tensor, lr_full: float, lr_mini: float, mu: float, q: int,
                  batch_size: int, budget: int, generator: torch.Generator, anchor_size: int | None = None,
                  shared_direction: bool = True, points: int = 100) -> Trace:
    """MeZO-SVRG (Alg. 3) on ``k`` replicas until ``budget`` queries (``2n`` per anchor step, ``4b`` otherwise).

    ``anchor_size`` < n replaces the full batch by a fresh large batch (Remark 10, Table 3.10).
    """
    if q < 1:
        raise ValueError(f"q must be >= 1; got {q}")
    if batch_size < 1 or budget < 1:
        raise ValueError(f"batch_size and budget must be >= 1; got {batch_size}, {budget}")
    theta = theta0.clone()
    k, D = theta.shape
    n = problem.n
    na = n if anchor_size is None else min(anchor_size, n)
    b = min(batch_size, n)
    per_cycle = 2 * na + (q - 1) * 4 * b
    steps = max(1, (budget // per_cycle) * q)
    every = _log_every(steps, points)
    tr, t0 = Trace(), time.perf_counter()
    tr.log(0, 0, 0.0, problem.loss(theta))
    queries = 0
    g = torch.zeros_like(theta)
    anchor = theta.clone()
    for t in range(steps):
        if t % q == 0:
            z = torch.randn(k, D, generator=generator, dtype=theta.dtype, device=theta.device)
            if na >= n:
                idx = None
            else:  # a large batch without replacement, fresh for every anchor
                idx = torch.rand(k, n, generator=generator, device=theta.device).argsort(dim=1)[:, :na]
                idx = idx.repeat(2, 1)
            f = problem.loss(torch.cat([theta + mu * z, theta - mu * z]), idx)
            g = ((f[:k] - f[k:]) / (2 * mu))[:, None] * z
            anchor = theta.clone()
            theta -= lr_full * g
            queries += 2 * na
        else:
            z1 = torch.randn(k, D, generator=generator, dtype=theta.dtype, device=theta.device)
            z2 = z1 if shared_direction else torch.randn(k, D, generator=generator, dtype=theta.dtype,
                                                         device=theta.device)
            idx = None if b >= n else torch.randint(0, n, (k, b), generator=generator, device=theta.device)
            pts = torch.cat([theta + mu * z1, theta - mu * z1, anchor + mu * z2, anchor - mu * z2])
            f = problem.loss(pts, None if idx is None else idx.repeat(4, 1))
            pg1 = (f[:k] - f[k:2 * k]) / (2 * mu)
            pg2 = (f[2 * k:3 * k] - f[3 * k:]) / (2 * mu)
            theta -= lr_mini * (pg1[:, None] * z1 - pg2[:, None] * z2 + g)
            queries += 4 * b
        if (t + 1) % every == 0 or t + 1 == steps:
            tr.log(queries, t + 1, time.perf_counter() - t0, _finite(problem.loss(theta)))
    tr.theta = theta
    return tr


def run_fo_sgd(problem, theta0: torch.Tensor, lr: float, batch_size: int, steps: int, generator: torch.Generator,
               points: int = 100) -> Trace:
    """First-order minibatch SGD on the replicas (autograd); queries count ``b`` per step (one forward each)."""
    theta = theta0.clone().requires_grad_(True)
    k = theta.shape[0]
    b = min(batch_size, problem.n)
    every = _log_every(steps, points)
    tr, t0 = Trace(), time.perf_counter()
    with torch.no_grad():
        tr.log(0, 0, 0.0, problem.loss(theta))
    for t in range(steps):
        idx = None if b >= problem.n else torch.randint(0, problem.n, (k, b), generator=generator,
                                                        device=theta.device)
        (grad,) = torch.autograd.grad(problem.loss(theta, idx).sum(), theta)
        with torch.no_grad():
            theta -= lr * grad
            if (t + 1) % every == 0 or t + 1 == steps:
                tr.log(b * (t + 1), t + 1, time.perf_counter() - t0, _finite(problem.loss(theta)))
    tr.theta = theta.detach()
    return tr

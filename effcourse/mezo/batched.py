"""The zeroth-order methods on stacks of parameter vectors: ``k`` replicas (seeds) trained side by side.

Running replicas as rows of one tensor turns a Python loop over seeds into one batched tensor operation, which is
what makes the thesis's least-squares experiment (Fig. 3.1a, ~1e7 single-sample forward passes per run) and the
MLP batch-size study (Fig. 3.1b) affordable on a laptop CPU.  The problems live in :mod:`effcourse.mezo.problems`.
The arithmetic is that of :mod:`effcourse.mezo.optim` (MeZO, Def. 3; MeZO-SVRG, Alg. 3) with the directions drawn
in chunks; the ``nn.Module`` optimizers there are the memory-efficient versions.

Every replica draws its own minibatch.  ``generator`` is one torch generator for all rows, or a list of ``k``
generators, one per row: then row ``j`` draws its directions and minibatches from generator ``j`` alone, so a
replica is the same whatever the other rows are (the chapter gives each row its own experiment seed).  A run is
measured in single-sample queries (``2b`` per MeZO step, ``2n`` per MeZO-SVRG anchor step, ``4b`` per minibatch
step), so these loops cannot be the epoch-based
:func:`effcourse.core.train.fit` (one model, one shared minibatch per step).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

Generators = torch.Generator | Sequence[torch.Generator]

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


def _per_row(gen: Generators, k: int, draw: Callable[[torch.Generator, int], torch.Tensor]) -> torch.Tensor:
    """``draw(generator, rows)`` (row axis first) for all ``k`` rows: at once from one generator, or row ``j`` from
    generator ``j`` of a list."""
    if isinstance(gen, torch.Generator):
        return draw(gen, k)
    if len(gen) != k:
        raise ValueError(f"generator must be one torch.Generator or a list of k={k}; got a list of {len(gen)}")
    return torch.cat([draw(g, 1) for g in gen])


def _sample(n: int, k: int, b: int, c: int, gen: Generators, device) -> torch.Tensor | None:
    """``c x k x b`` sample indices (``None`` for the full batch)."""
    if b >= n:
        return None
    return _per_row(gen, k, lambda g, r: torch.randint(0, n, (r, c, b), generator=g, device=device)).transpose(0, 1)


def _randn(gen: Generators, k: int, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """``k x shape`` standard normals in ``like``'s dtype and device."""
    return _per_row(gen, k, lambda g, r: torch.randn(r, *shape, generator=g, dtype=like.dtype, device=like.device))


@torch.no_grad()
def run_mezo(problem, theta0: torch.Tensor, lr: float, mu: float, batch_size: int, budget: int,
             generator: Generators, points: int = 100, sign: bool = False, chunk: int = 256) -> Trace:
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
        Z = _randn(generator, k, (c, D), theta).transpose(0, 1)
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
                  batch_size: int, budget: int, generator: Generators, anchor_size: int | None = None,
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
            z = _randn(generator, k, (D,), theta)
            if na >= n:
                idx = None
            else:  # a large batch without replacement, fresh for every anchor
                dev = theta.device
                idx = _per_row(generator, k, lambda g, r, dev=dev: torch.rand(r, n, generator=g, device=dev))
                idx = idx.argsort(dim=1)[:, :na]
                idx = idx.repeat(2, 1)
            f = problem.loss(torch.cat([theta + mu * z, theta - mu * z]), idx)
            g = ((f[:k] - f[k:]) / (2 * mu))[:, None] * z
            anchor = theta.clone()
            theta -= lr_full * g
            queries += 2 * na
        else:
            z1 = _randn(generator, k, (D,), theta)
            z2 = z1 if shared_direction else _randn(generator, k, (D,), theta)
            idx = None if b >= n else _sample(n, k, b, 1, generator, theta.device)[0]
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


def run_fo_sgd(problem, theta0: torch.Tensor, lr: float, batch_size: int, steps: int, generator: Generators,
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
        idx = _sample(problem.n, k, b, 1, generator, theta.device)
        idx = None if idx is None else idx[0]
        (grad,) = torch.autograd.grad(problem.loss(theta, idx).sum(), theta)
        with torch.no_grad():
            theta -= lr * grad
            if (t + 1) % every == 0 or t + 1 == steps:
                tr.log(b * (t + 1), t + 1, time.perf_counter() - t0, _finite(problem.loss(theta)))
    tr.theta = theta.detach()
    return tr

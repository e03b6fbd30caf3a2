"""The same zeroth-order methods on stacks of parameter vectors, for problems small enough to vectorise.

A problem maps ``P`` (``k x D``: ``k`` independent replicas, e.g. seeds) and per-replica sample indices to ``k``
losses.  Running replicas side by side turns a Python loop over seeds into one batched tensor operation, which is
what makes the thesis's least-squares experiment (Fig. 3.1a, ~1e7 single-sample forward passes per run) and the
MLP batch-size study (Fig. 3.1b) affordable on a laptop CPU.  The arithmetic is that of :mod:`effcourse.mezo.optim`
(MeZO, Alg. 3) with the directions drawn in chunks; the ``nn.Module`` optimizers are the memory-efficient versions.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

__all__ = ["BatchedMLP", "LeastSquares", "Trace", "digits_mlp", "run_fo_sgd", "run_mezo", "run_mezo_svrg"]


class LeastSquares:
    """``f(w) = (1/n) |X w - y|^2`` with ``X ~ N(0,1)^{n x d}``, ``w* ~ N(0,1)``, ``y = X w* + noise`` ((3.14)).

    The thesis (Sec. 3.9) gives only ``d=100, n=1000``; the distributions, the noise (0.1), the mean instead of the
    sum (with a sum, lr 1e-3 diverges) and ``theta_0 = 0`` are this book's choices (digest B.8).
    """

    def __init__(self, n: int = 1000, d: int = 100, noise: float = 0.1, seed: int = 0,
                 dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu"):
        if n < 1 or d < 1 or noise < 0:
            raise ValueError(f"need n >= 1, d >= 1, noise >= 0; got n={n}, d={d}, noise={noise}")
        g = torch.Generator().manual_seed(seed)
        X = torch.randn(n, d, generator=g, dtype=torch.float64)
        w = torch.randn(d, generator=g, dtype=torch.float64)
        y = X @ w + noise * torch.randn(n, generator=g, dtype=torch.float64)
        self.theta_star = torch.linalg.lstsq(X, y[:, None]).solution[:, 0].to(device, dtype)
        self.X, self.y = X.to(device, dtype), y.to(device, dtype)
        self.n, self.dim = n, d
        self.f_star = float(self.loss(self.theta_star[None])[0])

    def init(self, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.zeros(k, self.dim, dtype=self.X.dtype, device=self.X.device)

    def per_sample(self, P: torch.Tensor) -> torch.Tensor:
        """``m x n`` per-sample losses ``(x_i^T p - y_i)^2``."""
        return (P @ self.X.T - self.y).square()

    def loss(self, P: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        if idx is None:
            return self.per_sample(P).mean(dim=1)
        r = torch.einsum("mbd,md->mb", self.X[idx], P) - self.y[idx]
        return r.square().mean(dim=1)

    def grad(self, P: torch.Tensor) -> torch.Tensor:
        return (2.0 / self.n) * ((P @ self.X.T - self.y) @ self.X)


class BatchedMLP:
    """A ReLU MLP whose weights are rows of a ``k x D`` matrix: ``k`` networks evaluated with batched matmuls.

    The thesis's Fig. 3.1b network has hidden sizes 32 and 16; here it reads the 64 pixels of the bundled digits.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, sizes: tuple[int, ...] = (64, 32, 16, 10)):
        if x.dim() != 2 or x.shape[1] != sizes[0]:
            raise ValueError(f"x must be N x {sizes[0]}; got {tuple(x.shape)}")
        self.x, self.y, self.sizes = x, y, tuple(sizes)
        self.n = x.shape[0]
        self.shapes = [(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
        self.dim = sum(a * b + b for a, b in self.shapes)

    def init(self, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """He-normal weights, zero biases."""
        parts = []
        for a, b in self.shapes:
            parts.append(torch.randn(k, a * b, generator=generator, dtype=self.x.dtype) * math.sqrt(2.0 / a))
            parts.append(torch.zeros(k, b, dtype=self.x.dtype))
        return torch.cat(parts, dim=1).to(self.x.device)

    def logits(self, P: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``m x b x in`` (or ``b x in``, shared by all replicas)."""
        m = P.shape[0]
        h = x if x.dim() == 3 else x.expand(m, *x.shape)
        off = 0
        for j, (a, b) in enumerate(self.shapes):
            W = P[:, off:off + a * b].view(m, a, b)
            off += a * b
            bias = P[:, off:off + b]
            off += b
            h = torch.baddbmm(bias[:, None, :], h, W)
            if j < len(self.shapes) - 1:
                h = torch.relu(h)
        return h

    def loss(self, P: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        if idx is None:
            out = self.logits(P, self.x)
            tgt = self.y.expand(P.shape[0], -1)
        else:
            out = self.logits(P, self.x[idx])
            tgt = self.y[idx]
        ce = F.cross_entropy(out.reshape(-1, out.shape[-1]), tgt.reshape(-1), reduction="none")
        return ce.view(P.shape[0], -1).mean(dim=1)

    def accuracy(self, P: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (self.logits(P, x).argmax(-1) == y).to(x.dtype).mean(dim=1)


@dataclass
class Trace:
    """Full-batch loss of each replica at logged points, against single-sample queries, steps and seconds."""

    queries: list[int] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    loss: list[torch.Tensor] = field(default_factory=list)
    theta: torch.Tensor | None = None

    def log(self, q: int, t: int, sec: float, loss: torch.Tensor) -> None:
        self.queries.append(q)
        self.steps.append(t)
        self.seconds.append(sec)
        self.loss.append(loss.detach().cpu())

    def losses(self) -> torch.Tensor:
        """``points x k``."""
        return torch.stack(self.loss)

    def final(self) -> torch.Tensor:
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


@torch.no_grad()
def run_mezo_svrg(problem, theta0: torch.Tensor, lr_full: float, lr_mini: float, mu: float, q: int,
                  batch_size: int, budget: int, generator: torch.Generator, anchor_size: int | None = None,
                  shared_direction: bool = True, points: int = 100) -> Trace:
    """MeZO-SVRG (Alg. 3) on ``k`` replicas until ``budget`` queries (``2n`` per anchor step, ``4b`` otherwise).

    ``anchor_size`` < n replaces the full batch by a fresh large batch (Remark 10, Table 3.10).
    """
    if q < 1:
        raise ValueError(f"q must be >= 1; got {q}")
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


def digits_mlp(n_train: int = 512, sizes: tuple[int, ...] = (64, 32, 16, 10), device: str | torch.device = "cpu",
               dtype: torch.dtype = torch.float32) -> tuple[BatchedMLP, torch.Tensor, torch.Tensor]:
    """The bundled 8x8 digits scaled to [0, 1], ``n_train`` training images (the thesis fine-tunes on 512
    examples) and the fixed test split: ``(problem, x_test, y_test)``."""
    from ..core.data import digits

    sp = digits(flat=True, normalize="unit", device=device, dtype=dtype)
    if not 1 <= n_train <= sp.x_train.shape[0]:
        raise ValueError(f"n_train must be in [1, {sp.x_train.shape[0]}]; got {n_train}")
    return BatchedMLP(sp.x_train[:n_train], sp.y_train[:n_train], sizes), sp.x_test, sp.y_test

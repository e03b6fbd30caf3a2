"""Problems small enough to vectorise: each maps a stack of parameter vectors to one loss per row.

A problem takes ``P`` (``k x D``: ``k`` independent replicas, e.g. seeds) and optional per-replica sample indices
``idx`` (``k x b``) and returns ``k`` losses; it exposes ``n`` (training samples), ``dim`` (``D``) and
``init(k, generator)``.  :mod:`effcourse.mezo.batched` runs the zeroth-order methods on any such problem.

* :class:`LeastSquares`: the thesis's convex problem (3.14), Fig. 3.1a;
* :class:`BatchedMLP`: ``k`` small ReLU networks evaluated with batched matmuls, Fig. 3.1b;
* :func:`digits_mlp`: that network on the bundled 8x8 digits;
* :class:`MLPClassifier`: one such network as an ``nn.Module`` (Fig. 3.1b on MNIST at ``full``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..core.data import Split, dataset

__all__ = ["BatchedMLP", "LeastSquares", "MLPClassifier", "digits_mlp"]


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
        """``k`` copies of ``theta_0 = 0`` (the generator is unused: the start is deterministic)."""
        return torch.zeros(k, self.dim, dtype=self.X.dtype, device=self.X.device)

    def per_sample(self, P: torch.Tensor) -> torch.Tensor:
        """``m x n`` per-sample losses ``(x_i^T p - y_i)^2``."""
        return (P @ self.X.T - self.y).square()

    def loss(self, P: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        """``k`` mean losses: over all samples, or over row ``j`` of ``idx`` (``k x b``) for replica ``j``."""
        if idx is None:
            return self.per_sample(P).mean(dim=1)
        r = torch.einsum("mbd,md->mb", self.X[idx], P) - self.y[idx]
        return r.square().mean(dim=1)

    def grad(self, P: torch.Tensor) -> torch.Tensor:
        """The exact full-batch gradients, ``k x d``."""
        return (2.0 / self.n) * ((P @ self.X.T - self.y) @ self.X)


class BatchedMLP:
    """A ReLU MLP whose weights are rows of a ``k x D`` matrix: ``k`` networks evaluated with batched matmuls.

    The thesis's Fig. 3.1b network has hidden sizes 32 and 16; here it reads the 64 pixels of the bundled digits.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, sizes: tuple[int, ...] = (64, 32, 16, 10)):
        if len(sizes) < 2:
            raise ValueError(f"sizes must name an input and an output width at least; got {sizes}")
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

    @classmethod
    def from_split(cls, data: Split, n_train: int, sizes: tuple[int, ...] | None = None) -> BatchedMLP:
        """The network on the first ``n_train`` training rows of a flat ``Split`` (input width from the data)."""
        if data.x_train.dim() != 2:
            raise ValueError(f"data must be flat (N x F rows); got x_train of shape {tuple(data.x_train.shape)}")
        if not 1 <= n_train <= data.x_train.shape[0]:
            raise ValueError(f"n_train must be in [1, {data.x_train.shape[0]}]; got {n_train}")
        sizes = (data.num_features, 32, 16, data.num_classes) if sizes is None else tuple(sizes)
        return cls(data.x_train[:n_train], data.y_train[:n_train], sizes)

    def loss(self, P: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        """``k`` mean cross-entropies: over all samples, or over row ``j`` of ``idx`` for replica ``j``."""
        if idx is None:
            out = self.logits(P, self.x)
            tgt = self.y.expand(P.shape[0], -1)
        else:
            out = self.logits(P, self.x[idx])
            tgt = self.y[idx]
        ce = F.cross_entropy(out.reshape(-1, out.shape[-1]), tgt.reshape(-1), reduction="none")
        return ce.view(P.shape[0], -1).mean(dim=1)

    def accuracy(self, P: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``k`` accuracies on ``(x, y)`` (e.g. the test split)."""
        return (self.logits(P, x).argmax(-1) == y).to(x.dtype).mean(dim=1)


def digits_mlp(n_train: int = 512, sizes: tuple[int, ...] = (64, 32, 16, 10), device: str | torch.device = "cpu",
               dtype: torch.dtype = torch.float32) -> tuple[BatchedMLP, torch.Tensor, torch.Tensor]:
    """The bundled 8x8 digits scaled to [0, 1], ``n_train`` training images (the thesis fine-tunes on 512
    examples) and the fixed test split: ``(problem, x_test, y_test)``."""
    sp = dataset("digits", flat=True, normalize="unit", device=device, dtype=dtype)
    return BatchedMLP.from_split(sp, n_train, sizes), sp.x_test, sp.y_test


class MLPClassifier(nn.Module):
    """The Fig. 3.1b network as an ``nn.Module`` (ReLU MLP, hidden 32 and 16 on MNIST's 784 pixels: 25,818
    parameters), for :func:`effcourse.mezo.finetune`'s step loop with the memory-efficient optimizers.
    ``forward(x)`` returns an object with ``.logits``, like a Hugging Face classifier.  The weights are drawn as
    :meth:`BatchedMLP.init` draws one replica (He-normal, zero biases) from ``generator``."""

    def __init__(self, sizes: tuple[int, ...] = (784, 32, 16, 10), generator: torch.Generator | None = None):
        super().__init__()
        if len(sizes) < 2:
            raise ValueError(f"sizes must name an input and an output width at least; got {sizes}")
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        with torch.no_grad():
            for lin in self.layers:
                a, b = lin.in_features, lin.out_features
                lin.weight.copy_((torch.randn(a * b, generator=generator) * math.sqrt(2.0 / a)).view(a, b).T)
                lin.bias.zero_()

    def forward(self, x: torch.Tensor):
        from .pretrained import _Out

        for j, lin in enumerate(self.layers):
            x = lin(x)
            if j < len(self.layers) - 1:
                x = torch.relu(x)
        return _Out(x)

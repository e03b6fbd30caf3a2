"""Task families for meta-learning optimizers (Gautam 2024, 4.5-4.6), batched: N inner problems at once.

A :class:`Tasks` object holds N independent problems over ``theta in R^p`` and evaluates them together:
``loss(theta)`` and ``val_loss(theta)`` map ``(N, p)`` to ``(N,)``.  Because the problems do not share parameters,
``autograd.grad(loss(theta).sum(), theta)`` is the stack of the N per-task gradients, and elementwise optimizers
(SGD, Adam, RMSProp) applied to the ``(N, p)`` tensor run N independent optimizations.

Families: least squares (4.22) and its shifted fixed-design variant (4.17), Beverton-Holt system identification
with a 1-5-5-1 network (4.23), smooth interpolation with a 1-10-10-1 network (4.24).  The tuned SGD, Adam and
RMSProp baselines that run on these tasks are in :mod:`effcourse.dco.baselines`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

__all__ = [
    "LeastSquaresTasks",
    "MLPRegressionTasks",
    "Tasks",
    "beverton_holt_tasks",
    "interpolation_tasks",
    "least_squares_tasks",
    "mlp_forward",
    "mlp_num_params",
    "shifted_least_squares_tasks",
]

class Tasks:
    """N inner problems ``min_theta l_i(theta)`` with validation criteria ``l_i^val`` (4.6)."""

    p: int
    n_tasks: int

    def loss(self, theta: torch.Tensor) -> torch.Tensor:
        """Training losses ``l_i(theta_i)``, shape ``(N,)``."""
        raise NotImplementedError

    def val_loss(self, theta: torch.Tensor) -> torch.Tensor:
        """Validation losses ``l_i^val(theta_i)``, shape ``(N,)``."""
        raise NotImplementedError

    def init_params(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """Initial parameters ``theta_i^(1)``, shape ``(N, p)``."""
        raise NotImplementedError

    def subset(self, idx: torch.Tensor) -> Tasks:
        """The tasks with indices ``idx`` (a minibatch of tasks, Remark 14)."""
        raise NotImplementedError

    def grad(self, theta: torch.Tensor, create_graph: bool = False) -> torch.Tensor:
        """Per-task gradients ``G_i = grad l_i(theta_i)``, shape ``(N, p)``.

        With ``create_graph`` the result stays differentiable with respect to whatever produced ``theta`` (needed
        when the inner horizon T > 1, where later gradients depend on the meta-parameters).
        """
        with torch.enable_grad():
            if not theta.requires_grad:
                theta = theta.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(self.loss(theta).sum(), theta, create_graph=create_graph)
        return g

    def _check_theta(self, theta: torch.Tensor) -> None:
        if theta.dim() != 2 or theta.shape != (self.n_tasks, self.p):
            raise ValueError(f"theta must have shape (N, p) = ({self.n_tasks}, {self.p}); got {tuple(theta.shape)}")


def _gen(generator: torch.Generator | None) -> torch.Generator:
    """Random draws come from a CPU generator, so a seed gives the same tasks on every device."""
    return generator if generator is not None else torch.Generator().manual_seed(0)


def _check_count(name: str, v: int) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise ValueError(f"{name} must be a positive int; got {v!r}")
    return v


@dataclass
class LeastSquaresTasks(Tasks):
    """``l_i(theta) = ||X_i theta - y_i||^2`` (4.22), ``l_i^val = l_i``; ``X`` is ``(N, n, p)`` or shared ``(n, p)``."""

    X: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if self.y.dim() != 2:
            raise ValueError(f"y must have shape (N, n); got {tuple(self.y.shape)}")
        if self.X.dim() not in (2, 3) or self.X.shape[-2] != self.y.shape[1]:
            raise ValueError(f"X must have shape (N, n, p) or (n, p) with n={self.y.shape[1]}; "
                             f"got {tuple(self.X.shape)}")
        if self.X.dim() == 3 and self.X.shape[0] != self.y.shape[0]:
            raise ValueError(f"X and y disagree on the number of tasks: {self.X.shape[0]} vs {self.y.shape[0]}")
        self.n_tasks, self.p = self.y.shape[0], self.X.shape[-1]

    def loss(self, theta: torch.Tensor) -> torch.Tensor:
        self._check_theta(theta)
        pred = theta @ self.X.T if self.X.dim() == 2 else torch.bmm(self.X, theta.unsqueeze(-1)).squeeze(-1)
        return ((pred - self.y) ** 2).sum(-1)

    val_loss = loss

    def init_params(self, generator: torch.Generator | None = None) -> torch.Tensor:
        # theta^(1) = 0 for every task: the thesis does not say, and zero makes the step-0 loss ||y||^2 (about n).
        return torch.zeros(self.n_tasks, self.p, dtype=self.y.dtype, device=self.y.device)

    def subset(self, idx: torch.Tensor) -> LeastSquaresTasks:
        return LeastSquaresTasks(self.X if self.X.dim() == 2 else self.X[idx], self.y[idx])


def least_squares_tasks(n_tasks: int, p: int = 100, n: int = 100, *, generator: torch.Generator | None = None,
                        device: torch.device | str = "cpu", dtype: torch.dtype = torch.float64) -> LeastSquaresTasks:
    """(4.22): ``X in R^{n x p}`` and ``y in R^n`` with i.i.d. N(0, 1) entries, drawn afresh for each task."""
    _check_count("n_tasks", n_tasks), _check_count("p", p), _check_count("n", n)
    g = _gen(generator)
    X = torch.randn(n_tasks, n, p, generator=g, dtype=dtype)
    y = torch.randn(n_tasks, n, generator=g, dtype=dtype)
    return LeastSquaresTasks(X.to(device), y.to(device))


def shifted_least_squares_tasks(X: torch.Tensor, y: torch.Tensor, deltas: torch.Tensor) -> LeastSquaresTasks:
    """(4.17): task i is ``min ||X theta - (y + X Delta_i)||^2`` with a shared design ``X`` (``XᵀX`` invertible)."""
    if X.dim() != 2 or y.shape != (X.shape[0],) or deltas.dim() != 2 or deltas.shape[1] != X.shape[1]:
        raise ValueError(f"need X (n, p), y (n,), deltas (N, p); got {tuple(X.shape)}, {tuple(y.shape)}, "
                         f"{tuple(deltas.shape)}")
    return LeastSquaresTasks(X, y.unsqueeze(0) + deltas @ X.T)


# ---------------------------------------------------------------------------------------------- small networks
def mlp_num_params(sizes: Sequence[int]) -> int:
    """Number of weights and biases of a fully connected net with layer widths ``sizes`` (1-5-5-1 has 46)."""
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def mlp_forward(theta: torch.Tensor, x: torch.Tensor, sizes: Sequence[int]) -> torch.Tensor:
    """N networks at once: ``theta (N, p)`` flat parameters, ``x (N, m, sizes[0])`` -> ``(N, m, sizes[-1])``.

    Layout per layer: weight ``(out, in)`` row-major, then bias ``(out,)``.  Hidden layers use tanh.
    """
    h, k = x, 0
    n_layers = len(sizes) - 1
    for j, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = theta[:, k:k + a * b].reshape(-1, b, a)
        k += a * b
        bias = theta[:, k:k + b]
        k += b
        h = torch.baddbmm(bias.unsqueeze(1), h, w.transpose(1, 2))
        if j < n_layers - 1:
            h = torch.tanh(h)
    return h


@dataclass
class MLPRegressionTasks(Tasks):
    """Fit one small network per task by mean-squared error on its training points; validate by MSE (4.23)-(4.24)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    sizes: tuple[int, ...]

    def __post_init__(self) -> None:
        self.sizes = tuple(self.sizes)
        if len(self.sizes) < 2 or self.sizes[0] != 1 or self.sizes[-1] != 1:
            raise ValueError(f"sizes must run from 1 input to 1 output, e.g. (1, 5, 5, 1); got {self.sizes}")
        self.n_tasks, self.p = self.x_train.shape[0], mlp_num_params(self.sizes)

    def _mse(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self._check_theta(theta)
        return ((mlp_forward(theta, x, self.sizes) - y) ** 2).mean(dim=(1, 2))

    def loss(self, theta: torch.Tensor) -> torch.Tensor:
        return self._mse(theta, self.x_train, self.y_train)

    def val_loss(self, theta: torch.Tensor) -> torch.Tensor:
        return self._mse(theta, self.x_val, self.y_val)

    def init_params(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """Uniform fan-in initialization ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (torch's nn.Linear bounds)."""
        g = _gen(generator)
        parts = []
        for a, b in zip(self.sizes[:-1], self.sizes[1:]):
            bound = 1.0 / math.sqrt(a)
            parts.append((torch.rand(self.n_tasks, a * b + b, generator=g, dtype=self.x_train.dtype) * 2 - 1)
                         * bound)
        return torch.cat(parts, dim=1).to(self.x_train.device)

    def subset(self, idx: torch.Tensor) -> MLPRegressionTasks:
        return MLPRegressionTasks(self.x_train[idx], self.y_train[idx], self.x_val[idx], self.y_val[idx],
                                  self.sizes)


def _regression_tasks(f, x_lo: float, x_hi: float, n_tasks: int, n_train: int, n_val: int, noise_std: float,
                      sizes: Sequence[int], g: torch.Generator, device, dtype) -> MLPRegressionTasks:
    m = n_train + n_val
    x = x_lo + (x_hi - x_lo) * torch.rand(n_tasks, m, 1, generator=g, dtype=dtype)
    y = f(x) + noise_std * torch.randn(n_tasks, m, 1, generator=g, dtype=dtype)
    x, y = x.to(device), y.to(device)
    return MLPRegressionTasks(x[:, :n_train], y[:, :n_train], x[:, n_train:], y[:, n_train:], tuple(sizes))


def beverton_holt_tasks(n_tasks: int, n_train: int = 500, n_val: int = 100, noise_std: float = 0.1,
                        sizes: Sequence[int] = (1, 5, 5, 1), *, generator: torch.Generator | None = None,
                        device: torch.device | str = "cpu", dtype: torch.dtype = torch.float64
                        ) -> MLPRegressionTasks:
    """(4.23): pairs ``(n, R0 n / (K + n) + d)`` with ``R0, K ~ U(1, 2)``, ``n ~ U(0, 10)``, ``d ~ N(0, noise_std^2)``.

    The thesis writes ``N(0, 0.1)`` and says its second argument is a standard deviation; we follow that.
    """
    for name, v in (("n_tasks", n_tasks), ("n_train", n_train), ("n_val", n_val)):
        _check_count(name, v)
    if not noise_std >= 0:
        raise ValueError(f"noise_std must be >= 0; got {noise_std!r}")
    g = _gen(generator)
    r0 = 1 + torch.rand(n_tasks, 1, 1, generator=g, dtype=dtype)
    k = 1 + torch.rand(n_tasks, 1, 1, generator=g, dtype=dtype)
    return _regression_tasks(lambda n: r0 * n / (k + n), 0.0, 10.0, n_tasks, n_train, n_val, noise_std, sizes,
                             g, device, dtype)


def interpolation_tasks(n_tasks: int, n_train: int = 500, n_val: int = 100, x_range: float = 5.0,
                        sizes: Sequence[int] = (1, 10, 10, 1), *, generator: torch.Generator | None = None,
                        device: torch.device | str = "cpu", dtype: torch.dtype = torch.float64
                        ) -> MLPRegressionTasks:
    """(4.24): ``g(x) = a cos(b x) exp(-c |x|)`` with ``a, b, c ~ U(0, 1)``, ``x ~ U(-x_range, x_range)``, no noise.

    The thesis gives no x range; 5 shows a few oscillations and the decay.
    """
    for name, v in (("n_tasks", n_tasks), ("n_train", n_train), ("n_val", n_val)):
        _check_count(name, v)
    if not x_range > 0:
        raise ValueError(f"x_range must be > 0; got {x_range!r}")
    g = _gen(generator)
    a, b, c = (torch.rand(n_tasks, 1, 1, generator=g, dtype=dtype) for _ in range(3))
    return _regression_tasks(lambda x: a * torch.cos(b * x) * torch.exp(-c * x.abs()), -x_range, x_range, n_tasks,
                             n_train, n_val, 0.0, sizes, g, device, dtype)

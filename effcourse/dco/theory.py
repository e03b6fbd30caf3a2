"""Theorem 6 (Gautam 2024, 4.5): meta-trained DCO General Descent converges to the one-step rule on least squares.

On the shifted least-squares family (4.17), ``min ||X theta - (y + X Delta_i)||^2`` with a shared design X, one
step of DCOGD from ``theta_i^(1)`` with ``B* = (1/2)(XᵀX)^{-1}`` is a Newton step and lands on the task's
minimizer, so ``l_total(B*) = l*`` (4.21).  ``l_total`` is a quadratic in ``vec(B)`` with Hessian
``(2/N) sum_i G_i G_iᵀ ⊗ XᵀX``: strongly convex exactly when the ``G_i`` span R^p, and then gradient descent on B
converges linearly.  These helpers compute the pieces so a notebook can check every step numerically.
"""

from __future__ import annotations

import torch

from .tasks import LeastSquaresTasks

__all__ = ["best_fixed_general_descent", "meta_curvature", "optimal_general_descent", "optimal_value"]


def _check_design(X: torch.Tensor) -> None:
    if not isinstance(X, torch.Tensor) or X.dim() != 2 or X.shape[0] < X.shape[1]:
        raise ValueError(f"X must be an (n, p) tensor with n >= p (so XᵀX can be invertible); got "
                         f"{tuple(X.shape) if isinstance(X, torch.Tensor) else type(X).__name__}")


def optimal_general_descent(X: torch.Tensor) -> torch.Tensor:
    """``B* = (1/2)(XᵀX)^{-1}``: the DCOGD matrix that solves every task of (4.17) in one step (4.21)."""
    _check_design(X)
    return 0.5 * torch.linalg.inv(X.T @ X)


def optimal_value(X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``l* = ||X theta' - y||^2`` with ``theta' = (XᵀX)^{-1} Xᵀ y``, the same for every task.

    (The thesis prints ``||(XᵀX)^{-1} Xᵀ y - y||^2`` in (4.21); an X is missing there.)
    """
    _check_design(X)
    theta = torch.linalg.lstsq(X, y.unsqueeze(-1)).solution.squeeze(-1)
    return ((X @ theta - y) ** 2).sum()


def meta_curvature(G: torch.Tensor, X: torch.Tensor) -> tuple[float, float]:
    """``(mu, L)`` of ``l_total(B) = (1/N) sum_i ||X(theta_i - B G_i) - y_i||^2`` in ``vec(B)``.

    The Hessian is ``(2/N) (sum_i G_i G_iᵀ) ⊗ XᵀX`` and the eigenvalues of a Kronecker product are the products
    of the factors' eigenvalues.  ``mu = 0`` when the ``G_i`` do not span R^p.
    """
    _check_design(X)
    if G.dim() != 2 or G.shape[1] != X.shape[1]:
        raise ValueError(f"G must have shape (N, p) with p={X.shape[1]}; got {tuple(G.shape)}")
    n_tasks = G.shape[0]
    eg = torch.linalg.eigvalsh(G.T @ G).clamp_min(0)
    ex = torch.linalg.eigvalsh(X.T @ X)
    scale = 2.0 / n_tasks
    return float(scale * eg[0] * ex[0]), float(scale * eg[-1] * ex[-1])


def best_fixed_general_descent(tasks: LeastSquaresTasks, theta1: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
    """The exact minimizer over B of the one-step loss ``(1/N) sum_i ||X(theta_i - B G_i) - y_i||^2``.

    ``X B g = (gᵀ ⊗ X) vec(B)`` (column-stacking vec), so this is one linear least-squares problem in ``vec(B)``.
    ``G`` may be any per-task directions, e.g. normalized gradients, for which no B reaches ``l*``.
    """
    X = tasks.X
    _check_design(X)
    n_tasks, p = theta1.shape
    if G.shape != theta1.shape:
        raise ValueError(f"G must have the shape of theta1 {tuple(theta1.shape)}; got {tuple(G.shape)}")
    # rows of task i: kron(g_iᵀ, X) (n x p^2), built for all tasks at once with broadcasting
    A = (G[:, None, :, None] * X[None, :, None, :]).reshape(n_tasks * X.shape[0], p * p)
    b = (theta1 @ X.T - tasks.y).reshape(-1)
    v = torch.linalg.lstsq(A, b.unsqueeze(-1)).solution.squeeze(-1)
    return v.reshape(p, p).T  # undo the column stacking

"""Blocks with self-loops (Gautam 2024, sec. 2.5-2.6, Theorems 2 and 3): for ReLU they add nothing.

A block may feed back into itself through an upper-triangular ``A_{i,i}`` with ``-1 < diag(A_{i,i}) < 1`` (the
constraint of (2.13)); its features ``X_i = ReLU(X_i A_ii^T + X_prev A_prev^T + U B_i^T)`` are then implicit again.
Theorem 2 (one unit) and Theorem 3 (any size) say that the same features are an explicit strict block, (2.14):
:func:`nonstrict_to_strict` and :func:`strict_to_nonstrict` map between the two parametrizations,
:func:`explicit_block` evaluates (2.14) by back-substitution and :func:`implicit_block` solves the self-loop block
by Picard iteration.  Tensors are batch-first as in :mod:`effcourse.implicit.model`.
"""

from __future__ import annotations

import math

import torch

__all__ = ["explicit_block", "implicit_block", "nonstrict_to_strict", "picard_amplification", "strict_to_nonstrict"]


def _check_block(A_ii: torch.Tensor, A_prev: torch.Tensor, B_i: torch.Tensor) -> None:
    if A_ii.dim() != 2 or A_ii.shape[0] != A_ii.shape[1]:
        raise ValueError(f"A_ii must be square (n_i x n_i); got {tuple(A_ii.shape)}")
    ni = A_ii.shape[0]
    if A_prev.dim() != 2 or A_prev.shape[0] != ni or B_i.dim() != 2 or B_i.shape[0] != ni:
        raise ValueError(f"A_prev (n_i, sum n_j) and B_i (n_i, p) must have n_i = {ni} rows; got "
                         f"{tuple(A_prev.shape)} and {tuple(B_i.shape)}")
    if bool((torch.tril(A_ii, diagonal=-1) != 0).any()):
        raise ValueError("A_ii must be upper triangular ((A_ii)_kl = 0 for k > l, constraint of (2.13))")
    d = torch.diagonal(A_ii)
    if not bool(((d > -1) & (d < 1)).all()):
        raise ValueError(f"diag(A_ii) must lie in (-1, 1) (constraint of (2.13)); got range "
                         f"[{float(d.min()):.4g}, {float(d.max()):.4g}]")


def nonstrict_to_strict(A_ii: torch.Tensor, A_prev: torch.Tensor, B_i: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Theorems 2-3, forward direction: a ReLU block with self-loops -> the explicit coefficients of (2.14).

    Row ``k`` is divided by ``1 - (A_ii)_kk > 0``: ``Gamma_self = strict upper part of A_ii``, ``Gamma_prev =
    A_prev`` and ``Lambda = B_i``, all scaled row-wise.  Returns ``(Gamma_self, Gamma_prev, Lambda)``;
    ``Gamma_self`` is strictly upper triangular (zero when ``n_i = 1``: Theorem 2).
    """
    _check_block(A_ii, A_prev, B_i)
    scale = 1.0 / (1.0 - torch.diagonal(A_ii))[:, None]
    return torch.triu(A_ii, diagonal=1) * scale, A_prev * scale, B_i * scale


def strict_to_nonstrict(G_self: torch.Tensor, G_prev: torch.Tensor, Lam: torch.Tensor, eps: float = 0.5
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Theorems 2-3, converse: explicit coefficients -> a feasible self-loop block with ``diag(A_ii) = 1 - eps``.

    Off-diagonal entries are ``eps`` times the coefficients.  ``eps`` must lie in ``(0, 2)`` so that
    ``-1 < 1 - eps < 1`` (the thesis states only ``eps > 0``).  Returns ``(A_ii, A_prev, B_i)``.
    """
    if not (isinstance(eps, (int, float)) and 0 < eps < 2):
        raise ValueError(f"eps must lie in (0, 2) so that diag(A_ii) = 1 - eps is in (-1, 1); got {eps!r}")
    ni = G_self.shape[0]
    if G_self.dim() != 2 or G_self.shape[1] != ni:
        raise ValueError(f"G_self must be square (n_i x n_i); got {tuple(G_self.shape)}")
    if bool((torch.tril(G_self) != 0).any()):
        raise ValueError("G_self must be strictly upper triangular (only r > k enters row k of (2.14))")
    eye = torch.eye(ni, dtype=G_self.dtype, device=G_self.device)
    return (1 - eps) * eye + eps * G_self, eps * G_prev, eps * Lam


def explicit_block(G_self: torch.Tensor, G_prev: torch.Tensor, Lam: torch.Tensor, X_prev: torch.Tensor,
                   U: torch.Tensor) -> torch.Tensor:
    """Evaluate (2.14): ``(X_i)_k = ReLU(sum_{r>k} Gamma_self[k,r] (X_i)_r + Gamma_prev[k] . X_prev + Lambda[k] . U)``.

    Rows depend on later rows only, so they are filled by back-substitution ``k = n_i, ..., 1`` (a loop over the
    block's rows, each step batched over samples: a triangular recurrence has no parallel form).
    """
    ni = G_self.shape[0]
    base = X_prev @ G_prev.t() + U @ Lam.t()  # (m, n_i)
    X = torch.zeros_like(base)
    for k in range(ni - 1, -1, -1):
        X[:, k] = torch.relu(base[:, k] + X[:, k + 1:] @ G_self[k, k + 1:])
    return X


def picard_amplification(A_ii: torch.Tensor) -> float:
    """``||(I - |A_ii|)^{-1}||_inf`` (at least 1) for an upper-triangular ``A_ii`` with ``|diag| < 1``.

    The Picard map of :func:`implicit_block` has Jacobian ``J`` with ``|J| <= |A_ii|`` entry-wise, so an error
    made in one step is amplified over all later steps by at most ``sum_k |A_ii|^k = (I - |A_ii|)^{-1}`` (an
    M-matrix inverse, nonnegative).  For a strongly non-normal block (a diagonal near -1 or 1 and large entries
    above it) this is 1e4-1e6, and so is the factor by which rounding noise exceeds machine epsilon at the fixed
    point."""
    A = A_ii.detach().to(torch.float64)
    eye = torch.eye(A.shape[0], dtype=A.dtype, device=A.device)
    inv = torch.linalg.solve_triangular(eye - torch.triu(A.abs()), eye, upper=True)
    return float(inv.abs().sum(dim=1).max())


def implicit_block(A_ii: torch.Tensor, A_prev: torch.Tensor, B_i: torch.Tensor, X_prev: torch.Tensor,
                   U: torch.Tensor, rtol: float = 1e-13, max_iter: int = 20_000, patience: int = 200) -> torch.Tensor:
    """Solve the self-loop block ``X_i = ReLU(X_i A_ii^T + X_prev A_prev^T + U B_i^T)`` (the constraint of (2.13))
    by Picard iteration; it converges because ``lambda_PF(|A_ii|) = max |diag(A_ii)| < 1`` for triangular
    ``A_ii``.

    Stops when a step is at most ``rtol (1 + max|X|)``, or once rounding has taken over: the step has made no
    new minimum for ``patience`` steps and its minimum is below the rounding floor ``4 (n_i + 1) eps
    ||(I - |A_ii|)^{-1}||_inf (1 + max|X| + max|b|)`` (:func:`picard_amplification`).  Strongly non-normal blocks
    settle into a limit cycle at that level (steps of 1e-12 to 1e-11 for features of size 10-30) and never meet
    the plain relative test.  Raises ``RuntimeError`` when neither happens within ``max_iter`` steps."""
    _check_block(A_ii, A_prev, B_i)
    for name, v in (("max_iter", max_iter), ("patience", patience)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int; got {v!r}")
    b = X_prev @ A_prev.t() + U @ B_i.t()
    amp = picard_amplification(A_ii)
    unit = 4 * (A_ii.shape[0] + 1) * torch.finfo(b.dtype).eps * amp
    b_max, At = float(b.abs().max()), A_ii.t()
    x = torch.zeros_like(b)
    best, since, step = math.inf, 0, math.inf
    for _ in range(max_iter):
        x_new = torch.relu(torch.addmm(b, x, At))
        step = float((x_new - x).abs().max())
        x = x_new
        x_max = float(x.abs().max())
        if step <= rtol * (1 + x_max):
            return x
        if step < best:
            best, since = step, 0
        else:
            since += 1
        if since >= patience and best <= unit * (1 + x_max + b_max):
            return x
    raise RuntimeError(f"the self-loop block did not converge in {max_iter} steps (last step {step:.3g}, smallest "
                       f"{best:.3g}; rounding floor {unit * (1 + float(x.abs().max()) + b_max):.3g})")

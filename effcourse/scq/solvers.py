"""The convex program of soft convex quantization (Gautam 2024, (5.8)) and three ways to solve it.

For rows ``z`` (``n x F``), a ``K x F`` codebook and VQ's one-hot assignment ``p~``, (5.8) asks for the convex
weights ``p`` (rows on the probability simplex) minimizing ``|z - C p|^2 + lam |p - p~|^2``.  It separates over
the rows, so every solver here is batched over them:

* :func:`scq_exact`: Algorithm 8, an interior-point solve differentiated through its KKT conditions
  (cvxpylayers); exact, slow.
* :func:`scq_scalable`: Algorithm 9, the ridge solution :func:`scq_ridge` moved onto the simplex (the thesis's
  alternating projection, or the exact Euclidean one of :mod:`effcourse.scq.simplex`).
* :func:`scq_projected_gradient`: accelerated projected gradient, pure torch, to high accuracy (figures, checks).

All return ``(weights n x K, one-hot p~ n x K)``.
"""

from __future__ import annotations

import functools
import math
import warnings

import torch
from torch.autograd.function import once_differentiable

from .codebook import _check_positive_int, _distances, nearest_code, one_hot
from .simplex import _projection_vjp_, _threshold_projection, project_simplex, project_simplex_alternating

__all__ = ["PROJECTIONS", "scq_exact", "scq_objective", "scq_projected_gradient", "scq_quantize", "scq_ridge",
           "scq_scalable"]

PROJECTIONS = ("exact", "alternating")


def _check_rows(z: torch.Tensor, codebook: torch.Tensor) -> None:
    if z.dim() != 2 or codebook.dim() != 2 or z.shape[1] != codebook.shape[1]:
        raise ValueError(f"z must be n x F and codebook K x F with the same F; got {tuple(z.shape)} and "
                         f"{tuple(codebook.shape)}")


def _check_scq_args(z: torch.Tensor, codebook: torch.Tensor, lam: float, projection: str = "exact") -> None:
    _check_rows(z, codebook)
    if not (isinstance(lam, (int, float)) and lam > 0 and math.isfinite(lam)):
        raise ValueError(f"lam must be a positive finite number (the lambda of (5.8)); got {lam!r}")
    if projection not in PROJECTIONS:
        raise ValueError(f"projection must be one of {PROJECTIONS}; got {projection!r}")


def scq_objective(z: torch.Tensor, codebook: torch.Tensor, weights: torch.Tensor, onehot: torch.Tensor,
                  lam: float) -> torch.Tensor:
    """Per row, the objective of (5.8): ``|z - C p|^2 + lam |p - p~|^2`` (rows of ``z``, ``weights``,
    ``onehot``)."""
    _check_rows(z, codebook)
    if weights.shape != onehot.shape or weights.shape != (z.shape[0], codebook.shape[0]):
        raise ValueError(f"weights and onehot must both be n x K = {(z.shape[0], codebook.shape[0])}; got "
                         f"{tuple(weights.shape)} and {tuple(onehot.shape)}")
    return ((z - weights @ codebook) ** 2).sum(1) + lam * ((weights - onehot) ** 2).sum(1)


def scq_ridge(z: torch.Tensor, codebook: torch.Tensor, onehot: torch.Tensor, lam: float) -> torch.Tensor:
    """Alg. 9 step 3: the unconstrained minimizer of (5.8), ``(C^T C + lam I)^{-1} (C^T z + lam p~)``, for
    every row.

    One ``K x K`` system with ``n`` right-hand sides (the rows share the codebook), solved by
    ``torch.linalg.solve``.
    """
    _check_scq_args(z, codebook, lam)
    k = codebook.shape[0]
    a = codebook @ codebook.T + lam * torch.eye(k, device=codebook.device, dtype=codebook.dtype)
    b = codebook @ z.T + lam * onehot.T  # K x n
    return torch.linalg.solve(a, b).T


def _ridge_inverse(codebook: torch.Tensor, lam: float) -> torch.Tensor:
    """``M = (C^T C + lam I)^{-1}`` (``K x K``, symmetric), differentiable in the codebook."""
    eye = torch.eye(codebook.shape[0], device=codebook.device, dtype=codebook.dtype)
    return torch.linalg.solve(codebook @ codebook.T + lam * eye, eye)


def scq_scalable(z: torch.Tensor, codebook: torch.Tensor, lam: float, projection: str = "exact",
                 steps: int = 20) -> tuple[torch.Tensor, torch.Tensor]:
    """Algorithm 9 on rows ``z`` (``n x F``) and a ``K x F`` codebook: returns ``(weights n x K, one-hot p~ n
    x K)``.

    ``projection="alternating"`` is the thesis's ``steps`` rounds of orthant/hyperplane projection;
    ``projection="exact"`` replaces them with the exact Euclidean simplex projection (``steps`` is then
    unused). Gradients flow by autograd through the solve and the projection (the thesis does not state Alg.
    9's backward).
    """
    _check_scq_args(z, codebook, lam, projection)
    k = codebook.shape[0]
    idx = nearest_code(z, codebook)  # an index: no gradient to track
    # scq_ridge's solution rewritten for speed: with M = (C^T C + lam I)^{-1} (symmetric),
    # P = M C^T z + lam M p~, and M p~ is just the column (= row) idx of M: an n x K x F product and a gather
    # instead of a K x K solve against n right-hand sides.  In place where autograd allows (no backward here reads
    # its output): one n x K buffer, not four, and the same floats (gemm adds its product to the buffer last).
    m_inv = _ridge_inverse(codebook, lam)
    p = m_inv[idx].mul_(lam).addmm_(z, (m_inv @ codebook).T)
    p = project_simplex(p) if projection == "exact" else project_simplex_alternating(p, steps)
    return p, one_hot(idx, k, z.dtype)


class _ScalableQuantize(torch.autograd.Function):
    """Alg. 9 with the exact projection and ``z_q = p C``, as one autograd node over the ``n x K`` work.

    Inputs ``z`` (``n x F``), ``C`` (``K x F``), ``M = (C^T C + lam I)^{-1}`` and ``W = M C`` (autograd handles the
    ``K x K`` part); ``v = lam M[idx] + z W^T``, ``p = proj(v)``, ``z_q = p C``.  The backward is the chain of the
    separate ops' backwards, written out so that its ``n x K`` gradient lives in one buffer, updated in place:
    ``g_p = g_zq C^T``, the projection's ``g_v = m * (g_p - <g_p, m> / |m|)``, then ``g_z = g_v W``, ``g_W =
    g_v^T z`` and ``g_M = scatter-add of lam g_v`` over ``idx``; each in the same operation as autograd runs it,
    so the gradients are the same floats.  Forward: the distance buffer becomes ``v``, so three ``n x K`` buffers
    are new (distances, ``p``, the support) and one in the backward, against eight as separate ops (on a CPU a
    fresh buffer costs more than the arithmetic on it: page faults).
    """

    @staticmethod
    def forward(ctx, z: torch.Tensor, codebook: torch.Tensor, m_inv: torch.Tensor,  # type: ignore[override]
                w: torch.Tensor, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
        d = _distances(z, codebook)
        idx = d.argmin(dim=1)
        v = torch.index_select(m_inv, 0, idx, out=d).mul_(lam).addmm_(z, w.T)  # d is no longer needed
        p, support, _ = _threshold_projection(v)
        ctx.save_for_backward(z, codebook, w, p, support, idx)
        ctx.lam = lam
        ctx.mark_non_differentiable(p)
        ctx.set_materialize_grads(False)  # p has no gradient: no n x K buffer of zeros for it
        return p @ codebook, p

    @staticmethod
    @once_differentiable  # a first-order backward: asking for a second order raises instead of returning zeros
    def backward(ctx, g_zq: torch.Tensor, _g_p: torch.Tensor | None  # type: ignore[override]
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, None]:
        z, codebook, w, p, m, idx = ctx.saved_tensors
        if g_zq is None:  # z_q unused downstream
            return None, None, None, None, None
        g_c = p.T @ g_zq
        g_v = _projection_vjp_((g_zq @ codebook.T).mul_(m), m)
        g_z, g_w = g_v @ w, g_v.T @ z  # as mm's backward runs them for z @ w.T (w.T is column-major)
        g_m = torch.zeros(m.shape[1], m.shape[1], device=m.device, dtype=m.dtype)
        g_m.index_put_((idx,), g_v.mul_(ctx.lam), accumulate=True)
        return g_z, g_c, g_m, g_w, None


def scq_quantize(z: torch.Tensor, codebook: torch.Tensor, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft convex quantization of rows ``z`` (``n x F``): ``(z_q = p C, p)`` with ``p`` the weights of
    :func:`scq_scalable` with the exact projection, the same floats, and ``z_q``'s gradient w.r.t. ``z`` and the
    codebook the same as autograd's through :func:`scq_scalable`.  The layer's fast path: one autograd node, the
    weights ``p`` returned detached (no one-hot).
    """
    _check_scq_args(z, codebook, lam)
    m_inv = _ridge_inverse(codebook, lam)
    return _ScalableQuantize.apply(z, codebook, m_inv, m_inv @ codebook, float(lam))


def scq_projected_gradient(z: torch.Tensor, codebook: torch.Tensor, lam: float, iters: int = 500
                           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Solve (5.8) to high accuracy by accelerated projected gradient (FISTA with the exact simplex projection).

    A batched, pure-torch alternative to the interior-point solve of Alg. 8: the objective is smooth with Lipschitz
    gradient ``L = 2 (lambda_max(C^T C) + lam)``, so ``iters`` steps of size ``1/L`` from ``p~`` converge to the
    unique minimizer (``lam > 0`` makes it strongly convex).  Returns ``(weights n x K, one-hot p~ n x K)``; meant
    for evaluation and figures (wrap in ``torch.no_grad()``), not differentiated.
    """
    _check_scq_args(z, codebook, lam)
    _check_positive_int("iters", iters)
    idx = nearest_code(z, codebook)
    onehot = one_hot(idx, codebook.shape[0], z.dtype)
    gram = codebook @ codebook.T
    lip = 2.0 * (torch.linalg.eigvalsh(gram).max() + lam)
    czt = z @ codebook.T  # n x K, the C^T z term of the gradient
    p = y = onehot
    t = 1.0
    for _ in range(iters):  # iterations, each batched over all rows
        grad = 2.0 * (y @ gram - czt) + 2.0 * lam * (y - onehot)
        p_next = project_simplex(y - grad / lip)
        t_next = (1.0 + math.sqrt(1.0 + 4.0 * t * t)) / 2.0
        y = p_next + ((t - 1.0) / t_next) * (p_next - p)
        p, t = p_next, t_next
    return p, onehot


@functools.lru_cache(maxsize=16)
def _exact_layer(num_codes: int, dim: int, lam: float):
    import cvxpy as cp
    from cvxpylayers.torch import CvxpyLayer

    p = cp.Variable(num_codes)
    c = cp.Parameter((dim, num_codes))   # the thesis's C (F x K): codes in columns
    z = cp.Parameter(dim)
    pt = cp.Parameter(num_codes)
    # lam is a constant, not a Parameter: lam * sum_squares(p - pt) with lam a Parameter is not DPP.
    obj = cp.Minimize(cp.sum_squares(z - c @ p) + lam * cp.sum_squares(p - pt))
    prob = cp.Problem(obj, [p >= 0, cp.sum(p) == 1])
    assert prob.is_dpp()
    return CvxpyLayer(prob, parameters=[c, z, pt], variables=[p])


def scq_exact(z: torch.Tensor, codebook: torch.Tensor, lam: float,
              solver_args: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Algorithm 8: solve (5.8) exactly with cvxpylayers; returns ``(weights n x K, one-hot p~ n x K)``.

    (5.8) separates over the ``n`` columns of ``P`` (rows here), so it is one ``K``-variable QP per row,
    batched by cvxpylayers; gradients w.r.t. ``z`` and the codebook come from differentiating its KKT
    conditions.  Solved in float64 on the CPU (the default conic solver); practical for a few hundred rows,
    not for training.
    """
    _check_scq_args(z, codebook, lam)
    k, f = codebook.shape
    idx = nearest_code(z, codebook)  # an index: no gradient to track
    onehot = one_hot(idx, k, z.dtype)
    layer = _exact_layer(k, f, float(lam))
    args = {"eps": 1e-10} if solver_args is None else solver_args
    dev, dt = z.device, z.dtype
    with warnings.catch_warnings():  # diffcp's NumPy-2 deprecation notices, one per problem in the batch
        warnings.simplefilter("ignore", DeprecationWarning)
        (p,) = layer(codebook.T.double().cpu(), z.double().cpu(), onehot.double().cpu(), solver_args=args)
    return p.to(device=dev, dtype=dt), onehot

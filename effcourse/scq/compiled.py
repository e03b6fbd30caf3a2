"""Soft convex quantization with its ``n x K`` work fused by ``torch.compile`` (Gautam 2024, Alg. 9 with the exact
projection; the ``full``-scale fast path).

:func:`effcourse.scq.solvers.scq_quantize` runs Alg. 9 as separate eager operations, each a pass over an ``n x K``
buffer: distances, argmin, the ridge solution, the projection's start, its support and count, and in the backward
the projection's vector-Jacobian product.  Here those passes are four compiled functions (plus the matrix products
they call): the forward up to the projection's first threshold, the threshold rounds of the rows that need them,
the write of those rows' weights, and the backward.  The maths is the same (the exact Euclidean projection, found
by Michelot's iteration from below, and the same closed-form backward); the floats are not, because the compiled
reductions add in another order.  So the book's ``smoke`` and ``book`` runs, which promise bit-for-bit repeatable
numbers, use the eager path, and this one is for ``full`` scale.  The first call at a new shape compiles (seconds).
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from .simplex import _sort_threshold
from .solvers import _check_scq_args, _ridge_inverse

__all__ = ["scq_quantize_compiled"]

# Threshold rounds per compiled call between two looks at which rows have converged (one host sync per look).
_ROUNDS_PER_CALL = 2
_COMPILED: dict[str, object] = {}


def _front(z: torch.Tensor, codebook: torch.Tensor, m_inv: torch.Tensor, w: torch.Tensor, lam: float
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Nearest codes (5.1), the ridge solution ``v = lam M[idx] + z W^T`` (Alg. 9 step 3) and the projection's start
    ``p = max(v - theta_0, 0)``, ``theta_0 = max(v) - 1``: ``(v, p, idx, theta_0, support size)``."""
    # |z|^2 - 2 z.c + |c|^2 with the product in one addmm: fewer n x K passes than three terms
    d = torch.addmm((z * z).sum(1, keepdim=True), z, codebook.T, alpha=-2.0) + (codebook * codebook).sum(1)
    idx = d.argmin(1)
    v = lam * m_inv[idx] + z @ w.T
    theta = v.amax(-1, keepdim=True) - 1.0
    p = (v - theta).clamp_min(0.0)
    return v, p, idx, theta, (p > 0).sum(-1)


def _rounds(v: torch.Tensor, theta: torch.Tensor, used: torch.Tensor
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``_ROUNDS_PER_CALL`` rounds of Michelot's iteration from below on rows ``v``: ``(theta, used, done)``.

    ``used`` is the size of the support that gave the current ``theta``.  A round takes the support ``S = {v >
    theta}`` and moves to ``max(theta, (sum_S v - 1) / |S|)``; the max keeps ``theta`` non-decreasing also in
    floating point, so the support only shrinks and the loop cannot cycle, and no mask has to be stored: a round
    reads ``v`` once.  A row is done when ``|S|`` equals ``used``: its support no longer changes and ``theta`` is
    Michelot's fixed point, the exact projection's threshold.  (The rows come gathered: an indexed load inside the
    reduction is several times slower on a CPU than one copy first.)
    """
    for _ in range(_ROUNDS_PER_CALL):
        support = v > theta
        size = support.sum(-1, keepdim=True).to(v.dtype)
        done = size == used
        theta = torch.maximum(theta, (torch.where(support, v, 0.0).sum(-1, keepdim=True) - 1.0) / size)
        used = size
    return theta, used, done


def _finish(p: torch.Tensor, v: torch.Tensor, rows: torch.Tensor, theta: torch.Tensor) -> None:
    """``p[rows] = max(v[rows] - theta, 0)``, in place, in one pass."""
    p.index_put_((rows,), (v[rows] - theta).clamp_min(0.0))


def _back(g_zq: torch.Tensor, z: torch.Tensor, codebook: torch.Tensor, w: torch.Tensor, p: torch.Tensor,
          idx: torch.Tensor, lam: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of ``z_q = p C`` w.r.t. ``(z, C, M, W)`` through the projection's closed form ``g_v = m * (g_p -
    <g_p, m> / |m|)`` (support ``m = p > 0``) and ``v = lam M[idx] + z W^T``."""
    g_p = g_zq @ codebook.T
    m = p > 0
    mean = torch.where(m, g_p, 0.0).sum(-1, keepdim=True) / m.sum(-1, keepdim=True).clamp_min(1)
    g_v = torch.where(m, g_p - mean, 0.0)
    k = codebook.shape[0]
    g_m = torch.zeros(k, k, device=g_v.device, dtype=g_v.dtype).index_put_((idx,), lam * g_v, accumulate=True)
    return g_v @ w, p.T @ g_zq, g_m, g_v.T @ z


def _kernel(name: str):
    if name not in _COMPILED:
        fn = {"front": _front, "rounds": _rounds, "finish": _finish, "back": _back}[name]
        # the rounds see a different number of rows each call: one graph for all of them
        _COMPILED[name] = torch.compile(fn, dynamic=name in ("rounds", "finish"))
    return _COMPILED[name]


def _project(v: torch.Tensor, p: torch.Tensor, theta: torch.Tensor, count: torch.Tensor) -> None:
    """Finish the exact projection in ``p`` (in place) for the rows whose start support has more than one entry
    (``count``, at ``theta = max(v) - 1``; the other rows are exact already)."""
    active = torch.nonzero((count != 1) & (count != 0)).squeeze(-1)
    if not active.numel():
        return
    va, ta = v.index_select(0, active), theta.index_select(0, active)
    used = torch.ones_like(ta)  # theta_0 is the threshold of the largest entry alone
    pos, vr, rounds = None, va, 0  # pos: the positions in va of the rows still running (None: all of them)
    while rounds < v.shape[1]:
        t, u, done = _kernel("rounds")(vr, ta if pos is None else ta[pos], used if pos is None else used[pos])
        rounds += _ROUNDS_PER_CALL
        if pos is None:
            ta, used = t, u
        else:
            ta.index_copy_(0, pos, t)
            used.index_copy_(0, pos, u)
        running = torch.nonzero(~done.squeeze(-1)).squeeze(-1)  # the sync: which rows go on
        if not running.numel():
            break
        if 2 * running.numel() <= vr.shape[0]:  # few left: go on with those rows only
            pos = running if pos is None else pos[running]
            vr = va.index_select(0, pos)
    else:  # exact full-sort fallback (only for non-finite input)
        pos = torch.arange(active.numel(), device=v.device) if pos is None else pos
        ta.index_copy_(0, pos, _sort_threshold(va.index_select(0, pos)))
    _kernel("finish")(p, v, active, ta)


class _CompiledQuantize(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z: torch.Tensor, codebook: torch.Tensor, m_inv: torch.Tensor,  # type: ignore[override]
                w: torch.Tensor, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
        v, p, idx, theta, count = _kernel("front")(z, codebook, m_inv, w, lam)
        _project(v, p, theta, count)
        ctx.save_for_backward(z, codebook, w, p, idx)
        ctx.lam = lam
        ctx.mark_non_differentiable(p)
        ctx.set_materialize_grads(False)
        return p @ codebook, p

    @staticmethod
    @once_differentiable
    def backward(ctx, g_zq: torch.Tensor, _g_p: torch.Tensor | None  # type: ignore[override]
                 ) -> tuple[torch.Tensor | None, ...]:
        if g_zq is None:
            return None, None, None, None, None
        z, codebook, w, p, idx = ctx.saved_tensors
        return (*_kernel("back")(g_zq.contiguous(), z, codebook, w, p, idx, ctx.lam), None)


def scq_quantize_compiled(z: torch.Tensor, codebook: torch.Tensor, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`effcourse.scq.solvers.scq_quantize` with its ``n x K`` passes fused by ``torch.compile``: ``(z_q = p
    C, p)``, the same maths (Alg. 9, the exact projection, the closed-form backward) up to rounding, the weights
    ``p`` detached.  The first call at a new shape or dtype compiles."""
    _check_scq_args(z, codebook, lam)
    m_inv = _ridge_inverse(codebook, lam)
    return _CompiledQuantize.apply(z, codebook, m_inv, m_inv @ codebook, float(lam))

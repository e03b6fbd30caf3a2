"""Projections onto the probability simplex, row by row (Gautam 2024, Alg. 9 steps 4-5 and an exact
alternative).

Both functions act on the last dimension of a tensor: every row ``v`` is mapped towards ``{p : p >= 0, sum(p)
= 1}``.  :func:`project_simplex` is the exact Euclidean projection ``argmin_p ||p - v||`` (a sort and a
cumulative sum); :func:`project_simplex_alternating` is the thesis's alternation between the non-negative
orthant and the hyperplane ``1^T p = 1``, which lands on the simplex only in the limit of many steps and, even
then, not on the Euclidean projection in general.
"""

from __future__ import annotations

import torch

__all__ = ["project_simplex", "project_simplex_alternating", "simplex_violation"]


def _check(v: torch.Tensor, name: str = "v") -> None:
    if not isinstance(v, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor; got {type(v).__name__}")
    if v.dim() < 1 or v.shape[-1] < 1:
        raise ValueError(f"{name} must have at least one dimension with at least one entry; "
                         f"got shape {tuple(v.shape)}")
    if not v.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor; got dtype {v.dtype}")


def project_simplex(v: torch.Tensor, method: str = "threshold") -> torch.Tensor:
    """Exact Euclidean projection of every row of ``v`` (last dimension) onto the probability simplex.

    The projection is ``max(v - theta, 0)`` with the one threshold ``theta`` that makes the row sum to one.  Two
    exact ways to find it (same result, both differentiable almost everywhere by autograd):

    * ``"sort"``: sort the row decreasingly, ``u_1 >= u_2 >= ...``; the support is the largest ``j`` with
      ``u_j > (u_1 + ... + u_j - 1) / j`` and ``theta`` is that right-hand side (``O(K log K)`` per row).
    * ``"threshold"`` (Michelot's algorithm): start from ``theta = (sum(v) - 1) / K`` and repeat
      ``theta = (sum of the entries above theta - 1) / (their count)``.  ``theta`` only grows and the set of entries
      above it only shrinks, so the loop ends, at the exact projection, after at most ``K`` rounds (a few in
      practice); each round is a batched masked sum, cheaper than a sort when supports are small.
    """
    _check(v)
    if method not in ("threshold", "sort"):
        raise ValueError(f"method must be 'threshold' or 'sort'; got {method!r}")
    k = v.shape[-1]
    if method == "sort":
        u, _ = torch.sort(v, dim=-1, descending=True)
        css = u.cumsum(dim=-1) - 1.0
        j = torch.arange(1, k + 1, device=v.device, dtype=v.dtype)
        # The condition holds on a prefix 1..rho, so counting the True entries gives rho (always >= 1).
        rho = (u - css / j > 0).sum(dim=-1, keepdim=True)
        theta = css.gather(-1, rho - 1) / rho.to(v.dtype)
        return torch.clamp(v - theta, min=0.0)
    with torch.no_grad():  # find the support; the differentiable threshold is recomputed from it below
        vd = v.detach()
        theta = (vd.sum(-1, keepdim=True) - 1.0) / k
        mask = vd > theta
        for _ in range(k):  # rounds, each batched over all rows; ends long before k in practice
            theta = ((vd * mask).sum(-1, keepdim=True) - 1.0) / mask.sum(-1, keepdim=True)
            new = vd > theta
            if torch.equal(new, mask):
                break
            mask = new
    m = mask.to(v.dtype)
    theta = ((v * m).sum(-1, keepdim=True) - 1.0) / m.sum(-1, keepdim=True)
    return torch.clamp(v - theta, min=0.0)


def project_simplex_alternating(v: torch.Tensor, steps: int) -> torch.Tensor:
    """Algorithm 9, steps 4-5: ``steps`` rounds of clipping at zero, then shifting onto ``sum(p) = 1``.

    The hyperplane step comes last, so rows always sum to one, but entries can stay negative until the
    alternation has converged (the result is then an affine, not a convex, combination).  ``steps=0`` returns
    ``v`` unchanged.
    """
    _check(v)
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"steps must be a non-negative int; got {steps!r}")
    k = v.shape[-1]
    p = v
    for _ in range(steps):  # a loop over iterations, not over elements: each step is batched
        p = torch.clamp(p, min=0.0)
        p = p - (p.sum(dim=-1, keepdim=True) - 1.0) / k
    return p


def simplex_violation(p: torch.Tensor) -> torch.Tensor:
    """Per row, the larger of the most negative entry's magnitude and ``|sum(p) - 1|`` (0 on the simplex)."""
    _check(p, "p")
    neg = torch.clamp(-p, min=0.0).amax(dim=-1)
    return torch.maximum(neg, (p.sum(dim=-1) - 1.0).abs())

"""Projections onto the probability simplex, row by row (Gautam 2024, Alg. 9 steps 4-5 and an exact
alternative).

Both functions act on the last dimension of a tensor: every row ``v`` is mapped towards ``{p : p >= 0, sum(p)
= 1}`` (the constraint set of (5.8)).  :func:`project_simplex` is the exact Euclidean projection ``argmin_p
||p - v||``; :func:`project_simplex_alternating` is the thesis's alternation between the non-negative orthant and
the hyperplane ``1^T p = 1`` (Alg. 9 steps 4-5), which lands on the simplex only in the limit of many steps and,
even then, not on the Euclidean projection in general.
"""

from __future__ import annotations

import torch

__all__ = ["project_simplex", "project_simplex_alternating", "simplex_violation"]

# Rounds of the threshold iteration run between two looks at which rows have converged.  Each look is one host
# sync (it decides which rows stay in the loop), so looking every round would stall a GPU once per round; rows
# that converge in between simply repeat their last round unchanged.
_CHECK_EVERY = 2


def _check(v: torch.Tensor, name: str = "v") -> None:
    if not isinstance(v, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor; got {type(v).__name__}")
    if v.dim() < 1 or v.shape[-1] < 1:
        raise ValueError(f"{name} must have at least one dimension with at least one entry; "
                         f"got shape {tuple(v.shape)}")
    if not v.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor; got dtype {v.dtype}")


def _sort_threshold(v: torch.Tensor) -> torch.Tensor:
    """The exact threshold of every row of a 2-d ``v`` by a full sort (``O(K log K)`` per row), ``n x 1``."""
    k = v.shape[-1]
    u, _ = torch.sort(v, dim=-1, descending=True)
    css = u.cumsum(dim=-1) - 1.0
    j = torch.arange(1, k + 1, device=v.device, dtype=v.dtype)
    # The condition holds on a prefix 1..rho, so counting the True entries gives rho (always >= 1).
    rho = (u - css / j > 0).sum(dim=-1, keepdim=True)
    return css.gather(-1, rho - 1) / rho.to(v.dtype)


def _round(v: torch.Tensor, mask: torch.Tensor, count: torch.Tensor, work: torch.Tensor
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One round of Michelot's iteration with a monotone support, on the rows of ``v`` (``m x K``).

    ``mask`` is the current support as 0/1 floats (a float mask: no bool-to-float cast per round) and ``count``
    its size; the threshold is ``theta = (sum of v on the support - 1) / count``, and the new support keeps the
    coordinates of the old one that are still above it.  A coordinate that left never re-enters, so the loop
    cannot cycle (the old loop's failure: one coordinate flipping in and out at rounding level), and a row whose
    count did not change is at its fixed point: the same support gives bit for bit the same threshold again.
    ``work`` (``v``'s shape) is scratch memory that receives the new mask, so a round allocates nothing of
    ``v``'s size (fresh large buffers cost page faults on a CPU).  Returns ``(theta, new mask, new count)``.
    """
    theta = (torch.mul(v, mask, out=work).sum(-1, keepdim=True) - 1.0) / count
    # sign of a non-negative tensor: 1 above theta, 0 elsewhere; times the old mask: monotone
    new = torch.sub(v, theta, out=work).relu_().sign_().mul_(mask)
    return theta, new, new.sum(-1, keepdim=True)


def _threshold_projection(v: torch.Tensor, max_rounds: int | None = None
                          ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Exact projection of the rows of a 2-d ``v`` (``n x K``): returns ``(p, support, rounds)``: the support
    ``p > 0`` as 0/1 floats, and how many threshold rounds ran after the start (0: the start was exact for every
    row).

    Start: ``theta_0 = max(v) - 1``, the threshold of the top-1 partial sum.  Any subset ``A`` of a row gives a
    lower bound ``(sum_A v - 1) / |A| <= theta*`` (``sum max(v - t, 0) - 1`` is non-negative there), so the first
    support ``{v > theta_0}`` contains the optimal one and the rounds only shrink it.  Where that support is the
    largest entry alone, ``theta_0`` is already Michelot's fixed point: most of SCQ's rows, which are VQ-like.
    (A top-k start costs as much as a full sort on a CPU; a max is one pass.)  The other rows converge in a few
    rounds.

    Rounds run on the not-yet-converged rows only: every ``_CHECK_EVERY`` rounds the done rows are dropped (the
    one host sync), so the bulk of the batch costs four passes (max, subtract, sign, sum).  Each non-final round
    removes at least one coordinate from a row's support, so ``K`` rounds always suffice; rows still running after
    ``max_rounds`` (only with a smaller cap, or NaN input) get the exact sort-based threshold.  The threshold is
    always Michelot's ``(sum of v on the support - 1) / its size``, the formula of the loop it replaces, so rows
    come out bit for bit as before wherever the supports agree (the chapter's training runs amplify rounding).
    """
    n, k = v.shape
    cap = k if max_rounds is None else max_rounds
    theta = v.amax(-1, keepdim=True) - 1.0
    p = torch.sub(v, theta).relu_()
    # The support as 0/1 floats (a float mask: summing a bool one costs an int64 copy of it on a CPU), kept up to
    # date for the rows that go on and returned: the backward's mask.
    support = torch.sign(p)
    count = support.sum(-1)
    # count 1: the largest entry alone, exact; count 0: every entry rounded away (|v| beyond 2^24 in float32),
    # where no threshold can do better
    active = torch.nonzero((count != 1.0) & (count != 0.0)).squeeze(-1)
    rounds = 0
    if active.numel():
        # index_select: several times faster on a CPU than v[active]
        va, mask = v.index_select(0, active), support.index_select(0, active)
        ca = mask.sum(-1, keepdim=True)
    while active.numel() and rounds < cap:
        work = torch.empty_like(va)
        for _ in range(min(_CHECK_EVERY, cap - rounds)):
            ta, new, cn = _round(va, mask, ca, work)
            done, ca, mask, work = cn == ca, cn, new, mask  # the old mask is the next round's scratch
            rounds += 1
        # the final threshold of a done row is ta: its support did not change in the last round
        pa = torch.sub(va, ta, out=work).clamp_(min=0.0)
        p.index_copy_(0, active, pa)
        support.index_copy_(0, active, torch.sign(pa))  # from p itself, as the backward has always read it
        keep = ~done.squeeze(-1)  # the sync: which rows go on
        active, va, mask, ca = active[keep], va[keep], mask[keep], ca[keep]
    if active.numel():  # exact full-sort fallback (unreachable with the default cap on finite input)
        pa = (va - _sort_threshold(va)).relu_()
        p.index_copy_(0, active, pa)
        support.index_copy_(0, active, torch.sign(pa))
    return p, support, rounds


class _SimplexProjection(torch.autograd.Function):
    """The exact projection with its closed-form backward (no graph through the iteration).

    With support ``m`` (``p_i > 0``) the projection is locally ``p = m * (v - theta)`` with ``theta = (<m, v> -
    1) / |m|``, so its Jacobian is ``diag(m) - m m^T / |m|`` (symmetric) and the vector-Jacobian product is
    ``g_v = m * (g - <g, m> / |m|)``: two passes over the rows instead of autograd through every round.
    """

    @staticmethod
    def forward(ctx, v: torch.Tensor, max_rounds: int | None,  # type: ignore[override]
                stats: dict[str, int] | None) -> torch.Tensor:
        shape = v.shape
        p, support, rounds = _threshold_projection(v.detach().reshape(-1, shape[-1]), max_rounds)
        ctx.save_for_backward(support)
        if stats is not None:
            stats["rounds"] = rounds
        return p.reshape(shape)

    @staticmethod
    def backward(ctx, g: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # type: ignore[override]
        # The support as 0/1 floats, sign(p) of the result itself rather than the loop's last mask: where the two
        # differ (a coordinate within rounding of theta) this is what the autograd of clamp(v - theta) gave.
        (m,) = ctx.saved_tensors
        return _projection_vjp_(g.reshape(m.shape) * m, m).reshape(g.shape), None, None


def _projection_vjp_(gm: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """The projection's vector-Jacobian product ``m * (g - <g, m> / |m|)``, in place on ``gm = g * m`` (``n x
    K``) with ``m`` the 0/1 support; returns ``gm``."""
    # clamp: a row whose entries all rounded to zero (huge scales) has an empty support and gets g_v = 0
    mean = gm.sum(-1, keepdim=True) / m.sum(-1, keepdim=True).clamp_min(1.0)
    return gm.addcmul_(m, mean, value=-1.0)


def project_simplex(v: torch.Tensor, method: str = "threshold", *, max_rounds: int | None = None,
                    return_rounds: bool = False) -> torch.Tensor | tuple[torch.Tensor, int]:
    """Exact Euclidean projection of every row of ``v`` (last dimension) onto the probability simplex.

    The projection is ``max(v - theta, 0)`` with the one threshold ``theta`` that makes the row sum to one (the
    constraint set of (5.8); Alg. 9 step 4-5 approximates it).  Two exact ways to find it (same result):

    * ``"sort"``: sort the row decreasingly, ``u_1 >= u_2 >= ...``; the support is the largest ``j`` with
      ``u_j > (u_1 + ... + u_j - 1) / j`` and ``theta`` is that right-hand side (``O(K log K)`` per row);
      differentiated by autograd.  The reference.
    * ``"threshold"`` (default; Michelot's algorithm as Newton's method from below): start from ``theta = max(v)
      - 1``, a lower bound that is already exact for rows whose support is one entry, and repeat ``theta = (sum
      of the entries above theta - 1) / (their count)``, never letting ``theta`` decrease, so the support only
      shrinks and the loop cannot cycle; converged rows leave the loop, which stops after at most ``K`` rounds
      (2-4 on SCQ's ridge solutions).  Its backward is the closed form ``g_v = m * (g - <g, m> / |m|)`` with
      ``m`` the support, in a custom ``autograd.Function``.

    ``max_rounds`` caps the threshold rounds (default ``K``, always enough); rows still running then get the
    sort's exact threshold.  ``return_rounds=True`` also returns how many rounds ran after the start (a
    diagnostic; 0 for ``"sort"``).
    """
    _check(v)
    if method not in ("threshold", "sort"):
        raise ValueError(f"method must be 'threshold' or 'sort'; got {method!r}")
    if max_rounds is not None and (not isinstance(max_rounds, int) or isinstance(max_rounds, bool)
                                   or max_rounds < 0):
        raise ValueError(f"max_rounds must be a non-negative int or None; got {max_rounds!r}")
    if method == "sort":
        shape = v.shape
        vf = v.reshape(-1, shape[-1])
        p = torch.clamp(vf - _sort_threshold(vf), min=0.0).reshape(shape)
        return (p, 0) if return_rounds else p
    stats: dict[str, int] = {}
    p = _SimplexProjection.apply(v, max_rounds, stats)
    return (p, stats["rounds"]) if return_rounds else p


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

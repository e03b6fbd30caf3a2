"""The exact sparsification problem of Savarese (2025), 4.1, solved by enumeration on tiny least squares.

Definitions 4.1-4.3 re-frame ``min_theta L(f(theta)) + lambda ||theta||_0`` (4.1) as a search over binary masks
(4.5) and, structured, over rows (4.3).  :func:`brute_force_l0` enumerates every support, so the re-framings can
be compared exactly; :func:`reframings_agree` runs that comparison on the chapter's two planted problems.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["brute_force_l0", "planted_problems", "reframings_agree"]


def brute_force_l0(x: torch.Tensor, y: torch.Tensor, lam: float, form: str = "weights", groups: str = "entries",
                   p: float = 1.0, tol: float = 1e-9) -> tuple[float, torch.Tensor]:
    """Solve the l0-regularized least-squares problem ``min_W ||x W^T - y||^2 / (2n) + lam * ||W||_0`` exactly.

    Every support is enumerated (batched), so the weight count (``k * d`` entries, or ``k`` rows) must be <= 14.
    ``form="weights"`` is Def. 4.1 / (4.1): for each support, the best ``W`` vanishing off it, penalized by its own
    number of non-zeros.  ``form="mask"`` is Def. 4.2 / (4.5): a binary mask ``m`` times a free ``W`` (the
    minimum-norm least-squares fit of ``x`` restricted by ``m``), penalized by ``||m||_p^p``.  ``groups="rows"`` is
    the structured version (4.3): a group is a row of ``W`` (a neuron's incoming weights).  ``y`` is ``n x k``.
    Returns the optimal objective and the optimal group mask.
    """
    if form not in ("weights", "mask"):
        raise ValueError(f"form must be 'weights' or 'mask'; got {form!r}")
    if groups not in ("entries", "rows"):
        raise ValueError(f"groups must be 'entries' or 'rows'; got {groups!r}")
    if y.dim() == 1:
        y = y[:, None]
    n, d = x.shape
    k = y.shape[1]
    g = k * d if groups == "entries" else k
    if g > 14:
        raise ValueError(f"brute force enumerates 2^{g} supports; use at most 14 groups (entries or rows)")
    codes = torch.arange(2 ** g)
    gm = ((codes[:, None] >> torch.arange(g)) & 1).to(x.dtype)               # S x g group masks
    em = gm.view(-1, k, d) if groups == "entries" else gm[:, :, None].expand(-1, k, d)  # S x k x d entry masks
    if form == "weights":
        gram, rhs = x.T @ x, y.T @ x                                            # d x d, k x d
        dm = torch.diag_embed(em)                                               # S x k x d x d
        eye = torch.eye(d, dtype=x.dtype)
        # eliminate the zeroed coordinates: (D G D + I - D) w = D x^T y has w = 0 off the support
        a = dm @ gram @ dm + eye - dm
        w = torch.linalg.solve(a, (em * rhs)[..., None])[..., 0]                 # S x k x d
        nz = w.abs() > tol
        count = nz.flatten(1).sum(1) if groups == "entries" else nz.any(-1).sum(1)
        penalty = lam * count.to(x.dtype)
    else:
        xm = x[None, None] * em[:, :, None, :]                                  # S x k x n x d
        w = (torch.linalg.pinv(xm) @ y.T[None, :, :, None])[..., 0]              # S x k x d
        penalty = lam * (gm ** p).sum(1)
    pred = torch.einsum("nd,skd->snk", x, w)
    obj = ((pred - y[None]) ** 2).sum((1, 2)) / (2 * n) + penalty
    best = int(obj.argmin())
    return float(obj[best]), gm[best]


def planted_problems(seed: int = 0) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """Two float64 least-squares problems with planted sparse solutions: 40 samples of 10 features (4 non-zero
    weights), and 40 samples of 2 features for a 6 x 2 weight matrix whose rows fade to zero."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(40, 10, generator=g, dtype=torch.float64)
    w_true = torch.tensor([2.0, -1.0, 0.5, 0.25, 0, 0, 0, 0, 0, 0], dtype=torch.float64)
    y = x @ w_true + 0.3 * torch.randn(40, generator=g, dtype=torch.float64)
    xs = torch.randn(40, 2, generator=g, dtype=torch.float64)
    w_rows = torch.tensor([[1.0, 0.8, 0.3, 0.1, 0.0, 0.0], [0.5, 0.0, 0.2, 0.0, 0.0, 0.0]], dtype=torch.float64)
    ys = xs @ w_rows + 0.2 * torch.randn(40, 6, generator=g, dtype=torch.float64)
    return (x, y), (xs, ys)


def reframings_agree(lams: Sequence[float], seed: int = 0, ps: Sequence[float] = (0.5, 1.0, 2.0),
                     tol: float = 1e-10) -> tuple[list[dict], bool]:
    """Solve (4.1), (4.5) for each ``p`` and the structured (4.3) in both forms on :func:`planted_problems`.

    Returns one row per ``lambda`` (``"weights"``: the optimum of (4.1), ``"mask"``: those of (4.5), ``"support"``,
    ``"rows"``: the optimal supports, ``"gap"``: the largest difference between the formulations' optima) and
    whether every formulation reached the same optimum within ``tol``.
    """
    if not lams:
        raise ValueError("lams must name at least one lambda")
    (x, y), (xs, ys) = planted_problems(seed)
    rows, agree = [], True
    for lam in lams:
        ref, support = brute_force_l0(x, y, lam, "weights")
        others = [brute_force_l0(x, y, lam, "mask", p=p)[0] for p in ps]
        ref_s, kept_rows = brute_force_l0(xs, ys, lam, "weights", groups="rows")
        mask_s = brute_force_l0(xs, ys, lam, "mask", groups="rows")[0]
        gap = max([abs(o - ref) for o in others] + [abs(mask_s - ref_s)])
        agree &= gap < tol
        rows.append({"lambda": lam, "weights": ref, "mask": others, "support": support.int().tolist(),
                     "rows": kept_rows.int().tolist(), "gap": gap})
    return rows, bool(agree)

"""Unit tests of effcourse.scq.simplex (chapter 04-scq): exact and alternating projections onto the simplex."""

from __future__ import annotations

import pytest
import torch

from effcourse.scq.simplex import project_simplex, project_simplex_alternating, simplex_violation


def bisection_projection(v: torch.Tensor, iters: int = 200) -> torch.Tensor:
    """Reference: find theta with sum(max(v - theta, 0)) = 1 by bisection (a different algorithm from the
    sort)."""
    lo = v.min(-1, keepdim=True).values - 1.0
    hi = v.max(-1, keepdim=True).values
    for _ in range(iters):
        mid = (lo + hi) / 2
        s = torch.clamp(v - mid, min=0).sum(-1, keepdim=True)
        lo = torch.where(s > 1, mid, lo)
        hi = torch.where(s > 1, hi, mid)
    return torch.clamp(v - (lo + hi) / 2, min=0)


def test_exact_projection_matches_bisection_reference():
    g = torch.Generator().manual_seed(0)
    v = torch.cat([torch.randn(200, 7, generator=g, dtype=torch.float64) * 3,
                   torch.full((1, 7), 1 / 7, dtype=torch.float64),      # already on the simplex
                   torch.full((1, 7), 5.0, dtype=torch.float64),        # ties
                   torch.tensor([[100.0, -100, 0, 0, 0, 0, 0]], dtype=torch.float64)])
    p = project_simplex(v)
    assert torch.allclose(p, bisection_projection(v), atol=1e-10)
    assert torch.allclose(project_simplex(v, "sort"), p, atol=1e-12)
    assert simplex_violation(p).max() < 1e-12
    assert torch.allclose(project_simplex(p), p, atol=1e-12)  # idempotent


def test_exact_projection_is_closest_simplex_point():
    g = torch.Generator().manual_seed(1)
    v = torch.randn(50, 5, generator=g, dtype=torch.float64)
    p = project_simplex(v)
    q = project_simplex(torch.randn(50, 100, 5, generator=g, dtype=torch.float64))  # random simplex points
    assert ((v - p).norm(dim=-1)[:, None] <= (v[:, None] - q).norm(dim=-1) + 1e-12).all()


def test_projection_of_one_entry_is_one():
    assert project_simplex(torch.tensor([[-3.0], [7.0]])).tolist() == [[1.0], [1.0]]


def test_alternating_projection_sums_to_one_but_may_stay_negative():
    g = torch.Generator().manual_seed(2)
    v = torch.randn(300, 16, generator=g, dtype=torch.float64)
    few = project_simplex_alternating(v, 2)
    assert torch.allclose(few.sum(-1), torch.ones(300, dtype=torch.float64))
    assert (few < -1e-6).any(dim=-1).float().mean() > 0.5  # m=2 leaves most rows outside
    many = project_simplex_alternating(v, 3000)
    assert simplex_violation(many).max() < 1e-6
    exact = project_simplex(v)
    # it lands on a simplex point, never closer to v than the Euclidean projection
    assert ((v - many).norm(dim=-1) >= (v - exact).norm(dim=-1) - 1e-9).all()
    assert torch.equal(project_simplex_alternating(v, 0), v)


def test_threshold_and_sort_projections_agree_with_gradients():
    g = torch.Generator().manual_seed(7)
    v = (torch.randn(100, 33, generator=g, dtype=torch.float64) * 2).requires_grad_(True)
    w = torch.randn(100, 33, generator=g, dtype=torch.float64)
    grads = []
    for method in ("threshold", "sort"):
        p = project_simplex(v, method)
        (gr,) = torch.autograd.grad((p * w).sum(), v)
        grads.append((p.detach(), gr))
    assert torch.allclose(grads[0][0], grads[1][0], atol=1e-12)
    assert torch.allclose(grads[0][1], grads[1][1], atol=1e-12)
    with pytest.raises(ValueError, match="method"):
        project_simplex(v, "bisection")


def test_projection_errors():
    with pytest.raises(ValueError, match="steps"):
        project_simplex_alternating(torch.zeros(2, 3), -1)
    with pytest.raises(TypeError, match="floating"):
        project_simplex(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="at least one"):
        project_simplex(torch.zeros(2, 0))
    with pytest.raises(TypeError, match="torch.Tensor"):
        simplex_violation([[0.5, 0.5]])

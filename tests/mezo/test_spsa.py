"""SPSA estimators and the seeded in-place perturbation (effcourse.mezo.spsa)."""

import math

import pytest
import torch

from effcourse.mezo import spsa
from effcourse.mezo.spsa import (
    direction,
    expected_cosine,
    per_sample_estimate,
    perturb_,
    projected_gradient,
    shared_direction_estimate,
)


def _params(dtype=torch.float32):
    g = torch.Generator().manual_seed(1)
    return [torch.randn(7, 5, generator=g, dtype=dtype), torch.randn(3, generator=g, dtype=dtype),
            torch.randn(2, 3, 4, generator=g, dtype=dtype)]


def test_perturb_restores_to_a_few_ulp_and_direction_matches():
    ps = _params()
    before = [p.clone() for p in ps]
    for s in (1e-3, -2e-3, 1e-3):
        perturb_(ps, seed=5, scale=s)
    for p, b in zip(ps, before):
        assert torch.allclose(p, b, rtol=0, atol=4 * torch.finfo(torch.float32).eps * b.abs().max())
    zeros = [torch.zeros_like(p) for p in ps]
    perturb_(zeros, seed=5, scale=1.0)
    for z, d in zip(zeros, direction(ps, seed=5)):
        assert torch.equal(z, d)
    assert not torch.equal(direction(ps, seed=5)[0], direction(ps, seed=6)[0])


def test_chunked_directions_are_consistent(monkeypatch):
    monkeypatch.setattr(spsa, "CHUNK", 8)
    ps = _params(torch.float64)
    z = direction(ps, seed=3)
    zero = [torch.zeros_like(p) for p in ps]
    perturb_(zero, 3, 2.0)
    assert all(torch.equal(a, 2.0 * b) for a, b in zip(zero, z))
    assert torch.std(torch.cat([t.flatten() for t in z])) > 0.5  # chunks are not repeats of one chunk


def test_rademacher_direction_is_pm_one():
    z = direction(_params(), 0, distribution="rademacher")
    assert all(set(t.unique().tolist()) <= {-1.0, 1.0} for t in z)
    with pytest.raises(ValueError, match="distribution"):
        direction(_params(), 0, distribution="uniform")


def test_projected_gradient_is_exact_directional_derivative_on_a_quadratic():
    A = torch.randn(6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    A = A @ A.T
    theta = torch.randn(6, dtype=torch.float64)

    def f():
        return 0.5 * theta @ A @ theta

    pg, _, _ = projected_gradient(f, [theta], seed=11, mu=1e-2)
    z = direction([theta], 11)[0]
    assert math.isclose(pg, float(z @ (A @ theta)), rel_tol=1e-9)
    with pytest.raises(ValueError, match="mu"):
        projected_gradient(f, [theta], 0, 0.0)


def _ls(n=8, d=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    X, y = torch.randn(n, d, generator=g, dtype=torch.float64), torch.randn(n, generator=g, dtype=torch.float64)
    theta = torch.randn(d, generator=g, dtype=torch.float64)

    def losses(P):
        return (P @ X.T - y).square()

    grad = 2 * X.T @ (X @ theta - y) / n
    return losses, theta, grad


@pytest.mark.parametrize("estimator", [shared_direction_estimate, per_sample_estimate])
def test_estimators_are_unbiased_on_a_quadratic(estimator):
    losses, theta, grad = _ls()
    N = 20_000
    est = estimator(losses, theta, 1e-3, num=N, generator=torch.Generator().manual_seed(0))
    err = (est.mean(0) - grad).norm() / grad.norm()
    assert err < 4 * math.sqrt((theta.numel() + 2) / N)
    if estimator is shared_direction_estimate:  # E|(z^T g) z|^2 = (d+2) |g|^2
        m2 = est.square().sum(1).mean() / grad.square().sum()
        assert abs(m2 / (theta.numel() + 2) - 1) < 0.1


def test_estimators_reject_matrices():
    losses, theta, _ = _ls()
    with pytest.raises(ValueError, match="theta"):
        shared_direction_estimate(losses, theta[None], 1e-3)


def test_expected_cosine_matches_monte_carlo():
    d, q, N = 50, 4, 4000
    g = torch.randn(d, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    z = torch.randn(N, q, d, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    est = ((z @ g)[..., None] * z).mean(1)
    cos = (est @ g) / (est.norm(dim=1) * g.norm())
    rms = float(cos.square().mean().sqrt())
    assert abs(rms / expected_cosine(d, q) - 1) < 0.05
    with pytest.raises(ValueError):
        expected_cosine(0, 1)

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
    monkeypatch.setattr(spsa, "MIN_PIECE_CPU", 8)
    monkeypatch.setattr(spsa, "PIECES", 4)
    ps = _params(torch.float64)
    z = direction(ps, seed=3)
    zero = [torch.zeros_like(p) for p in ps]
    perturb_(zero, 3, 2.0)
    assert all(torch.equal(a, 2.0 * b) for a, b in zip(zero, z))
    assert torch.std(torch.cat([t.flatten() for t in z])) > 0.5  # chunks are not repeats of one chunk


@pytest.mark.parametrize("distribution", ["gaussian", "rademacher"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_pieces_do_not_change_the_cpu_draw(monkeypatch, distribution, dtype):
    """Sizes with tails of 0, 1, 15, 16 and 17 elements past a piece boundary draw what one whole draw does."""
    sizes = [5, 4096, 4097, 4111, 4112, 4113, 70001, 1 << 17]
    ps = [torch.zeros(n, dtype=dtype) for n in sizes]
    pieced = direction(ps, seed=9, distribution=distribution)
    monkeypatch.setattr(spsa, "PIECES", 1)
    monkeypatch.setattr(spsa, "MIN_PIECE_CPU", 1 << 30)
    whole = direction(ps, seed=9, distribution=distribution)
    assert all(torch.equal(a, b) for a, b in zip(pieced, whole))


def test_piece_elements_is_relative_to_the_tensor_with_a_device_floor():
    assert spsa.piece_elements(1 << 20) == 1 << 16  # a 1024 x 1024 weight in 16 pieces
    assert spsa.piece_elements(100) == spsa.MIN_PIECE_CPU
    assert spsa.piece_elements(1 << 20, "cuda") == spsa.MIN_PIECE_ACCELERATOR
    assert spsa.piece_elements(51_471_360, "cuda") == 1 << 22  # RoBERTa-large's embedding: 13 launches
    assert spsa.piece_elements(51_471_360) * spsa.PIECES >= 51_471_360
    with pytest.raises(ValueError, match="numel"):
        spsa.piece_elements(-1)
    pieces = spsa._pieces(torch.zeros((1 << 16) + 3))
    assert [p.numel() for p in pieces][-1] >= 16 and sum(p.numel() for p in pieces) == (1 << 16) + 3


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


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_pieces_regenerate_the_same_direction_and_restore():
    """On a GPU the stream depends on the pieces (4M-element floor): every walker must see the same pieces."""
    ps = [torch.randn(n, device="cuda") for n in ((1 << 22) + 5, 1000, (1 << 23) + 17)]
    before = [p.clone() for p in ps]
    z = direction(ps, seed=4)
    zero = [torch.zeros_like(p) for p in ps]
    perturb_(zero, 4, 1.0)
    assert all(torch.equal(a, b) for a, b in zip(zero, z))
    for s in (1e-3, -2e-3, 1e-3):
        perturb_(ps, seed=4, scale=s)
    assert all(torch.allclose(p, b, atol=1e-5) for p, b in zip(ps, before))

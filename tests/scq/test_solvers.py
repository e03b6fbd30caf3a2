"""Unit tests of effcourse.scq.solvers (chapter 04-scq): the convex program (5.8), Algorithms 8 and 9."""

from __future__ import annotations

import pytest
import torch

from effcourse.scq.codebook import nearest_code
from effcourse.scq.simplex import project_simplex, simplex_violation
from effcourse.scq.solvers import (
    scq_exact,
    scq_objective,
    scq_projected_gradient,
    scq_quantize,
    scq_ridge,
    scq_scalable,
)


def projected_gradient_scq(z, c, onehot, lam, iters=20000):
    """Reference solver of (5.8): projected gradient descent with step 1/L (float64), independent of
    cvxpylayers."""
    lip = 2 * (torch.linalg.eigvalsh(c @ c.T).max() + lam)
    p = onehot.clone()
    for _ in range(iters):
        grad = 2 * (p @ c - z) @ c.T + 2 * lam * (p - onehot)
        p = project_simplex(p - grad / lip)
    return p


def _instance(n=6, f=4, k=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, f, generator=g, dtype=torch.float64)
    c = torch.randn(k, f, generator=g, dtype=torch.float64)
    onehot = torch.nn.functional.one_hot(nearest_code(z, c), k).double()
    return z, c, onehot


def test_ridge_solve_is_the_unconstrained_minimizer():
    z, c, onehot = _instance()
    p = scq_ridge(z, c, onehot, 0.1).requires_grad_(True)
    scq_objective(z, c, p, onehot, 0.1).sum().backward()
    assert p.grad.abs().max() < 1e-9
    # the scalable layer's fast path (inverse and gather) computes the same thing before its projection
    p_fast, _ = scq_scalable(z, c, 0.1, "alternating", steps=0)
    assert torch.allclose(p_fast, p.detach(), atol=1e-10)


def test_exact_scq_matches_projected_gradient_and_beats_vq_and_scalable():
    z, c, onehot = _instance()
    lam = 0.1
    p, pt = scq_exact(z, c, lam)
    assert torch.equal(pt, onehot)
    assert simplex_violation(p).max() < 1e-6
    ref = projected_gradient_scq(z, c, onehot, lam)
    assert torch.allclose(p, ref, atol=1e-4)
    obj = scq_objective(z, c, p, onehot, lam)
    assert (obj <= scq_objective(z, c, onehot, onehot, lam) + 1e-7).all()  # p~ is feasible for (5.8)
    for proj in ("exact", "alternating"):
        ps, _ = scq_scalable(z, c, lam, proj, 20)
        assert (obj <= scq_objective(z, c, ps, onehot, lam) + 1e-7).all()
    # hence the exact layer never quantizes worse than VQ
    assert (((z - p @ c) ** 2).sum(1) <= ((z - onehot @ c) ** 2).sum(1) + 1e-7).all()


def test_fista_solver_matches_cvxpylayers():
    z, c, _ = _instance(n=20, f=4, k=10, seed=5)
    pe, _ = scq_exact(z, c, 0.1)
    pf, _ = scq_projected_gradient(z, c, 0.1, iters=3000)
    assert torch.allclose(pe, pf, atol=1e-4)


def test_scalable_is_exact_for_orthonormal_codes():
    # (5.8)'s objective is |p - p_ridge|^2 in the metric C^T C + lam I; when that is a multiple of I the Euclidean
    # projection of the ridge solution is the exact minimizer
    g = torch.Generator().manual_seed(6)
    q, _ = torch.linalg.qr(torch.randn(8, 4, generator=g, dtype=torch.float64))
    c = q.T  # 4 orthonormal codes in R^8
    z = torch.randn(12, 8, generator=g, dtype=torch.float64)
    pe, _ = scq_exact(z, c, 0.1)
    ps, _ = scq_scalable(z, c, 0.1, "exact")
    assert torch.allclose(pe, ps, atol=1e-5)


def test_exact_and_scalable_agree_where_both_must():
    # (a) z equal to a code: both return that code's one-hot weights, for any lambda
    z, c, _ = _instance()
    zc = c[[1, 3, 5]]
    for lam in (0.01, 0.1, 1.0):
        pe, pt = scq_exact(zc, c, lam)
        ps, _ = scq_scalable(zc, c, lam, "exact")
        assert torch.allclose(pe, pt, atol=1e-5) and torch.allclose(ps, pt, atol=1e-9)
    # (b) lambda -> infinity: both tend to the VQ solution (VQ is SCQ with lambda = infinity)
    pe, pt = scq_exact(z, c, 1e3)
    ps, _ = scq_scalable(z, c, 1e3, "exact")
    assert (pe - pt).abs().max() < 5e-3 and (ps - pt).abs().max() < 5e-3 and (pe - ps).abs().max() < 5e-3


def test_convex_hull_points_are_reconstructed_as_lambda_vanishes():
    g = torch.Generator().manual_seed(3)
    c = torch.randn(6, 2, generator=g, dtype=torch.float64)
    w = project_simplex(torch.randn(10, 6, generator=g, dtype=torch.float64) * 3)
    z = w @ c  # points inside the hull of the codes
    p, _ = scq_exact(z, c, 1e-5)
    assert ((z - p @ c).norm(dim=1) < 1e-3).all()
    p, pt = scq_exact(z, c, 0.1)  # at the thesis's lambda the pull towards p~ leaves a visible error
    vq_err = (z - pt @ c).norm(dim=1)
    scq_err = (z - p @ c).norm(dim=1)
    assert (scq_err <= vq_err + 1e-7).all() and scq_err.max() > 1e-3


def test_exact_scq_gradient_matches_finite_differences():
    z, c, _ = _instance(n=2, f=3, k=4, seed=4)
    c = c.requires_grad_(True)
    p, _ = scq_exact(z, c, 0.5)
    loss = (p @ c - z).pow(2).sum()
    (g,) = torch.autograd.grad(loss, c)
    h = 1e-5
    fd = torch.zeros_like(c)
    with torch.no_grad():
        for i in range(c.shape[0]):
            for j in range(c.shape[1]):
                cp_, cm = c.clone(), c.clone()
                cp_[i, j] += h
                cm[i, j] -= h
                fp = (scq_exact(z, cp_, 0.5)[0] @ cp_ - z).pow(2).sum()
                fm = (scq_exact(z, cm, 0.5)[0] @ cm - z).pow(2).sum()
                fd[i, j] = (fp - fm) / (2 * h)
    assert torch.allclose(g, fd, atol=1e-3, rtol=1e-2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("seed", [0, 52])
def test_fused_layer_path_gives_the_same_floats_and_gradients_as_autograd(seed, dtype):
    """scq_quantize (one autograd node, the layer's fast path) against scq_scalable + p @ C through autograd: the
    weights, z_q and both gradients bit for bit, on a draw where many rows need threshold rounds."""
    g = torch.Generator().manual_seed(seed)
    z = (torch.randn(3000, 16, generator=g) * (0.1 if seed else 1.0)).to(dtype)
    c = ((torch.rand(64, 16, generator=g) * 2 - 1) / 64).to(dtype)
    up = torch.randn(3000, 16, generator=g).to(dtype)
    outs = []
    for fused in (True, False):
        zz, cc = z.clone().requires_grad_(True), c.clone().requires_grad_(True)
        if fused:
            zq, p = scq_quantize(zz, cc, 0.1)
            assert not p.requires_grad
        else:
            p, onehot = scq_scalable(zz, cc, 0.1, "exact")
            assert torch.equal(onehot.argmax(1), nearest_code(z, c))
            zq = p @ cc
        ((zq * up).sum() + (zq - zz).pow(2).mean()).backward()
        outs.append((p.detach(), zq.detach(), zz.grad, cc.grad))
    for a, b in zip(*outs):
        assert torch.equal(a, b)
    assert outs[0][1].shape == (3000, 16) and (outs[0][0] > 0).sum(1).float().mean() > 1.0  # soft rows exist


def test_fused_layer_path_without_a_gradient_for_z_q():
    z, c, _ = _instance(n=50)
    zq, p = scq_quantize(z.requires_grad_(True), c.requires_grad_(True), 0.1)
    zq.sum().backward()
    assert z.grad is not None and c.grad is not None
    zq, p = scq_quantize(z, c, 0.1)
    (p.sum() * 0 + z.sum()).backward()  # z_q unused: the node's backward gets no gradient and returns none
    zq, _ = scq_quantize(z, c, 0.1)
    (g,) = torch.autograd.grad(zq.pow(2).sum(), z, create_graph=True)  # its upstream gradient depends on z
    with pytest.raises(RuntimeError, match="once_differentiable"):
        g.sum().backward()
    with pytest.raises(ValueError, match="lam"):
        scq_quantize(z, c, 0.0)


def test_solver_errors():
    z, c, onehot = _instance()
    with pytest.raises(ValueError, match="lam"):
        scq_scalable(z, c, 0.0)
    with pytest.raises(ValueError, match="projection"):
        scq_scalable(z, c, 0.1, "sort")
    with pytest.raises(ValueError, match="same F"):
        scq_exact(z, c[:, :3], 0.1)
    with pytest.raises(ValueError, match="lam"):
        scq_ridge(z, c, onehot, -1.0)
    with pytest.raises(ValueError, match="n x K"):
        scq_objective(z, c, onehot[:, :3], onehot, 0.1)
    with pytest.raises(ValueError, match="iters"):
        scq_projected_gradient(z, c, 0.1, iters=0)

"""Unit tests of effcourse.scq.simplex, effcourse.scq.quantizers and effcourse.scq.autoencoder (chapter 04-scq)."""

from __future__ import annotations

import pytest
import torch

from effcourse.scq.autoencoder import VQAutoencoder, evaluate_autoencoder, train_autoencoder
from effcourse.scq.quantizers import (
    SimVQ,
    SoftConvexQuantizer,
    VectorQuantizer,
    codes_used,
    init_codebook,
    make_quantizer,
    nearest_code,
    perplexity,
    scq_exact,
    scq_objective,
    scq_projected_gradient,
    scq_ridge,
    scq_scalable,
)
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


def projected_gradient_scq(z, c, onehot, lam, iters=20000):
    """Reference solver of (5.8): projected gradient descent with step 1/L (float64), independent of
    cvxpylayers."""
    lip = 2 * (torch.linalg.eigvalsh(c @ c.T).max() + lam)
    p = onehot.clone()
    for _ in range(iters):
        grad = 2 * (p @ c - z) @ c.T + 2 * lam * (p - onehot)
        p = project_simplex(p - grad / lip)
    return p


# ------------------------------------------------------------------------------------------------ simplex
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


def test_projection_errors():
    with pytest.raises(ValueError, match="steps"):
        project_simplex_alternating(torch.zeros(2, 3), -1)
    with pytest.raises(TypeError, match="floating"):
        project_simplex(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="at least one"):
        project_simplex(torch.zeros(2, 0))


# ------------------------------------------------------------------------------------------------ SCQ solvers
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


def test_solver_errors():
    z, c, _ = _instance()
    with pytest.raises(ValueError, match="lam"):
        scq_scalable(z, c, 0.0)
    with pytest.raises(ValueError, match="projection"):
        scq_scalable(z, c, 0.1, "sort")
    with pytest.raises(ValueError, match="same F"):
        scq_exact(z, c[:, :3], 0.1)


# ------------------------------------------------------------------------------------------------ layers
def test_vq_layer_straight_through_and_usage():
    torch.manual_seed(0)
    q = VectorQuantizer(16, 4, init="normal")
    z = torch.randn(2, 4, 3, 3, requires_grad=True)
    out = q(z)
    assert out.z_q.shape == z.shape and out.weights.shape == (18, 16)
    assert torch.allclose(out.z_q.permute(0, 2, 3, 1).reshape(-1, 4), q.codebook[out.weights.argmax(1)])
    (g,) = torch.autograd.grad(out.z_q.sum(), z)
    assert torch.equal(g, torch.ones_like(z))  # identity in the backward pass
    assert 1.0 <= float(perplexity(out.weights)) <= codes_used(out.weights) <= 16


def test_dead_code_replacement_revives_unused_codes():
    torch.manual_seed(0)
    q = VectorQuantizer(32, 2, init="normal", dead_code_every=1)
    q.codebook.data[1:] += 100.0  # all codes but one are far away: dead
    z = torch.randn(4, 2, 4, 4)
    before = codes_used(q(z).weights)  # this call replaces the dead codes by encoder outputs
    assert before == 1 and q.replaced == 31
    q.eval()
    assert codes_used(q(z).weights) > 10


def test_simvq_trains_only_the_linear_map_and_moves_every_code():
    torch.manual_seed(0)
    q = SimVQ(32, 4)
    assert [n for n, p in q.named_parameters()] == ["proj.weight", "proj.bias"]
    z = torch.randn(2, 4, 2, 2)
    before = q.codes().detach().clone()
    opt = torch.optim.SGD(q.parameters(), lr=0.1)
    out = q(z)
    out.loss.backward()
    opt.step()
    moved = (q.codes().detach() - before).norm(dim=1) > 0
    assert moved.all() and codes_used(out.weights) < 32


def test_scq_layer_sends_gradient_to_more_codes_than_vq():
    torch.manual_seed(0)
    z = torch.randn(4, 8, 2, 2)
    grads = {}
    for name, q in (("vq", VectorQuantizer(32, 8, init="normal")),
                    ("scq", SoftConvexQuantizer(32, 8, init="normal", lam=0.1))):
        out = q(z)
        (out.z_q.pow(2).sum() + out.loss).backward()
        grads[name] = int((q.codebook.grad.norm(dim=1) > 0).sum())
    assert grads["scq"] > grads["vq"]


def test_scq_layer_exact_and_scalable_share_an_interface():
    torch.manual_seed(0)
    z = torch.randn(1, 3, 2, 2, dtype=torch.float64)
    for solver in ("exact", "scalable"):
        q = SoftConvexQuantizer(6, 3, init="normal", solver=solver).double()
        out = q(z)
        assert out.z_q.shape == z.shape and simplex_violation(out.weights).max() < 1e-6
        assert float(out.quant_error) >= 0


def test_layer_errors():
    with pytest.raises(ValueError, match="beta"):
        VectorQuantizer(8, 2, beta=1.5)
    with pytest.raises(ValueError, match="init"):
        init_codebook(8, 2, "xavier")
    with pytest.raises(ValueError, match="solver"):
        SoftConvexQuantizer(8, 2, solver="admm")
    with pytest.raises(ValueError, match="lam"):
        SoftConvexQuantizer(8, 2, lam=-1.0)
    with pytest.raises(ValueError, match="channels"):
        VectorQuantizer(8, 2)(torch.zeros(1, 3, 2, 2))
    with pytest.raises(ValueError, match="4-d"):
        VectorQuantizer(8, 2)(torch.zeros(3, 2))
    with pytest.raises(ValueError, match="kind"):
        perplexity(torch.eye(3), "entropy")


# ------------------------------------------------------------------------------------------------ autoencoder
@pytest.mark.parametrize("downsamples,size,channels", [(1, 8, 1), (1, 32, 3), (2, 16, 3)])
def test_autoencoder_shapes(downsamples, size, channels):
    m = VQAutoencoder(VectorQuantizer(16, 4), in_channels=channels, embedding_dim=4, downsamples=downsamples)
    x = torch.rand(2, channels, size, size)
    out = m(x)
    assert out.x_hat.shape == x.shape
    assert out.z_e.shape == (2, 4, size // 2 ** downsamples, size // 2 ** downsamples)


def test_training_lowers_reconstruction_error():
    torch.manual_seed(0)
    x = torch.rand(64, 1, 8, 8)
    m = VQAutoencoder(SoftConvexQuantizer(16, 4), embedding_dim=4)
    before = evaluate_autoencoder(m, x)["recon_mse"]
    h = train_autoencoder(m, x, x, steps=60, batch_size=32, lr=3e-3, eval_every=30,
                          generator=torch.Generator().manual_seed(0))
    assert not h.diverged and h.steps == [30, 60]
    assert h.test_mse[-1] < 0.5 * before
    with pytest.raises(ValueError, match="embedding_dim"):
        VQAutoencoder(VectorQuantizer(16, 4), embedding_dim=8)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_layers_match_cpu():
    torch.manual_seed(0)
    z = torch.randn(4, 16, 4, 4, dtype=torch.float64)
    for kind in ("vq", "scq", "scq_alg9", "simvq"):
        torch.manual_seed(1)
        q_cpu = make_quantizer(kind, 32, 16).double()
        q_gpu = make_quantizer(kind, 32, 16, device="cuda").double()
        q_gpu.load_state_dict(q_cpu.state_dict())
        a, b = q_cpu(z), q_gpu(z.cuda())
        assert torch.allclose(a.z_q, b.z_q.cpu(), atol=1e-8) and torch.allclose(a.loss, b.loss.cpu(), atol=1e-8)
    m = VQAutoencoder(make_quantizer("scq", 16, 4, device="cuda"), embedding_dim=4, device="cuda")
    h = train_autoencoder(m, torch.rand(32, 1, 8, 8, device="cuda"), torch.rand(8, 1, 8, 8, device="cuda"),
                          steps=5, batch_size=16, eval_every=5)
    assert not h.diverged and h.steps == [5]

"""Implicit models: fixed points, well-posedness tests, implicit gradients, the ||A||_inf projection."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from effcourse.core.models import MLP
from effcourse.implicit import model as im

D64 = torch.float64


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _scaled(n: int, pf: float, seed: int = 0) -> torch.Tensor:
    A = torch.randn(n, n, generator=_gen(seed), dtype=D64)
    return A * (pf / im.pf_eigenvalue(A))


# ------------------------------------------------------------------------------------------------ fixed points
@pytest.mark.parametrize("act", ["relu", "leaky_relu", "tanh", "sigmoid"])
def test_fixed_point_solves_the_equation_and_is_unique(act):
    A = _scaled(12, 0.9)
    b = torch.randn(5, 12, generator=_gen(1), dtype=D64)
    phi = im.ACTIVATIONS[act][0]
    r0 = im.fixed_point(A, b, act, tol=1e-13, max_iter=5000)
    r1 = im.fixed_point(A, b, act, tol=1e-13, max_iter=5000, x0=5 * torch.randn(5, 12, generator=_gen(2), dtype=D64))
    assert r0.converged and r1.converged
    assert torch.allclose(r0.x, phi(r0.x @ A.t() + b), atol=1e-11)
    assert torch.allclose(r0.x, r1.x, atol=1e-10)


def test_fixed_point_reports_non_convergence():
    A = torch.tensor([[1.5]], dtype=D64)
    r = im.fixed_point(A, torch.ones(1, 1, dtype=D64), tol=1e-9, max_iter=30)
    assert not r.converged and r.iterations == 30 and r.residual > 1


def test_fixed_point_argument_errors():
    A = torch.eye(3, dtype=D64) * 0.1
    with pytest.raises(ValueError, match="square"):
        im.fixed_point(torch.zeros(3, 4), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="b must be"):
        im.fixed_point(A, torch.zeros(2, 4, dtype=D64))
    with pytest.raises(ValueError, match="activation"):
        im.fixed_point(A, torch.zeros(2, 3, dtype=D64), activation="gelu")
    with pytest.raises(ValueError, match="max_iter"):
        im.fixed_point(A, torch.zeros(2, 3, dtype=D64), max_iter=0)


def test_pf_le_inf_norm_with_equality_case():
    for s in range(20):
        M = torch.randn(9, 9, generator=_gen(s), dtype=D64)
        assert float(im.pf_eigenvalue(M)) <= float(im.inf_norm(M)) + 1e-12
    E = torch.full((3, 3), 0.3, dtype=D64)
    assert abs(float(im.pf_eigenvalue(E)) - 0.9) < 1e-12 and abs(float(im.inf_norm(E)) - 0.9) < 1e-12
    nil = torch.tensor([[0.0, 2.0], [0.0, 0.0]], dtype=D64)  # ill-conditioned by the norm test only
    assert im.is_well_posed(nil, "pf") and not im.is_well_posed(nil, "inf")
    with pytest.raises(ValueError, match="test"):
        im.is_well_posed(nil, "spectral")


# ------------------------------------------------------------------------------------------------ gradients
@pytest.mark.parametrize("act", ["tanh", "relu", "sigmoid"])
def test_implicit_gradient_matches_finite_differences(act):
    A = im.project_inf_ball(torch.randn(6, 6, generator=_gen(3), dtype=D64), 0.8).requires_grad_(True)
    b = torch.randn(3, 6, generator=_gen(4), dtype=D64).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda A, b: im.implicit_fixed_point(A, b, act, 1e-13, 10_000), (A, b),
                                    eps=1e-6, atol=1e-7)


def test_implicit_gradient_matches_unrolled_backprop():
    """The adjoint solution equals backpropagation through many Picard steps (which converge to the same point)."""
    A = _scaled(8, 0.7, seed=5).requires_grad_(True)
    b = torch.randn(4, 8, generator=_gen(6), dtype=D64).requires_grad_(True)
    w = torch.randn(4, 8, generator=_gen(7), dtype=D64)
    (im.implicit_fixed_point(A, b, "tanh", 1e-14, 10_000) * w).sum().backward()
    gA, gb = A.grad.clone(), b.grad.clone()
    A.grad = b.grad = None
    x = torch.zeros_like(b)
    for _ in range(300):
        x = torch.tanh(x @ A.t() + b)
    (x * w).sum().backward()
    assert torch.allclose(gA, A.grad, atol=1e-10) and torch.allclose(gb, b.grad, atol=1e-10)


# ------------------------------------------------------------------------------------------------ projection
def _bisection_reference(row: np.ndarray, kappa: float) -> np.ndarray:
    """Project one row onto the l1 ball by bisection on the threshold (slow, obviously correct)."""
    a = np.abs(row)
    if a.sum() <= kappa:
        return row.copy()
    lo, hi = 0.0, a.max()
    for _ in range(200):
        mid = (lo + hi) / 2
        if np.maximum(a - mid, 0).sum() > kappa:
            lo = mid
        else:
            hi = mid
    return np.sign(row) * np.maximum(a - hi, 0)


@pytest.mark.parametrize("kappa", [0.3, 0.95, 5.0])
def test_projection_matches_bisection_reference(kappa):
    M = torch.randn(40, 25, generator=_gen(8), dtype=D64)
    M[0] = 0.01  # a row inside the ball stays put
    P = im.project_inf_ball(M, kappa)
    ref = np.stack([_bisection_reference(r, kappa) for r in M.numpy()])
    assert np.abs(P.numpy() - ref).max() < 1e-12
    assert float(im.inf_norm(P)) <= kappa + 1e-12
    inside = M.abs().sum(1) <= kappa
    assert torch.equal(P[inside], M[inside])


def test_projection_matches_cvxpy():
    cp = pytest.importorskip("cvxpy")
    M = torch.randn(8, 8, generator=_gen(9), dtype=D64)
    X = cp.Variable((8, 8))
    cp.Problem(cp.Minimize(cp.sum_squares(X - M.numpy())), [cp.sum(cp.abs(X), axis=1) <= 0.9]).solve()
    assert np.abs(im.project_inf_ball(M, 0.9).numpy() - X.value).max() < 1e-5


def test_projection_errors_and_edge_cases():
    M = torch.randn(3, 3, generator=_gen(10))
    assert torch.equal(im.project_inf_ball(M, 0.0), torch.zeros_like(M))
    with pytest.raises(ValueError, match="kappa"):
        im.project_inf_ball(M, -1.0)
    batched = torch.randn(2, 4, 5, generator=_gen(11), dtype=D64)
    assert torch.allclose(im.project_inf_ball(batched, 0.5)[1], im.project_inf_ball(batched[1], 0.5))


# ------------------------------------------------------------------------------------------------ the model
def test_mlp_as_implicit_model():
    torch.manual_seed(0)
    mlp = MLP([4, 9, 7, 3], dtype=D64)
    model = im.ImplicitModel.from_mlp(list(mlp), tol=0.0)
    u = torch.randn(20, 4, generator=_gen(12), dtype=D64)
    with torch.no_grad():
        assert float((model(im.append_ones(u)) - mlp(u)).abs().max()) < 1e-12
    with pytest.raises(ValueError, match="two nn.Linear"):
        im.ImplicitModel.from_mlp([torch.nn.Linear(3, 2)])


def test_ill_posed_model_raises_and_input_checked():
    model = im.ImplicitModel.from_matrices(torch.eye(2, dtype=D64) * 1.2, torch.ones(2, 1, dtype=D64),
                                           torch.ones(1, 2, dtype=D64))
    with pytest.raises(im.IllPosedError, match="lambda_PF"):
        model(torch.ones(3, 1, dtype=D64))
    model.check = False
    with pytest.raises(im.FixedPointError, match="did not converge"):
        model(torch.ones(3, 1, dtype=D64))
    with pytest.raises(ValueError, match="u must be"):
        model(torch.ones(3, 2, dtype=D64))
    with pytest.raises(ValueError, match="n must be"):
        im.ImplicitModel(0, 1, 1)


def test_projected_training_decreases_loss_and_keeps_a_in_the_ball():
    g = _gen(13)
    u = im.append_ones(torch.rand(64, 1, generator=g, dtype=D64) * 2 - 1)
    y = torch.sin(3 * u[:, :1])
    model = im.ImplicitModel(10, 2, 1, dtype=D64, generator=_gen(14))
    hist = im.train_projected(model, u, y, lr=1e-2, kappa=0.9, steps=60, eval_every=20)
    assert hist.steps == [0, 20, 40, 60]
    assert hist.train_loss[-1] < 0.5 * hist.train_loss[0]
    assert float(im.inf_norm(model.A.detach())) <= 0.9 + 1e-12
    assert all(v >= 0 for v in hist.phase_seconds.values())
    with pytest.raises(ValueError, match="kappa"):
        im.train_projected(model, u, y, kappa=1.0)
    with pytest.raises(ValueError, match="loss"):
        im.loss_value(y, y, "hinge")


def _reference_projected(model, u, y, lr, kappa, steps, batch_size, generator):
    """The projected-gradient loop written out: fit's batches (one permutation per epoch), Adam, projection."""
    from effcourse.core.train import batches

    model.project_(kappa)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    step = 0
    while step < steps:
        for idx in batches(u.shape[0], batch_size, generator):
            loss = im.loss_value(model(u[idx]), y[idx], "mse")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            model.project_(kappa)
            step += 1
            if step == steps:
                return


@pytest.mark.parametrize("batch_size", [None, 16])
def test_projected_training_goes_through_fit_bit_identically(batch_size):
    g = _gen(21)
    u = im.append_ones(torch.rand(40, 1, generator=g, dtype=D64) * 2 - 1)
    y = torch.sin(3 * u[:, :1])
    a = im.ImplicitModel(6, 2, 1, dtype=D64, generator=_gen(22))
    b = im.ImplicitModel(6, 2, 1, dtype=D64, generator=_gen(22))
    hist = im.train_projected(a, u, y, lr=1e-2, kappa=0.9, steps=7, batch_size=batch_size, eval_every=3,
                              generator=_gen(23))
    _reference_projected(b, u, y, 1e-2, 0.9, 7, batch_size or 40, _gen(23))
    assert hist.steps == [0, 3, 6, 7]
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_projected_training_flop_budget_stops_early():
    g = _gen(24)
    u = im.append_ones(torch.rand(32, 1, generator=g, dtype=D64))
    y = u[:, :1].clone()
    hist = im.train_projected(im.ImplicitModel(5, 2, 1, dtype=D64, generator=_gen(25)), u, y, steps=10_000,
                              flop_budget=0.0, eval_every=100)
    assert hist.steps == [0, 1]  # the budget is spent after the first step, which is checkpointed
    assert hist.flops[0] == 0 and hist.flops[-1] > 0 and not any(np.isnan(hist.train_loss))
    # a step is counted exactly: the forward and adjoint solves are matrix products of known shapes
    longer = im.train_projected(im.ImplicitModel(5, 2, 1, dtype=D64, generator=_gen(25)), u, y, steps=10_000,
                                flop_budget=5 * hist.flops[-1], eval_every=1)
    assert longer.flops[-1] >= 5 * hist.flops[-1] > longer.flops[-2] and longer.flops[1] == hist.flops[1]
    model = im.ImplicitModel(5, 2, 1, dtype=D64)
    for kw, match in (({"eval_every": 0}, "eval_every"), ({"batch_size": 0}, "batch_size"),
                      ({"flop_budget": -1.0}, "flop_budget"), ({"steps": 0}, "steps")):
        with pytest.raises(ValueError, match=match):
            im.train_projected(model, u, y, **kw)


def test_scalar_relu_solutions():
    assert im.scalar_relu_solutions(1.5, 1.0) == []
    assert im.scalar_relu_solutions(1.5, -1.0) == [0.0, 2.0]
    assert im.scalar_relu_solutions(0.5, 1.0) == [2.0]
    assert im.scalar_relu_solutions(0.5, -1.0) == [0.0]
    with pytest.raises(ValueError, match="finite"):
        im.scalar_relu_solutions(float("nan"), 1.0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    A = _scaled(16, 0.8).float()
    b = torch.randn(32, 16, generator=_gen(15)).float()
    x_cpu = im.fixed_point(A, b, tol=1e-7).x
    x_gpu = im.fixed_point(A.cuda(), b.cuda(), tol=1e-7).x
    assert torch.allclose(x_cpu, x_gpu.cpu(), atol=1e-5)
    assert torch.allclose(im.project_inf_ball(A, 0.5), im.project_inf_ball(A.cuda(), 0.5).cpu(), atol=1e-6)

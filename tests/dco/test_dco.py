"""DCO optimizers (closed form vs cvxpylayers), Algorithm 7, the task families and the Theorem 6 helpers."""

from __future__ import annotations

import math

import pytest
import torch

from effcourse.dco.layers import (
    DCOGeneralDescent,
    DCOGradient,
    DCOMomentum,
    backend_agreement,
    dco_general_descent_problem,
    dco_gradient_problem,
    printed_problem,
)
from effcourse.dco.meta import evaluate, meta_step_seconds, meta_train, unroll
from effcourse.dco.tasks import (
    LeastSquaresTasks,
    beverton_holt_tasks,
    interpolation_tasks,
    least_squares_tasks,
    mlp_forward,
    mlp_num_params,
    run_baseline,
    shifted_least_squares_tasks,
    tune_baseline,
)
from effcourse.dco.theory import (
    best_fixed_general_descent,
    meta_curvature,
    optimal_general_descent,
    optimal_value,
)

D = torch.float64


@pytest.fixture(autouse=True)
def _float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(D)
    yield
    torch.set_default_dtype(old)


def _perturbed(opt, seed=1):
    """Move every meta-parameter off its constant initialization so the checks see a generic phi."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for q in opt.parameters():
            q.add_(0.3 * torch.rand(q.shape, generator=g, dtype=q.dtype))
    return opt


def _inputs(n, p, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, p, generator=g), torch.randn(n, p, generator=g), torch.randn(n, p, generator=g))


# ------------------------------------------------------------------------------------------------ DCO layers
def test_printed_forms_are_not_dpp_and_rewritten_forms_are():
    assert not printed_problem("gradient", 3).is_dpp()
    assert not printed_problem("general_descent", 3).is_dpp()
    assert dco_gradient_problem(3)[0].is_dpp()
    assert dco_general_descent_problem(3)[0].is_dpp()


@pytest.mark.parametrize("make", [lambda p: DCOGradient(p, lam0=1.5),
                                  lambda p: DCOGeneralDescent(p, b0=0.7),
                                  lambda p: DCOMomentum(p, lam0=1.5, m0=0.4)])
def test_cvxpylayers_matches_closed_form_in_value_and_gradient(make):
    p = 6
    theta, grad, state = _inputs(3, p)
    opt = _perturbed(make(p))
    v_err, g_err = backend_agreement(opt, theta, grad, state if isinstance(opt, DCOMomentum) else None)
    assert v_err < 1e-7 and g_err < 1e-5, (v_err, g_err)


def test_default_solver_tolerance_is_looser_than_the_tightened_one():
    p = 6
    theta, grad, _ = _inputs(3, p)
    opt = _perturbed(DCOGradient(p, lam0=1.5))
    loose, _ = backend_agreement(opt, theta, grad, solver_args={})
    tight, _ = backend_agreement(opt, theta, grad)
    assert tight < 1e-7 < loose


def test_closed_forms():
    p = 5
    theta, grad, state = _inputs(4, p)
    lam = 2.0
    gd = DCOGradient(p, lam0=math.sqrt(lam), normalize=False)
    nxt, st = gd(theta, grad)
    assert st is None and torch.allclose(nxt, theta - grad / lam, atol=1e-14)
    gen = DCOGeneralDescent(p, b0=1 / lam, normalize=False)
    assert torch.allclose(gen(theta, grad)[0], theta - grad / lam, atol=1e-14)
    beta = 0.9
    mom = DCOMomentum(p, lam0=math.sqrt(lam), m0=1 - beta, normalize=False)
    nxt, s = mom(theta, grad, state)
    s_ref = beta * state + (1 - beta) * grad
    assert torch.allclose(s, s_ref, atol=1e-14) and torch.allclose(nxt, theta - s_ref / lam, atol=1e-14)


def test_normalization_and_valid_parameterization():
    p = 4
    theta, grad, _ = _inputs(2, p)
    opt = DCOGradient(p, lam0=1.0)
    step = theta - opt(theta, grad)[0]
    assert torch.allclose(step.norm(dim=1), torch.ones(2))  # unit step for Lambda = 1 and normalized gradients
    assert torch.isfinite(opt(theta, torch.zeros_like(grad))[0]).all()  # zero gradient: no NaN
    with torch.no_grad():
        opt.lam.zero_()
    assert torch.isfinite(opt(theta, grad)[0]).all()  # Lambda = 0 would be an ill-posed QP; the floor keeps it finite
    mom = DCOMomentum(p)
    with torch.no_grad():
        mom.m.fill_(3.0)
    assert torch.allclose(mom.effective_m(), torch.ones(p))


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="backend"):
        DCOGradient(3, backend="scs")
    with pytest.raises(ValueError, match="lam0"):
        DCOGradient(3, lam0=0.0)
    with pytest.raises(ValueError, match="m0"):
        DCOMomentum(3, m0=1.5)
    with pytest.raises(ValueError, match="p "):
        DCOGeneralDescent(0)
    opt = DCOGradient(3)
    with pytest.raises(ValueError, match="same shape"):
        opt(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="p=3"):
        opt(torch.zeros(2, 4), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="kind"):
        printed_problem("adam", 3)


# ------------------------------------------------------------------------------------------------ tasks
def test_task_families_shapes_and_per_task_gradients():
    g = torch.Generator().manual_seed(0)
    ls = least_squares_tasks(3, p=4, n=6, generator=g)
    theta = torch.randn(3, 4, generator=g)
    G = ls.grad(theta)
    ref = 2 * torch.einsum("tnp,tn->tp", ls.X, torch.einsum("tnp,tp->tn", ls.X, theta) - ls.y)
    assert torch.allclose(G, ref)
    bh = beverton_holt_tasks(2, n_train=7, n_val=3, generator=g)
    assert bh.p == 46 == mlp_num_params((1, 5, 5, 1))
    assert interpolation_tasks(2, n_train=7, n_val=3, generator=g).p == 141
    th = bh.init_params(g)
    assert bh.loss(th).shape == (2,) and bh.val_loss(th).shape == (2,)
    # the batched forward equals a per-task nn.Sequential with the same weights
    net = torch.nn.Sequential(torch.nn.Linear(1, 5), torch.nn.Tanh(), torch.nn.Linear(5, 5), torch.nn.Tanh(),
                              torch.nn.Linear(5, 1))
    torch.nn.utils.vector_to_parameters(th[1], net.parameters())
    assert torch.allclose(mlp_forward(th, bh.x_val, bh.sizes)[1], net(bh.x_val[1]))
    sub = bh.subset(torch.tensor([1]))
    assert torch.allclose(sub.val_loss(th[1:]), bh.val_loss(th)[1:])
    with pytest.raises(ValueError, match="theta must have shape"):
        ls.loss(torch.zeros(2, 4))


def test_baseline_tuning_picks_the_best_grid_point_and_runs_are_independent_per_task():
    g = torch.Generator().manual_seed(0)
    ls = least_squares_tasks(4, p=5, n=8, generator=g)
    lrs = [1e-4, 1e-2, 10.0]
    best, finals = tune_baseline(ls, "sgd", lrs, 10)
    assert finals[2] > 1e6 * finals.min()  # lr 10 blows up on these problems
    assert best == lrs[int(finals.argmin())]
    both = run_baseline(ls, "adam", 1e-2, 5)
    one = run_baseline(ls.subset(torch.tensor([0])), "adam", 1e-2, 5)
    two = run_baseline(ls.subset(torch.tensor([1, 2, 3])), "adam", 1e-2, 5)
    assert torch.allclose(both, (one + 3 * two) / 4)
    with pytest.raises(ValueError, match="baseline"):
        run_baseline(ls, "lion", 1e-2, 5)


# ------------------------------------------------------------------------------------------------ Algorithm 7
def test_meta_training_lowers_l_total_and_persistent_state_moves():
    g = torch.Generator().manual_seed(0)
    tasks = least_squares_tasks(20, p=10, n=10, generator=g)
    for persistent in (False, True):
        opt = DCOMomentum(10)
        res = meta_train(opt, tasks, epochs=15, persistent=persistent)
        assert res.losses[-1] < res.losses[0]
        assert torch.count_nonzero(res.theta).item() == (200 if persistent else 0)
    res = meta_train(DCOGradient(10), tasks, epochs=2, task_batch=7)
    assert len(res.losses) == 2 * 3  # ceil(20 / 7) meta-steps per epoch (Remark 14)


def test_horizon_two_uses_second_order_terms():
    g = torch.Generator().manual_seed(0)
    tasks = least_squares_tasks(3, p=4, n=6, generator=g)
    opt = DCOGradient(4, normalize=False, lam0=5.0)
    theta0 = tasks.init_params()
    theta2, _ = unroll(opt, tasks, theta0, None, 2, create_graph=True)
    (grad_full,) = torch.autograd.grad(tasks.val_loss(theta2).mean(), opt.lam)
    theta2d, _ = unroll(opt, tasks, theta0, None, 2, create_graph=False)
    (grad_trunc,) = torch.autograd.grad(tasks.val_loss(theta2d).mean(), opt.lam)
    # a finite difference agrees with the full (second-order) meta-gradient only
    eps, j = 1e-6, 2
    with torch.no_grad():
        opt.lam[j] += eps
        up = tasks.val_loss(unroll(opt, tasks, theta0, None, 2)[0]).mean()
        opt.lam[j] -= 2 * eps
        dn = tasks.val_loss(unroll(opt, tasks, theta0, None, 2)[0]).mean()
    fd = (up - dn) / (2 * eps)
    assert abs(grad_full[j] - fd) < 1e-6 * max(1.0, abs(fd))
    assert abs(grad_trunc[j] - fd) > 1e-4 * abs(fd)


def test_meta_train_errors_and_timing_helper():
    tasks = least_squares_tasks(2, p=3, n=3)
    with pytest.raises(ValueError, match="horizon"):
        meta_train(DCOGradient(3), tasks, horizon=0)
    with pytest.raises(ValueError, match="task_batch"):
        meta_train(DCOGradient(3), tasks, task_batch=5)
    secs = meta_step_seconds({"a": DCOGradient(3), "b": DCOGeneralDescent(3)}, tasks, repeats=2)
    assert set(secs) == {"a", "b"} and all(len(v) == 2 and min(v) > 0 for v in secs.values())
    assert evaluate(DCOGradient(3), tasks, 4).shape == (5,)


# ------------------------------------------------------------------------------------------------ Theorem 6
def _shifted(n=12, p=3, n_tasks=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    X, y = torch.randn(n, p, generator=g), torch.randn(n, generator=g)
    tasks = shifted_least_squares_tasks(X, y, torch.randn(n_tasks, p, generator=g))
    return X, y, tasks, torch.randn(n_tasks, p, generator=g)


def test_theorem6_optimal_rule_solves_every_task_in_one_step():
    X, y, tasks, theta1 = _shifted()
    opt = DCOGeneralDescent(3, normalize=False)
    with torch.no_grad():
        opt.B.copy_(optimal_general_descent(X))
    l_star = optimal_value(X, y)
    out = tasks.val_loss(opt(theta1, tasks.grad(theta1))[0])
    assert torch.allclose(out, l_star.expand_as(out), rtol=1e-10)


def test_theorem6_meta_gd_converges_linearly_to_b_star():
    X, y, tasks, theta1 = _shifted()
    G = tasks.grad(theta1)
    mu, L = meta_curvature(G, X)
    assert 0 < mu < L
    b_star = optimal_general_descent(X)
    opt = DCOGeneralDescent(3, normalize=False)
    d0 = float((opt.B.detach() - b_star).norm() ** 2)
    gaps = []
    meta_train(opt, tasks, epochs=300, theta0=theta1, meta_optimizer=lambda ps: torch.optim.SGD(ps, lr=1 / L),
               callback=lambda k, o: gaps.append((k, float((o.B.detach() - b_star).norm() ** 2))))
    assert all(d <= (1 - mu / L) ** k * d0 * (1 + 1e-9) for k, d in gaps)
    assert gaps[-1][1] < 1e-3 * d0
    # the best B for normalized gradients is found exactly by the linear solve and is not B*
    Gn = G / G.norm(dim=1, keepdim=True)
    Bn = best_fixed_general_descent(tasks, theta1, Gn)
    opt_n = DCOGeneralDescent(3, normalize=True)
    with torch.no_grad():
        opt_n.B.copy_(Bn)
    best = tasks.val_loss(opt_n(theta1, G)[0]).mean()
    with torch.no_grad():
        opt_n.B.add_(1e-3 * torch.randn(3, 3, generator=torch.Generator().manual_seed(3)))
    assert tasks.val_loss(opt_n(theta1, G)[0]).mean() > best
    assert best > optimal_value(X, y) + 1e-3


def test_theory_helpers_reject_bad_shapes():
    with pytest.raises(ValueError, match="n >= p"):
        optimal_general_descent(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="G must have shape"):
        meta_curvature(torch.zeros(4, 2), torch.randn(5, 3))
    with pytest.raises(ValueError, match="deltas"):
        shifted_least_squares_tasks(torch.randn(5, 3), torch.randn(5), torch.randn(4, 2))
    with pytest.raises(ValueError, match="X must have shape"):
        LeastSquaresTasks(torch.randn(4, 5, 3), torch.randn(4, 6))

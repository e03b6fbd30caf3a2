"""Theorem 6: the one-step rule B*, the meta-curvature, linear convergence, the best B for normalized gradients."""

from __future__ import annotations

import pytest
import torch

from effcourse.dco.layers import DCOGeneralDescent
from effcourse.dco.meta import meta_train
from effcourse.dco.tasks import shifted_least_squares_tasks
from effcourse.dco.theory import (
    best_fixed_general_descent,
    meta_curvature,
    optimal_general_descent,
    optimal_value,
)


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
    X, _, tasks, theta1 = _shifted()
    with pytest.raises(ValueError, match="G must have the shape of theta1"):
        best_fixed_general_descent(tasks, theta1, theta1[:, :2])

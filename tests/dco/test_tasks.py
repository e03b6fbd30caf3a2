"""The batched task families (4.17), (4.22)-(4.24): shapes, per-task gradients, the batched networks."""

from __future__ import annotations

import pytest
import torch

from effcourse.dco.tasks import (
    LeastSquaresTasks,
    beverton_holt_tasks,
    interpolation_tasks,
    least_squares_tasks,
    mlp_forward,
    mlp_num_params,
    shifted_least_squares_tasks,
)


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


def test_shifted_family_shares_the_design_and_shifts_the_target():
    g = torch.Generator().manual_seed(1)
    X, y, deltas = torch.randn(7, 3, generator=g), torch.randn(7, generator=g), torch.randn(4, 3, generator=g)
    tasks = shifted_least_squares_tasks(X, y, deltas)
    assert tasks.n_tasks == 4 and tasks.p == 3
    # task i is solved by theta' + Delta_i, with theta' the least-squares solution for y
    theta_prime = torch.linalg.lstsq(X, y.unsqueeze(-1)).solution.squeeze(-1)
    assert torch.allclose(tasks.grad(theta_prime + deltas), torch.zeros(4, 3), atol=1e-10)


def test_bad_task_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="deltas"):
        shifted_least_squares_tasks(torch.randn(5, 3), torch.randn(5), torch.randn(4, 2))
    with pytest.raises(ValueError, match="X must have shape"):
        LeastSquaresTasks(torch.randn(4, 5, 3), torch.randn(4, 6))
    with pytest.raises(ValueError, match="n_tasks"):
        least_squares_tasks(0)
    with pytest.raises(ValueError, match="sizes"):
        beverton_holt_tasks(2, n_train=3, n_val=2, sizes=(2, 5, 1))

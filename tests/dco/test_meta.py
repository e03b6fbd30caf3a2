"""Algorithm 7 (meta_train), the unrolled inner loop, and the evaluation of a learned rule."""

from __future__ import annotations

import pytest
import torch

from effcourse.dco.layers import DCOGeneralDescent, DCOGradient, DCOMomentum
from effcourse.dco.meta import evaluate_optimizer, meta_step_seconds, meta_train, unroll
from effcourse.dco.tasks import least_squares_tasks


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


def test_evaluate_optimizer_is_the_unrolled_validation_curve_and_leaves_phi_alone():
    g = torch.Generator().manual_seed(2)
    tasks = least_squares_tasks(3, p=4, n=6, generator=g)
    opt = DCOMomentum(4, lam0=2.0, m0=0.5)
    before = [q.detach().clone() for q in opt.parameters()]
    curve = evaluate_optimizer(opt, tasks, 4)
    assert curve.shape == (5,) and not curve.requires_grad
    theta0 = tasks.init_params()
    assert torch.isclose(curve[0], tasks.val_loss(theta0).mean())
    theta3, _ = unroll(opt, tasks, theta0, opt.init_state(theta0), 3)
    assert torch.isclose(curve[3], tasks.val_loss(theta3).mean())
    assert all(torch.equal(a, b) for a, b in zip(before, opt.parameters()))
    with pytest.raises(ValueError, match="steps"):
        evaluate_optimizer(opt, tasks, -1)


def test_meta_train_errors_and_timing_helper():
    tasks = least_squares_tasks(2, p=3, n=3)
    with pytest.raises(ValueError, match="horizon"):
        meta_train(DCOGradient(3), tasks, horizon=0)
    with pytest.raises(ValueError, match="task_batch"):
        meta_train(DCOGradient(3), tasks, task_batch=5)
    with pytest.raises(ValueError, match="steps"):
        unroll(DCOGradient(3), tasks, tasks.init_params(), None, -1)
    secs = meta_step_seconds({"a": DCOGradient(3), "b": DCOGeneralDescent(3)}, tasks, repeats=2)
    assert set(secs) == {"a", "b"} and all(len(v) == 2 and min(v) > 0 for v in secs.values())

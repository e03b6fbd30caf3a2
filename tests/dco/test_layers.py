"""The DCO update rules (4.13)-(4.16): closed forms, the cvxpylayers backend, the DPP rewrite, bad inputs."""

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

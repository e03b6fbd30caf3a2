"""The s <-> p maps and the bit penalty of SMOL's relaxation (Savarese 2025, Def. 5.5, eq. 5.20)."""

from __future__ import annotations

import math

import pytest
import torch

from effcourse.smol import precision as pr


def test_s_p_maps():
    assert math.isclose(float(pr.precision_to_s(8.0)), -math.log(127), rel_tol=1e-6)
    assert math.isclose(float(torch.sigmoid(pr.precision_to_s(8.0))), 2 ** -7, rel_tol=1e-5)
    p = torch.linspace(1.1, 20, 50, dtype=torch.float64)
    assert torch.allclose(pr.s_to_precision(pr.precision_to_s(p)), p)
    s = torch.randn(200, dtype=torch.float64) * 5
    # sigma(s) = 2^(1 - p)
    assert torch.allclose(torch.sigmoid(s), torch.exp2(1 - pr.s_to_precision(s)))
    assert torch.allclose(pr.precision_penalty(s), (pr.s_to_precision(s) - 1).sum())
    assert torch.allclose(pr.precision_penalty(s, group_size=7), 7 * (pr.s_to_precision(s) - 1).sum())


def test_integer_precision_rounding():
    s = pr.precision_to_s(torch.tensor([2.4, 2.6, 3.0001]))
    assert pr.integer_precision(s).tolist() == [2, 2, 3]
    assert pr.integer_precision(s, "round").tolist() == [2, 3, 3]
    assert pr.integer_precision(s, "ceil").tolist() == [3, 3, 4]
    assert int(pr.integer_precision(torch.tensor(50.0))) == 1  # huge noise: one bit, never fewer


def test_penalty_gradient_pushes_towards_fewer_bits():
    s = torch.zeros(3, requires_grad=True)
    pr.precision_penalty(s).backward()
    assert bool((s.grad < 0).all())  # descent raises s, i.e. widens the noise


def test_errors():
    with pytest.raises(ValueError, match="p must be > 1"):
        pr.precision_to_s(1.0)
    with pytest.raises(ValueError, match="rounding must be one of"):
        pr.integer_precision(torch.zeros(1), "nearest")
    with pytest.raises(ValueError, match="group_size must be a positive int"):
        pr.precision_penalty(torch.zeros(2), 0)

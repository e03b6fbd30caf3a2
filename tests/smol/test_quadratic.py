"""The separable quadratic, its closed-form precisions, and SMOL finding them (Fig. 5.2)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from effcourse.smol import SeparableQuadratic, learn_quadratic_precisions, optimal_precision


def test_separable_quadratic_value():
    q = SeparableQuadratic([1.0, 4.0], [0.5, -0.5])
    assert math.isclose(float(q().detach()), 0.5 * 0.25 + 0.5 * 4 * 0.25)
    with torch.no_grad():
        q.weight.copy_(q.c)
    assert float(q().detach()) == 0.0


def test_optimal_precision_closed_form():
    p = optimal_precision([1.0, 10.0], 1e-3)
    assert math.isclose(p[1] - p[0], 0.5 * math.log2(10))  # ten times the curvature: 1.66 more bits
    sigma2 = 2.0 ** (2 * (1 - p[0]))
    assert math.isclose(sigma2, 3 * 1e-3 / (1.0 * math.log(2)))


def test_learned_precisions_approach_the_optimum_and_grow_with_curvature():
    torch.manual_seed(0)
    run = learn_quadratic_precisions([1.0, 100.0], [0.5, -0.25], 1e-3, steps=1500, samples=8, every=100)
    assert run.trace.shape == (16, 2)
    assert run.p_learned[1] > run.p_learned[0]
    assert run.max_gap < 0.5
    assert np.allclose(run.p_star, optimal_precision([1.0, 100.0], 1e-3))


def test_the_seed_fixes_the_noise():
    a, b, c = (learn_quadratic_precisions([1.0, 100.0], [0.5, -0.25], 1e-3, steps=50, samples=2, seed=s)
               for s in (3, 3, 4))
    assert np.array_equal(a.p_learned, b.p_learned) and not np.array_equal(a.p_learned, c.p_learned)


def test_errors():
    with pytest.raises(ValueError, match="non-empty vectors of one length"):
        SeparableQuadratic([1.0, 2.0], [0.0])
    with pytest.raises(ValueError, match="must be positive"):
        SeparableQuadratic([0.0], [0.0])
    with pytest.raises(ValueError, match="lam must be positive"):
        optimal_precision([1.0], 0.0)
    with pytest.raises(ValueError, match="steps and samples must be positive ints"):
        learn_quadratic_precisions([1.0], [0.0], 1e-3, steps=0, samples=1)

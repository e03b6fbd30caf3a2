"""The layer similarity matrix (eq. 3.13) and the recurrence regularizer (eq. 3.19)."""

from __future__ import annotations

import pytest
import torch

from effcourse.soft_sharing.similarity import (
    layer_similarity,
    mean_offdiagonal,
    recurrence_regularizer,
    weight_similarity,
)

# The worked example of eqs. 3.15-3.18 (columns = layers).
ALPHA = torch.tensor([[0.8, 0.1, -1.2, 0.2, -0.4],
                      [-0.2, 0.6, 0.3, 1.2, -0.3],
                      [0.6, -0.2, -0.9, -0.4, 0.7],
                      [0.2, 1.2, -0.3, 2.4, -0.1]], dtype=torch.float64)


def test_lsm_invariances_and_regularizer():
    s = layer_similarity(ALPHA * torch.tensor([1.0, -3.0, 0.5, 2.0, -0.1], dtype=torch.float64))
    torch.testing.assert_close(s, layer_similarity(ALPHA))
    torch.testing.assert_close(s, s.T)
    assert mean_offdiagonal(layer_similarity(torch.randn(1, 5))) == pytest.approx(1.0)
    alpha = torch.randn(4, 6, requires_grad=True)
    r = recurrence_regularizer(alpha, 0.1)
    assert float(r.detach()) == pytest.approx(-0.1 * float(layer_similarity(alpha.detach()).sum()), rel=1e-6)
    r.backward()
    assert alpha.grad is not None and torch.isfinite(alpha.grad).all()
    # weight_similarity of identical (up to sign) weights is one
    w = torch.randn(3, 3)
    assert mean_offdiagonal(weight_similarity([w, -2 * w])) == pytest.approx(1.0)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="alpha must be a 2-d"):
        layer_similarity(torch.ones(3))
    with pytest.raises(ValueError, match="square"):
        mean_offdiagonal(torch.ones(2, 3))
    with pytest.raises(ValueError, match="lam"):
        recurrence_regularizer(torch.ones(2, 3), -0.1)
    with pytest.raises(ValueError, match="at least one"):
        weight_similarity([])

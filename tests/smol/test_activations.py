"""SMOL-A: PACT-clipped activations with learned precisions (Savarese 2025, 5.4.3)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from effcourse.smol import ActivationSMOL, add_activation_smol


def test_activation_smol():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    acts = add_activation_smol(model, torch.randn(3, 4), alpha=1.0, p_init=3.0)
    assert len(acts) == 1 and isinstance(model[1], ActivationSMOL) and tuple(acts[0].s.shape) == (6,)
    x = torch.randn(50, 6) * 3
    a = acts[0].eval()
    y = a(x)
    assert float(y.detach().min()) >= 0 and float(y.detach().max()) <= 1.0
    a.set_precision(2)
    assert a.mode == "quant"
    levels = torch.unique(a(x))  # 2 bits: 4 levels 0, 1/3, 2/3, 1 on [0, alpha]
    assert len(levels) <= 4 and torch.allclose(levels * 3, torch.round(levels * 3), atol=1e-5)


def test_allocate_maps_s_to_integer_precisions():
    a = ActivationSMOL((5,), p_init=4.0)
    assert a.allocate().tolist() == [4] * 5 and a.mode == "quant"


def test_errors():
    with pytest.raises(ValueError, match="shape must list positive sizes"):
        ActivationSMOL(())
    with pytest.raises(ValueError, match="alpha must be positive"):
        ActivationSMOL((3,), alpha=0.0)
    with pytest.raises(ValueError, match="bits must be a positive int"):
        ActivationSMOL((3,)).set_precision(0)
    with pytest.raises(ValueError, match="no nn.ReLU"):
        add_activation_smol(nn.Linear(2, 2), torch.zeros(1, 2))

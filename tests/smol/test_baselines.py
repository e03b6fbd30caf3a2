"""The baselines: uniform k-bit quantization with SMOL's budget, and the sensitivity allocation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from effcourse.core.data import Split
from effcourse.smol import SMOL, sensitivity_allocation, uniform_pipeline


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))


def test_sensitivity_allocation_meets_budget():
    torch.manual_seed(0)
    model = _mlp()
    smol = SMOL(model).set_mode("fp")
    x = torch.randn(64, 5)
    y = torch.randint(0, 3, (64,))
    alloc = sensitivity_allocation(smol, x, y, budget_bpp=3.0)
    assert set(alloc) == set(smol.names)
    assert smol.bits_per_parameter() <= 3.0
    assert F.cross_entropy(model(x), y).isfinite()


def test_uniform_pipeline_quantizes_every_weight_to_k_bits():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(128, 5, generator=g)
    y = (x[:, 0] > 0).long()
    data = Split(x, y, x, y, 3)
    r = uniform_pipeline(_mlp(), data, [1, 2], precision_epochs=2, finetune_epochs=1, batch_size=32,
                         generator=torch.Generator().manual_seed(0))
    assert {"err_fp_before", "err_fp", "err_u1_before", "err_u1_after", "err_u2_before", "err_u2_after"} <= set(r)
    assert r["err_fp"] <= 0.5  # a linear task: full precision learns it
    smol = r["smol"]
    assert all(m == "fp" for m in (smol.parametrization(n).mode for n in smol.names))


def test_errors():
    smol = SMOL(_mlp()).set_mode("fp")
    x, y = torch.randn(4, 5), torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match="budget_bpp must be >= min"):
        sensitivity_allocation(smol, x, y, budget_bpp=0.5)
    with pytest.raises(ValueError, match="bits must list positive ints"):
        sensitivity_allocation(smol, x, y, budget_bpp=2.0, bits=[0, 2])
    data = Split(x, y, x, y, 3)
    with pytest.raises(ValueError, match="bits must list positive ints"):
        uniform_pipeline(_mlp(), data, [0], precision_epochs=1, finetune_epochs=1)

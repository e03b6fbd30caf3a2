"""Template banks and soft-shared layers (Savarese 2025, eqs. 3.11-3.12): mixing, counting, init, decay groups."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from effcourse.soft_sharing.similarity import layer_similarity
from effcourse.soft_sharing.templates import (
    SConv2d,
    SLinear,
    TemplateBank,
    coefficient_param_groups,
    orthogonal_coefficients_,
    sharing_groups,
    stack_coefficients,
)


def test_sconv_is_linear_in_templates_eq_3_12():
    torch.manual_seed(0)
    bank = TemplateBank(3, (4, 5, 3, 3), dtype=torch.float64)
    layer = SConv2d(bank, stride=1, padding=1)
    x = torch.randn(2, 5, 6, 6, dtype=torch.float64)
    mixed = sum(layer.coefficients[i] * F.conv2d(x, bank.templates[i], padding=1) for i in range(3))
    torch.testing.assert_close(layer(x), mixed)


def test_slinear_and_shared_bank_counted_once():
    bank = TemplateBank(2, (3, 4))
    a, b = SLinear(bank), SLinear(bank)
    net = nn.ModuleDict({"bank": bank, "a": a, "b": b})
    assert sum(p.numel() for p in net.parameters()) == 2 * 12 + 2 + 2
    x = torch.randn(5, 4)
    torch.testing.assert_close(a(x), x @ (a.coefficients @ bank.templates.view(2, -1)).view(3, 4).T)
    assert len(sharing_groups(net)) == 1 and len(sharing_groups(net)[0]) == 2


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="k must"):
        TemplateBank(0, (3, 3))
    with pytest.raises(ValueError, match="4-d"):
        SConv2d(TemplateBank(2, (3, 4)))
    with pytest.raises(TypeError, match="bank must be a TemplateBank"):
        SConv2d(torch.zeros(2, 3, 3, 3))
    with pytest.raises(ValueError, match="weight_decay"):
        coefficient_param_groups(nn.Linear(2, 2), -1.0)


def test_orthogonal_init_gives_identity_lsm():
    bank = TemplateBank(6, (4, 4, 3, 3))
    layers = [SConv2d(bank) for _ in range(6)]
    orthogonal_coefficients_(layers)
    s = layer_similarity(stack_coefficients(layers).detach())
    torch.testing.assert_close(s, torch.eye(6), atol=1e-5, rtol=0)


def test_no_weight_decay_on_coefficients():
    bank = TemplateBank(2, (3, 4))
    net = nn.ModuleDict({"bank": bank, "a": SLinear(bank), "fc": nn.Linear(3, 2)})
    groups = coefficient_param_groups(net, 5e-4)
    decayed = {id(p) for p in groups[0]["params"]}
    assert groups[1]["weight_decay"] == 0.0 and groups[0]["weight_decay"] == 5e-4
    assert id(net["a"].coefficients) not in decayed and id(bank.templates) in decayed
    assert len(groups[0]["params"]) + len(groups[1]["params"]) == len(list(net.parameters()))

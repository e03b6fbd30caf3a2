"""The chapter's model factory and which weights it quantizes."""

from __future__ import annotations

import pytest
import torch

from effcourse.core.data import Split
from effcourse.core.models import ResNet20
from effcourse.smol import count_quantized, make_cnn, make_model, quantized_names

CFG = {"model": "mlp", "hidden": 16, "channels": 4}


def _flat():
    x = torch.randn(10, 7)
    y = torch.zeros(10, dtype=torch.long)
    return Split(x, y, x, y, 10)


def test_make_model_is_seeded_and_sized_by_the_data():
    a, b = make_model(CFG, _flat(), 3), make_model(CFG, _flat(), 3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert a(torch.randn(2, 7)).shape == (2, 10)
    assert not torch.equal(make_model(CFG, _flat(), 4)[0].weight, a[0].weight)


def test_quantized_names_skip_resnet_shortcuts():
    names = quantized_names(ResNet20())
    assert "conv.weight" in names and "fc.weight" in names
    assert not any("shortcut" in n for n in names)
    mlp = make_model(CFG, _flat(), 0)
    assert count_quantized(mlp) == 7 * 16 + 16 * 16 + 16 * 10


def test_make_cnn():
    cnn = make_cnn(CFG, 0)
    assert cnn(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_errors():
    with pytest.raises(ValueError, match="cfg\\['model'\\] must be one of"):
        make_model({**CFG, "model": "vgg"}, _flat(), 0)
    images = Split(torch.zeros(2, 1, 8, 8), torch.zeros(2, dtype=torch.long), torch.zeros(2, 1, 8, 8),
                   torch.zeros(2, dtype=torch.long), 10)
    with pytest.raises(ValueError, match="the MLP needs flat rows"):
        make_model(CFG, images, 0)

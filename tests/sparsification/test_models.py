"""The chapter's networks (effcourse.sparsification.models): the thesis's CIFAR models, masked layers, the factory."""

from __future__ import annotations

import pytest
import torch

import effcourse.sparsification.models as models_module
from effcourse.core.data import Split
from effcourse.core.models import MLP, ResNet20
from effcourse.sparsification.masks import prunable_layers
from effcourse.sparsification.models import VGG16, Conv6, make_model, masked_layers, sparsifiable_layers


def test_thesis_models_and_their_sparsifiable_layers():
    r = ResNet20()
    lay = sparsifiable_layers(r)
    assert len(lay) == 19 and all(m.kernel_size == (3, 3) for m in lay.values())  # 1 + 18 convs, no shortcuts
    assert len(sparsifiable_layers(VGG16())) == 13
    c6 = sparsifiable_layers(Conv6())
    assert len(c6) == 8 and "classifier.4" not in c6
    assert r(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(TypeError):
        sparsifiable_layers(MLP([2, 2]))


def test_models_does_not_re_export_resnet20():
    assert "ResNet20" not in models_module.__all__ and not hasattr(models_module, "ResNet20")


def test_masked_layers_follow_the_thesis_or_fall_back_to_prunable_layers():
    assert list(masked_layers(ResNet20())) == list(sparsifiable_layers(ResNet20()))
    net = MLP([4, 8, 8, 3])
    assert list(masked_layers(net)) == list(prunable_layers(net)) == ["0", "2"]


def _split(x: torch.Tensor, classes: int = 3) -> Split:
    y = torch.arange(x.shape[0]) % classes
    return Split(x, y, x, y, classes)


def test_make_model_sizes_the_network_for_the_data():
    flat = _split(torch.randn(6, 5))
    torch.manual_seed(0)
    net = make_model("mlp", flat, hidden=[7, 4])
    torch.manual_seed(0)
    ref = MLP([5, 7, 4, 3])
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), ref.parameters()))  # same draws, same weights
    images = _split(torch.randn(2, 3, 32, 32), classes=10)
    assert make_model("resnet20", images)(images.x_train).shape == (2, 10)
    assert isinstance(make_model("conv6", images), Conv6)
    with pytest.raises(ValueError, match="name must be one of"):
        make_model("resnet50", images)
    with pytest.raises(ValueError, match="flat inputs"):
        make_model("mlp", images)
    with pytest.raises(ValueError, match="images"):
        make_model("vgg16", flat)

"""The networks of the chapter: the digits MLP and the CIFAR-10 networks of Savarese (2025), 4.3.2.

ResNet-20 lives in :mod:`effcourse.core.models`; the VGG-16 variant and Conv-6 are here.  :func:`sparsifiable_layers`
names the layers the thesis masks (every 3x3 convolution; ResNet-20's two 1x1 shortcut convolutions and the
classifier stay dense), :func:`masked_layers` extends it to any model, and :func:`make_model` builds the network a
configuration names (``cfg.model``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..core import models as core_models
from ..core.data import Split
from .masks import Layers, prunable_layers

__all__ = ["MODELS", "Conv6", "VGG16", "make_model", "masked_layers", "sparsifiable_layers"]

MODELS = ("mlp", "resnet20", "vgg16", "conv6")


_VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


class VGG16(nn.Module):
    """The thesis's VGG-16 variant for CIFAR: 13 3x3 convolutions, each followed by ReLU *then* batch norm."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for v in _VGG16:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(v)]
                c = v
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


class Conv6(nn.Module):
    """Frankle & Carbin's Conv-6: 3 blocks of two 3x3 convolutions (64, 128, 256 channels) + 2x2 max-pool, then
    fully connected layers of 256, 256 and 10 units; ReLU after every layer but the last (no batch norm)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3, image_size: int = 32):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for w in (64, 128, 256):
            layers += [nn.Conv2d(c, w, 3, padding=1), nn.ReLU(), nn.Conv2d(w, w, 3, padding=1), nn.ReLU(),
                       nn.MaxPool2d(2)]
            c = w
        self.features = nn.Sequential(*layers)
        flat = 256 * (image_size // 8) ** 2
        self.classifier = nn.Sequential(nn.Linear(flat, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                                        nn.Linear(256, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


def sparsifiable_layers(model: nn.Module) -> Layers:
    """The layers Savarese masks: every 3x3 convolution of ResNet-20 / VGG-16 (not the 1x1 shortcuts, not the
    classifier); for Conv-6 every convolution and the two hidden fully connected layers."""
    if isinstance(model, Conv6):
        out = {n: m for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
        out.pop(f"classifier.{len(model.classifier) - 1}")
        return out
    if isinstance(model, (core_models.ResNet20, VGG16)):
        return {n: m for n, m in model.named_modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)}
    raise TypeError(f"model must be ResNet20, VGG16 or Conv6; got {type(model).__name__}")


def masked_layers(model: nn.Module) -> Layers:
    """The layers every method masks in ``model``: :func:`sparsifiable_layers` for the thesis's networks, else
    :func:`~effcourse.sparsification.masks.prunable_layers` (every ``Linear``/``Conv2d`` but the classifier)."""
    if isinstance(model, (core_models.ResNet20, VGG16, Conv6)):
        return sparsifiable_layers(model)
    return prunable_layers(model)


def make_model(name: str, data: Split, hidden: Sequence[int] = (), device: str | torch.device = "cpu") -> nn.Module:
    """The network ``name`` (one of :data:`MODELS`) sized for ``data``: ``"mlp"`` takes flat inputs and the
    ``hidden`` widths; the CIFAR networks take ``C x 32 x 32`` images."""
    if name not in MODELS:
        raise ValueError(f"name must be one of {MODELS}; got {name!r}")
    if name == "mlp":
        if data.x_train.dim() != 2:
            raise ValueError(f"model 'mlp' needs flat inputs (N x F); got data of shape {tuple(data.x_train.shape)}")
        return core_models.MLP([data.num_features, *hidden, data.num_classes], device=device)
    if data.x_train.dim() != 4:
        raise ValueError(f"model {name!r} needs images (N x C x H x W); got shape {tuple(data.x_train.shape)}")
    cls = {"resnet20": core_models.ResNet20, "vgg16": VGG16, "conv6": Conv6}[name]
    return cls(num_classes=data.num_classes, in_channels=data.x_train.shape[1]).to(device)

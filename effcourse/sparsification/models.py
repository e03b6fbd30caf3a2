"""The CIFAR-10 networks of Savarese (2025), 4.3.2: ResNet-20, the VGG-16 variant and Conv-6 (``full`` scale).

Each model exposes ``prunable(model)`` semantics through :func:`sparsifiable_layers`: the layers the thesis masks
(every 3x3 convolution; ResNet-20's two 1x1 shortcut convolutions and the classifier stay dense).
"""

from __future__ import annotations

import torch
from torch import nn

from ..core.models import ResNet20

__all__ = ["Conv6", "VGG16", "sparsifiable_layers"]


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


def sparsifiable_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The layers Savarese masks: every 3x3 convolution of ResNet-20 / VGG-16 (not the 1x1 shortcuts, not the
    classifier); for Conv-6 every convolution and the two hidden fully connected layers."""
    if isinstance(model, Conv6):
        out = {n: m for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
        out.pop(f"classifier.{len(model.classifier) - 1}")
        return out
    if isinstance(model, (ResNet20, VGG16)):
        return {n: m for n, m in model.named_modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)}
    raise TypeError(f"model must be ResNet20, VGG16 or Conv6; got {type(model).__name__}")

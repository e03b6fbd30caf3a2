"""The networks of chapter 7 and which of their weights SMOL quantizes.

The configuration's ``model`` picks the network: ``"mlp"`` (the digits MLP, two hidden layers of ``hidden`` units)
or ``"resnet20"`` (the thesis's CIFAR-10 ResNet-20, 5.3.3).  Every model is built right after
``torch.manual_seed(seed)``, so a seed fixes its initialization.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..core.data import Split
from ..core.models import MLP, ResNet20, SmallCNN

__all__ = ["MODELS", "count_quantized", "make_cnn", "make_model", "quantized_names"]

MODELS = ("mlp", "resnet20")


def make_model(cfg: Mapping[str, Any], data: Split, seed: int, device: str | torch.device = "cpu") -> nn.Module:
    """The chapter's network for ``cfg["model"]``, initialized from ``torch.manual_seed(seed)``."""
    name = cfg["model"]
    if name not in MODELS:
        raise ValueError(f"cfg['model'] must be one of {MODELS}; got {name!r}")
    torch.manual_seed(seed)
    if name == "resnet20":
        return ResNet20(num_classes=data.num_classes).to(device)  # the thesis's CIFAR-10 model
    if data.x_train.dim() != 2:
        raise ValueError(f"the MLP needs flat rows (dataset(..., flat=True)); got inputs of shape "
                         f"{tuple(data.x_train.shape[1:])}")
    return MLP([data.num_features, cfg["hidden"], cfg["hidden"], data.num_classes]).to(device)


def make_cnn(cfg: Mapping[str, Any], seed: int, device: str | torch.device = "cpu") -> nn.Module:
    """The small CNN of section 5 (``SmallCNN`` with ``cfg["channels"]`` and twice as many channels, BatchNorm)."""
    torch.manual_seed(seed)
    return SmallCNN(cfg["channels"]).to(device)


def quantized_names(model: nn.Module) -> list[str]:
    """The weights SMOL quantizes: every Linear/Conv2d weight except the 1x1 shortcut convolutions (as the thesis,
    which also keeps BatchNorm in full precision)."""
    return [f"{n}.weight" for n, m in model.named_modules()
            if isinstance(m, (nn.Linear, nn.Conv2d)) and "shortcut" not in n]


def count_quantized(model: nn.Module) -> int:
    """``d``, the number of quantized weights (``lambda * d`` is the size-free strength of the penalty)."""
    params = dict(model.named_parameters())
    return sum(params[n].numel() for n in quantized_names(model))

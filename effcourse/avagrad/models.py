"""The network each scale trains (Savarese 2025, 6.3): an MLP on flat digits, Wide ResNets on CIFAR-10.

The thesis tunes (alpha, eps) on a WRN-28-4 and reports a WRN-28-10 trained with the tuned values; the book's
scales use one MLP with two hidden layers for both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from ..core.data import Split
from ..core.models import MLP, WideResNet

__all__ = ["MODELS", "model_factory"]

MODELS = ("mlp", "wrn")


def model_factory(cfg: Mapping[str, Any], data: Split, device: str | torch.device = "cpu",
                  final: bool = False) -> Callable[[], nn.Module]:
    """A zero-argument builder of the model ``cfg["model"]`` names, sized for ``data``.

    ``"mlp"``: ``data.num_features -> hidden -> hidden -> classes``, the same for tuning and ``final``.
    ``"wrn"``: WRN-28-4 for tuning, WRN-28-``cfg["widen"]`` when ``final`` (the thesis's Table 6.1 networks).
    """
    kind = cfg["model"]
    if kind == "mlp":
        sizes = [data.num_features, cfg["hidden"], cfg["hidden"], data.num_classes]
        return lambda: MLP(sizes, device=device)
    if kind == "wrn":
        widen = cfg["widen"] if final else 4
        return lambda: WideResNet(28, widen, data.num_classes).to(device)
    raise ValueError(f"cfg['model'] must be one of {MODELS}; got {kind!r}")

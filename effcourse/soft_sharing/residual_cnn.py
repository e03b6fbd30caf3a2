"""A digits-sized soft-shared residual CNN and the program it folds into (Sec. 3.2.2 at small scale).

* :class:`SharedResidualCNN`: a stem conv, ``depth`` pre-activation residual 3x3 convs (one sharing group, or
  unshared when ``templates=None``), and a linear head.
* :class:`FoldedResidualCNN`: a folded :class:`SharedResidualCNN`, ``n`` unique convs executed in a program order,
  each execution with its own signed scale and its own BatchNorm; :func:`fold_program` builds one.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .folding import least_squares_rounding, recalibrate_batchnorm, scaled_rounding
from .swrn import _conv
from .templates import SConv2d, TemplateBank, orthogonal_coefficients_, stack_coefficients

__all__ = ["FoldedResidualCNN", "SharedResidualCNN", "fold_program"]


class _PreAct(nn.Module):
    """``x + conv(relu(bn(x)))``: one pre-activation residual layer."""

    def __init__(self, channels: int, conv: nn.Module, device=None):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, device=device)
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(F.relu(self.bn(x)))


class SharedResidualCNN(nn.Module):
    """A residual CNN for ``1 x 8 x 8`` digits: stem, ``depth`` pre-activation 3x3 layers, BN-ReLU, pool, linear.

    ``templates=k`` makes the ``depth`` layers one sharing group with ``k`` templates (orthogonal coefficient
    init); ``templates=None`` gives each layer its own weight (the unshared baseline).
    """

    def __init__(self, channels: int = 16, depth: int = 8, templates: int | None = None, num_classes: int = 10,
                 in_channels: int = 1, device: str | torch.device | None = None):
        super().__init__()
        for name, v in (("channels", channels), ("depth", depth), ("num_classes", num_classes)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int; got {v!r}")
        if templates is not None and (not isinstance(templates, int) or templates < 1):
            raise ValueError(f"templates must be a positive int or None; got {templates!r}")
        c = channels
        self.stem = _conv(in_channels, c, 1, device)
        self.bank = None if templates is None else TemplateBank(templates, (c, c, 3, 3), device=device)
        convs = [_conv(c, c, 1, device) if self.bank is None else SConv2d(self.bank, 1, 1) for _ in range(depth)]
        self.layers = nn.ModuleList(_PreAct(c, conv, device) for conv in convs)
        self.bn = nn.BatchNorm2d(c, device=device)
        self.fc = nn.Linear(c, num_classes, device=device)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if self.bank is not None:
            orthogonal_coefficients_(self.convs)

    @property
    def convs(self) -> list[nn.Module]:
        return [layer.conv for layer in self.layers]

    def stack_parameters(self) -> int:
        """Parameters of the 3x3 stack alone: its convs (templates + coefficients), not BN, stem or head."""
        if self.bank is None:
            return sum(c.weight.numel() for c in self.convs)
        return self.bank.templates.numel() + sum(c.coefficients.numel() for c in self.convs)

    def alpha(self) -> torch.Tensor:
        """The ``k x depth`` coefficient matrix (shared model only)."""
        if self.bank is None:
            raise ValueError("an unshared model has no coefficients; use weight_similarity on its convs")
        return stack_coefficients(self.convs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x)
        x = F.relu(self.bn(x))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class FoldedResidualCNN(nn.Module):
    """A :class:`SharedResidualCNN` folded into a program: ``n`` unique convs run in the order ``order``.

    Execution ``t`` computes ``x + scale[t] * conv(relu(bn_t(x)), W[order[t]])``; the scales and BatchNorms are
    per execution (BN is not shared in the thesis either), the conv weights are shared by every call.
    ``mode="scaled"`` folds with :func:`scaled_rounding` (keeps sign and length); ``mode="naive"`` with the
    thesis's :func:`least_squares_rounding` (every call of a unique layer has scale 1).
    """

    def __init__(self, model: SharedResidualCNN, groups: torch.Tensor, mode: str = "scaled"):
        super().__init__()
        if not isinstance(model, SharedResidualCNN) or model.bank is None:
            raise ValueError("model must be a soft-shared SharedResidualCNN (templates is not None)")
        if mode not in ("scaled", "naive"):
            raise ValueError(f"mode must be 'scaled' or 'naive'; got {mode!r}")
        model = copy.deepcopy(model)
        alpha = model.alpha().detach()
        groups = torch.as_tensor(groups, dtype=torch.long)
        if mode == "scaled":
            u, scale = scaled_rounding(alpha, groups)
            mix = u.T
        else:
            _, mix = least_squares_rounding(alpha, groups)
            scale = torch.ones(alpha.shape[1], dtype=alpha.dtype, device=alpha.device)
        self.stem, self.bn, self.fc = model.stem, model.bn, model.fc
        self.weights = nn.Parameter(torch.tensordot(mix, model.bank.templates.detach(), dims=1))
        self.scale = nn.Parameter(scale.clone())
        self.bns = nn.ModuleList(layer.bn for layer in model.layers)
        self.register_buffer("order", groups.to(alpha.device))

    @property
    def unique_layers(self) -> int:
        return self.weights.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for t, bn in enumerate(self.bns):  # the program: step t calls unique layer order[t]
            x = x + self.scale[t] * F.conv2d(F.relu(bn(x)), self.weights[self.order[t]], None, 1, 1)
        x = F.relu(self.bn(x))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def fold_program(model: SharedResidualCNN, groups: torch.Tensor, mode: str = "scaled",
                 calibrate: torch.Tensor | None = None) -> FoldedResidualCNN:
    """Fold ``model`` by ``groups`` (see :class:`FoldedResidualCNN`); ``calibrate`` re-estimates its BN stats."""
    folded = FoldedResidualCNN(model, groups, mode)
    if calibrate is not None:
        recalibrate_batchnorm(folded, calibrate)
    return folded

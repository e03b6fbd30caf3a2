"""Shared wide residual networks (Savarese 2025, Sec. 3.3.2): SWRN-L-w-k, the thesis's CIFAR model.

:class:`SWRN` is the pre-activation WRN-L-w whose stages each share ``k`` templates among the C->C 3x3 convs that
follow the stage's first (channel-changing) block; that block stays unshared. ``(L-10)/3`` convs per group.
:func:`swrn_parameter_count` counts a row of Tables 3.1/3.3 on the meta device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..core.models import count_parameters
from .templates import SConv2d, TemplateBank, orthogonal_coefficients_

__all__ = ["SWRN", "swrn_parameter_count"]


def _conv(cin: int, cout: int, stride: int = 1, device=None) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride, 1, bias=False, device=device)


class _Block(nn.Module):
    """A pre-activation WRN block; ``conv1``/``conv2`` may be :class:`SConv2d` drawing on a stage bank."""

    def __init__(self, cin: int, cout: int, stride: int, dropout: float, bank: TemplateBank | None, device=None):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin, device=device)
        self.bn2 = nn.BatchNorm2d(cout, device=device)
        if bank is None:
            self.conv1, self.conv2 = _conv(cin, cout, stride, device), _conv(cout, cout, 1, device)
        else:
            self.conv1, self.conv2 = SConv2d(bank, stride, 1), SConv2d(bank, 1, 1)
        self.dropout = dropout
        self.shortcut = (None if cin == cout and stride == 1
                         else nn.Conv2d(cin, cout, 1, stride, 0, bias=False, device=device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = F.relu(self.bn1(x))
        y = F.relu(self.bn2(self.conv1(o)))
        if self.dropout > 0:
            y = F.dropout(y, self.dropout, self.training)
        y = self.conv2(y)
        return y + (x if self.shortcut is None else self.shortcut(o))


class SWRN(nn.Module):
    """SWRN-``depth``-``widen``-``templates``: a pre-activation WRN with one template bank per stage.

    ``templates=None`` gives ``(depth-10)/3`` templates per group (SWRN-L-w, as many templates as shared convs:
    no parameter reduction). Build on ``device="meta"`` to count parameters of large rows for free.
    """

    def __init__(self, depth: int = 28, widen: int = 10, templates: int | None = None, num_classes: int = 10,
                 dropout: float = 0.0, in_channels: int = 3, device: str | torch.device | None = None):
        super().__init__()
        if not isinstance(depth, int) or (depth - 4) % 6 != 0 or depth < 16:
            raise ValueError(f"depth must be 6n+4 with n >= 2 (16, 22, 28, 40, ...); got {depth!r}")
        if not isinstance(widen, int) or widen < 1:
            raise ValueError(f"widen must be a positive int; got {widen!r}")
        n = (depth - 4) // 6
        self.group_size = 2 * (n - 1)  # = (depth - 10) / 3 shared convs per stage
        k = self.group_size if templates is None else templates
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"templates must be a positive int or None; got {templates!r}")
        self.templates = k
        widths = [16, 16 * widen, 32 * widen, 64 * widen]
        self.conv = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False, device=device)
        self.banks = nn.ModuleList()
        blocks: list[nn.Module] = []
        for s in range(3):
            c = widths[s + 1]
            bank = TemplateBank(k, (c, c, 3, 3), device=device)
            self.banks.append(bank)
            for i in range(n):
                if i == 0:  # the channel-changing block keeps its own weights (Sec. 3.3.2)
                    blocks.append(_Block(widths[s], c, 1 if s == 0 else 2, dropout, None, device))
                else:
                    blocks.append(_Block(c, c, 1, dropout, bank, device))
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(widths[3], device=device)
        self.fc = nn.Linear(widths[3], num_classes, device=device)
        if torch.device(device or "cpu").type != "meta":
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            for s in range(3):
                orthogonal_coefficients_(self.shared_layers(s))

    def shared_layers(self, stage: int) -> list[SConv2d]:
        """The soft-shared convs of stage ``stage`` (0, 1, 2) in depth order."""
        if stage not in (0, 1, 2):
            raise ValueError(f"stage must be 0, 1 or 2; got {stage!r}")
        bank = self.banks[stage]
        return [m for m in self.modules() if isinstance(m, SConv2d) and m.bank is bank]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.conv(x))
        x = F.relu(self.bn(x))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def swrn_parameter_count(depth: int, widen: int, templates: int | None = None, num_classes: int = 10) -> int:
    """Parameters of SWRN-depth-widen-templates, counted on the meta device (no memory is allocated)."""
    return count_parameters(SWRN(depth, widen, templates, num_classes, device="meta"))

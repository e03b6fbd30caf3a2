"""Soft-shared residual networks (Savarese 2025, Sec. 3.3.2): SWRN-L-w-k for CIFAR and a small one for digits.

* :class:`SWRN` is the pre-activation WRN-L-w whose stages each share ``k`` templates among the C->C 3x3 convs
  that follow the stage's first (channel-changing) block; that block stays unshared. ``(L-10)/3`` convs per group.
* :class:`SharedResidualCNN` is a digits-sized analogue: a stem conv, ``depth`` pre-activation residual 3x3 convs
  (one sharing group, or unshared when ``templates=None``), and a linear head.
* :class:`FoldedResidualCNN` is a folded :class:`SharedResidualCNN`: ``n`` unique convs executed in a program
  order, each execution with its own signed scale and its own BatchNorm.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ..core.data import Split
from ..core.models import count_parameters
from ..core.train import History, fit
from .templates import (
    SConv2d,
    TemplateBank,
    coefficient_param_groups,
    least_squares_rounding,
    orthogonal_coefficients_,
    recalibrate_batchnorm,
    recurrence_regularizer,
    scaled_rounding,
    sharing_groups,
    stack_coefficients,
)

__all__ = ["SWRN", "FoldedResidualCNN", "SharedResidualCNN", "fold", "swrn_parameter_count",
           "train_classifier"]


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


def fold(model: SharedResidualCNN, groups: torch.Tensor, mode: str = "scaled",
         calibrate: torch.Tensor | None = None) -> FoldedResidualCNN:
    """Fold ``model`` by ``groups`` (see :class:`FoldedResidualCNN`); ``calibrate`` re-estimates its BN stats."""
    folded = FoldedResidualCNN(model, groups, mode)
    if calibrate is not None:
        recalibrate_batchnorm(folded, calibrate)
    return folded



def train_classifier(model: nn.Module, data: Split, epochs: int, lr: float = 0.1, weight_decay: float = 5e-4,
                     batch_size: int = 128, milestones: tuple[float, ...] = (0.3, 0.6, 0.8), gamma: float = 0.2,
                     lam: float = 0.0, generator: torch.Generator | None = None, augment=None,
                     progress: bool | str = False) -> History:
    """The thesis's CIFAR recipe (Sec. 3.3.3): SGD with Nesterov momentum 0.9, the learning rate times ``gamma``
    at the given fractions of ``epochs`` (0.3, 0.6, 0.8 of 200 = epochs 60, 120, 160), weight decay on everything
    but the coefficients, and ``lam`` times the recurrence regularizer (eq. 3.19) of every sharing group.
    """
    opt = torch.optim.SGD(coefficient_param_groups(model, weight_decay), lr=lr, momentum=0.9, nesterov=True)
    steps = sorted({max(1, int(round(epochs * f))) for f in milestones})
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, steps, gamma)
    groups = sharing_groups(model)
    reg = None
    if lam > 0:
        if not groups:
            raise ValueError("lam > 0 needs a model with soft-shared layers")

        def reg() -> torch.Tensor:
            return sum(recurrence_regularizer(stack_coefficients(g), lam) for g in groups)
    return fit(model, opt, data, epochs, batch_size, generator=generator, scheduler=sched, augment=augment,
               regularizer=reg, eval_every=epochs, progress=progress)

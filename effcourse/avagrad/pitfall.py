"""Where separability breaks: coordinates whose second moment is tiny (our finding; not in Savarese 2025).

AvaGrad's normaliser ||eta_t / sqrt(d)|| is a root-mean-square, ruled by the largest eta_i = 1/(sqrt(v_i) + eps):
the coordinates with the smallest second moments.  When sqrt(v_i) << eps fails for a few of them (weights on an
input that is always zero get no gradient at all, so their eta_i stays 1/eps), they dominate the normaliser at
small eps and every other step shrinks.  The thesis's argument (eqs. 6.11-6.12) assumes sqrt(v_i) >> eps.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from ..core.data import Split, digits
from ..core.train import fit
from .optim import AvaGrad

__all__ = ["constant_columns", "drop_constant_columns", "eta_concentration", "raw_digits", "trained_concentration"]


def raw_digits(device: str | torch.device = "cpu") -> Split:
    """Flat standardized digits that KEEP the pixels constant on the training split (the data factory drops them).

    Only digits has such pixels here; it is the data set of the book's scales.
    """
    return digits(drop_constant=False, device=device)


def constant_columns(data: Split) -> int:
    """Number of input columns constant on ``data``'s training part (their first-layer weights get no gradient)."""
    if data.x_train.dim() != 2:
        raise ValueError(f"data must be flat (N x F); got x_train of shape {tuple(data.x_train.shape)}")
    return int((data.x_train.std(0) == 0).sum())


def eta_concentration(opt: AvaGrad, params: list[torch.Tensor], top: float = 0.01) -> tuple[float, float]:
    """Share of ||eta||^2 held by the ``top`` fraction of coordinates with the largest eta, and min sqrt(v) / median.

    eta = 1 / (sqrt(v) + eps) from the optimizer's current second moments (one eps for all groups).
    """
    if not 0 < top <= 1:
        raise ValueError(f"top must be in (0, 1]; got {top!r}")
    eps = opt.param_groups[0]["eps"]
    v = torch.cat([opt.state[p]["exp_avg_sq"].flatten() for p in params])
    e2 = (1 / (v.sqrt() + eps)).pow(2).sort(descending=True).values
    k = max(1, math.floor(v.numel() * top + 1e-9))  # top=0.01: numel // 100
    return float(e2[:k].sum() / e2.sum()), float(v.sqrt().min() / v.sqrt().median())


def trained_concentration(make_model: Callable[[], nn.Module], data: Split, lr: float, eps: float, seed: int = 0,
                          top: float = 0.01, **fit_kwargs) -> tuple[float, float]:
    """:func:`eta_concentration` after training AvaGrad(lr, eps) with :func:`effcourse.core.train.fit`."""
    torch.manual_seed(seed)
    model = make_model()
    opt = AvaGrad(model.parameters(), lr=lr, eps=eps, foreach=True)
    fit(model, opt, data, generator=torch.Generator().manual_seed(seed), **fit_kwargs)
    return eta_concentration(opt, list(model.parameters()), top)


def drop_constant_columns(data: Split) -> Split:
    """``data`` without the input columns that are constant on its training part (image data is returned as is).

    The data factory drops the pixels constant on the whole training split; a validation split carved from it can
    leave a few more constant on the part that is trained on, and their weights would get no gradient (see above).
    """
    if data.x_train.dim() != 2:
        return data
    keep = data.x_train.std(0) != 0
    return Split(data.x_train[:, keep], data.y_train, data.x_test[:, keep], data.y_test, data.num_classes)

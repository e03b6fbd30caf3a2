"""Template banks and the layers that draw on them (Savarese 2025, Sec. 3.2, eqs. 3.11-3.12).

A :class:`TemplateBank` holds ``k`` weight templates ``T^(1..k)``; every :class:`SConv2d` / :class:`SLinear` that
draws on it owns only a coefficient vector ``alpha^(l)`` and uses ``W^(l) = sum_i alpha_i^(l) T^(i)`` (eq. 3.11).
Coefficient matrices follow the thesis's convention: ``alpha`` is ``k x L``, column ``l`` is layer ``l``
(:func:`stack_coefficients`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "SConv2d",
    "SLinear",
    "TemplateBank",
    "coefficient_param_groups",
    "orthogonal_coefficients_",
    "sharing_groups",
    "stack_coefficients",
]


def _check_positive_int(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int; got {value!r}")


class TemplateBank(nn.Module):
    """``k`` weight templates of one shape, stored as one ``k x *shape`` parameter (Kaiming-normal init).

    The init matches a plain layer of that shape (fan-out, ReLU gain) so that an orthonormal coefficient vector
    yields an effective weight with the usual Kaiming scale.
    """

    def __init__(self, k: int, shape: Sequence[int], device: str | torch.device | None = None,
                 dtype: torch.dtype | None = None):
        super().__init__()
        _check_positive_int("k", k)
        shape = tuple(shape)
        if len(shape) < 2 or any((not isinstance(s, int)) or s < 1 for s in shape):
            raise ValueError(f"shape must list at least two positive ints (out, in, ...); got {shape!r}")
        self.k, self.shape = k, shape
        self.templates = nn.Parameter(torch.empty(k, *shape, device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.templates.device.type == "meta":
            return
        for t in self.templates.data:  # one Kaiming draw per template: each has a layer's fan
            nn.init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu")

    def combine(self, coefficients: torch.Tensor) -> torch.Tensor:
        """``sum_i c_i T^(i)`` (eq. 3.11) as one contraction over the template axis."""
        return torch.tensordot(coefficients, self.templates, dims=1)

    def extra_repr(self) -> str:
        return f"k={self.k}, shape={self.shape}"


class _Shared(nn.Module):
    """A layer whose weight is a mixture of a bank's templates; the bank is shared, not owned."""

    def __init__(self, bank: TemplateBank):
        super().__init__()
        if not isinstance(bank, TemplateBank):
            raise TypeError(f"bank must be a TemplateBank; got {type(bank).__name__}")
        # Stored outside _modules so that each layer does not re-register (and re-count) the shared templates.
        object.__setattr__(self, "bank", bank)
        self.coefficients = nn.Parameter(torch.zeros(bank.k, device=bank.templates.device,
                                                     dtype=bank.templates.dtype))
        if bank.templates.device.type != "meta":
            with torch.no_grad():  # a fresh layer starts as a random unit mixture; banks re-init jointly
                self.coefficients.normal_().div_(self.coefficients.norm().clamp_min(1e-12))

    @property
    def weight(self) -> torch.Tensor:
        """The effective weight ``W^(l)`` (eq. 3.11)."""
        return self.bank.combine(self.coefficients)


class SConv2d(_Shared):
    """A bias-free convolution with weight ``sum_i alpha_i T^(i)`` (eq. 3.11): one weighted sum, one conv."""

    def __init__(self, bank: TemplateBank, stride: int = 1, padding: int = 0):
        super().__init__(bank)
        if len(bank.shape) != 4:
            raise ValueError(f"SConv2d needs a bank of 4-d templates (out, in, kh, kw); got shape {bank.shape}")
        self.stride, self.padding = stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, None, self.stride, self.padding)

    def extra_repr(self) -> str:
        return f"bank={self.bank.shape}, k={self.bank.k}, stride={self.stride}, padding={self.padding}"


class SLinear(_Shared):
    """A bias-free linear map with weight ``sum_i alpha_i T^(i)`` (eq. 3.11)."""

    def __init__(self, bank: TemplateBank):
        super().__init__(bank)
        if len(bank.shape) != 2:
            raise ValueError(f"SLinear needs a bank of 2-d templates (out, in); got shape {bank.shape}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight)


def _shared_layers(layers: Iterable[nn.Module]) -> list[_Shared]:
    out = list(layers)
    if not out or not all(isinstance(m, _Shared) for m in out):
        raise ValueError("layers must be a non-empty sequence of SConv2d / SLinear")
    if any(m.bank is not out[0].bank for m in out):
        raise ValueError("layers must all draw on the same TemplateBank")
    return out


@torch.no_grad()
def orthogonal_coefficients_(layers: Sequence[nn.Module]) -> torch.Tensor:
    """Initialize the coefficients of one sharing group as the rows of an orthogonal ``L x k`` matrix.

    With ``k >= L`` the initial LSM is the identity: every layer starts functionally distinct. Returns ``alpha``.
    """
    layers = _shared_layers(layers)
    k = layers[0].bank.k
    m = torch.empty(len(layers), k)
    nn.init.orthogonal_(m)
    for row, layer in zip(m, layers):
        layer.coefficients.copy_(row.to(layer.coefficients))
    return stack_coefficients(layers)


def sharing_groups(model: nn.Module) -> list[list[nn.Module]]:
    """The soft-shared layers of ``model`` grouped by the bank they draw on, in module order."""
    groups: dict[int, list[nn.Module]] = {}
    for m in model.modules():
        if isinstance(m, _Shared):
            groups.setdefault(id(m.bank), []).append(m)
    return list(groups.values())


def stack_coefficients(layers: Sequence[nn.Module]) -> torch.Tensor:
    """The ``k x L`` coefficient matrix of one group (column ``l`` = ``alpha^(l)``), differentiable."""
    return torch.stack([m.coefficients for m in _shared_layers(layers)], dim=1)


def coefficient_param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Optimizer parameter groups: ``weight_decay`` on everything except soft-sharing coefficients.

    The thesis trains ``alpha`` without weight decay (Sec. 3.3.3): shrinking ``alpha`` would only rescale
    effective weights, and the LSM is blind to scale.
    """
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0; got {weight_decay!r}")
    coef = {id(m.coefficients) for m in model.modules() if isinstance(m, _Shared)}
    params = list(model.parameters())  # deduplicated: a shared bank appears once
    rest = [p for p in params if id(p) not in coef]
    alphas = [p for p in params if id(p) in coef]
    groups = [{"params": rest, "weight_decay": weight_decay}]
    if alphas:
        groups.append({"params": alphas, "weight_decay": 0.0})
    return groups

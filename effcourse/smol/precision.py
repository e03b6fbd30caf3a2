"""The continuous relaxation of a bit width (Savarese 2025, 5.2.3): ``s <-> p`` and the bit penalty.

A weight of precision ``p`` tolerates uniform noise of half-width ``2^(1-p)``; SMOL writes that half-width as
``sigmoid(s)`` with ``s`` real (Def. 5.5), so ``p = 1 + log2(1 + e^-s)`` and the penalty
``||log2(1 + e^-s)||_1`` is ``sum_i (p_i - 1)``.  After training the precision is rounded down (eq. 5.20).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .fixed_point import MAX_PRECISION

__all__ = ["ROUNDINGS", "integer_precision", "precision_penalty", "precision_to_s", "s_to_precision"]

ROUNDINGS = ("floor", "round", "ceil")


def precision_to_s(p: float | torch.Tensor) -> torch.Tensor:
    """``s = -ln(2^(p-1) - 1)``: the ``s`` whose noise half-width ``sigmoid(s)`` is ``2^(1-p)`` (Alg. 5, line 1).

    Needs ``p > 1``: at ``p = 1`` the half-width is 1 = sigmoid(+inf).
    """
    p = torch.as_tensor(p, dtype=torch.get_default_dtype() if not torch.is_tensor(p) else p.dtype)
    if not p.is_floating_point():
        p = p.to(torch.get_default_dtype())
    if bool((p <= 1).any()):
        raise ValueError(f"p must be > 1 (p = 1 needs s = +inf); got min {float(p.min())}")
    return -torch.log(torch.expm1((p - 1) * math.log(2.0)))


def s_to_precision(s: torch.Tensor) -> torch.Tensor:
    """The real-valued precision ``1 + log2(1 + e^-s) = 1 - log2 sigmoid(s)`` (inverse of :func:`precision_to_s`)."""
    return 1.0 + F.softplus(-s) / math.log(2.0)


def integer_precision(s: torch.Tensor, rounding: str = "floor") -> torch.Tensor:
    """Eq. 5.20: ``p = 1 + [log2(1 + e^-s)]`` with ``[.]`` the floor (the thesis's experiments), round or ceil."""
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding must be one of {ROUNDINGS}; got {rounding!r}")
    # 1e-5 bits of slack so that the s of an integer p (precision_to_s) maps back to p despite float rounding
    extra = F.softplus(-s.detach()) / math.log(2.0) + 1e-5
    extra = {"floor": torch.floor, "round": torch.round, "ceil": torch.ceil}[rounding](extra)
    return (1 + extra).clamp(max=MAX_PRECISION).to(torch.int64)


def precision_penalty(s: torch.Tensor, group_size: int = 1) -> torch.Tensor:
    """``group_size * ||log2(1 + e^-s)||_1`` (Alg. 5, line 4) = bits above 1 summed over the weights ``s`` stands for.

    With one ``s`` per group of ``n`` weights the penalty counts every stored bit (``n * (p - 1)``), so a per-layer
    precision is charged like ``n`` per-weight ones; the thesis leaves this unstated for SMOL-L.
    """
    if not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"group_size must be a positive int; got {group_size!r}")
    return group_size * F.softplus(-s).sum() / math.log(2.0)

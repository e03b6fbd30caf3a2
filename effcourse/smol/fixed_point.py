"""Fixed-point quantization with per-weight precisions (Savarese 2025, 5.2), zero-precision allocation, and costs.

The bit-value map is ``v_j = 2^(1-j)``: a weight written with ``p`` signed bits ``b_j in {-1, +1}`` is
``sum_{j<=p} b_j 2^(1-j)``, so 1 bit gives ``{-1, +1}``, 2 bits ``{-1.5, -0.5, 0.5, 1.5}``, and every value lies in
``[-2, 2]`` (5.18).  The ``p``-bit grid is the ``2^p`` odd multiples of ``2^(1-p)`` inside that interval; it has no
zero, which is why zero-precision allocation (ZPA) exists.

Everything here is vectorized: ``p`` is an integer tensor broadcast against ``w``, one precision per weight.
A per-tensor power-of-two ``scale`` maps weights into the grid's units (``w / scale``); a power of two costs no bits
in fixed point, so it does not enter the bit count.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch
from torch import nn

__all__ = [
    "MAX_PRECISION",
    "bits_per_parameter",
    "bops",
    "fixed_point_grid",
    "model_bits",
    "power_of_two_scale",
    "quantization_error",
    "quantize",
    "quantize_ste",
    "zero_precision_allocation",
]

MAX_PRECISION = 32


def _as_precision(p: torch.Tensor | int, like: torch.Tensor, name: str = "p") -> torch.Tensor:
    p = torch.as_tensor(p, device=like.device)
    if p.is_floating_point() or p.is_complex() or p.dtype == torch.bool:
        raise TypeError(f"{name} must hold integers (bits); got dtype {p.dtype}")
    if p.numel() and (int(p.min()) < 0 or int(p.max()) > MAX_PRECISION):
        raise ValueError(f"{name} must lie in [0, {MAX_PRECISION}] bits; got range [{int(p.min())}, {int(p.max())}]")
    return p


def fixed_point_grid(p: int, dtype: torch.dtype = torch.float64,
                     device: str | torch.device = "cpu") -> torch.Tensor:
    """All values representable with ``p`` signed bits under ``v_j = 2^(1-j)`` (eq. 5.2), sorted; ``p = 0``: ``[0]``.

    Built by enumerating bit strings (not from the closed form of :func:`quantize`), so tests can compare the two.
    """
    if not isinstance(p, int) or isinstance(p, bool) or not 0 <= p <= 16:
        raise ValueError(f"p must be an int in [0, 16] (2^p values are enumerated); got {p!r}")
    if p == 0:
        return torch.zeros(1, dtype=dtype, device=device)
    codes = torch.arange(2 ** p, device=device)
    bits = ((codes.unsqueeze(1) >> torch.arange(p, device=device)) & 1) * 2 - 1  # 2^p x p, entries +-1
    values = (bits.to(dtype) * torch.exp2(-torch.arange(p, device=device, dtype=dtype))).sum(1)
    return values.sort().values


def quantize(w: torch.Tensor, p: torch.Tensor | int, scale: torch.Tensor | float = 1.0) -> torch.Tensor:
    """The nearest-point fixed-point quantizer ``q(w, p)`` of 5.2.4, with ``q(w, 0) = 0`` (ZPA's definition).

    With cell width ``D = 2^(2-p)`` the ``p``-bit grid is ``(k + 1/2) D``, so ``q = (floor(w / D) + 1/2) D`` clipped
    to ``+-(2 - 2^(1-p))``; the error is at most ``2^(1-p)`` inside ``[-2, 2]``.  For ``p = 0`` the clip bound is
    ``0``, which is ``q(w, 0) = 0``.  ``scale`` (broadcast) measures ``w`` in grid units: ``scale * q(w / scale, p)``.
    Off cell boundaries this equals truncating the shortest bit string (5.5); on a boundary it picks the upper point.
    """
    if not isinstance(w, torch.Tensor) or not w.is_floating_point():
        raise TypeError(f"w must be a floating-point tensor; got {type(w).__name__}")
    p = _as_precision(p, w)
    scale = torch.as_tensor(scale, dtype=w.dtype, device=w.device)
    if scale.numel() and bool((scale <= 0).any()):
        raise ValueError("scale must be positive")
    pf = p.to(w.dtype)
    u = w / scale
    delta = torch.exp2(2.0 - pf)
    q = (torch.floor(u / delta) + 0.5) * delta
    bound = 2.0 - torch.exp2(1.0 - pf)
    q = torch.minimum(torch.maximum(q, -bound), bound)
    return q * scale


def quantize_ste(w: torch.Tensor, p: torch.Tensor | int, scale: torch.Tensor | float = 1.0) -> torch.Tensor:
    """``quantize(w, p, scale)`` forward, identity backward: the straight-through estimator of Algorithm 5, line 12."""
    return w + (quantize(w.detach(), p, scale) - w.detach())


def quantization_error(w: torch.Tensor, p: torch.Tensor | int, scale: torch.Tensor | float = 1.0) -> torch.Tensor:
    """``|w - q(w, p)|`` element-wise."""
    return (w - quantize(w, p, scale)).abs()


def zero_precision_allocation(w: torch.Tensor, p: torch.Tensor | int,
                              scale: torch.Tensor | float = 1.0) -> torch.Tensor:
    """ZPA (5.2.4): precision 0 wherever ``|w| <= |w - q(w, p)|``, else ``p``; never raises a weight's error.

    Since ``q(w, 0) = 0`` the new error is ``|w|``, which is at most the old one exactly where the rule fires.
    Uses the text's ``<=`` (Algorithm 5 prints ``<``; they differ only on ties).
    """
    p = _as_precision(p, w)
    p = torch.broadcast_to(p, w.shape)
    zero = w.abs() <= quantization_error(w, p, scale)
    return torch.where(zero, torch.zeros_like(p), p)


def power_of_two_scale(w: torch.Tensor) -> torch.Tensor:
    """``2^ceil(log2 max|w|)``: the smallest power of two that brings ``w`` into ``[-1, 1]`` grid units.

    The thesis's grid has no scale; layers without normalization after them (MLPs, the last linear layer) need one,
    and a power of two is free in fixed point (a shift).  A zero tensor gets scale 1.
    """
    m = w.detach().abs().max()
    if not bool(torch.isfinite(m)):
        raise ValueError("w must be finite to pick a scale")
    if float(m) == 0.0:
        return torch.ones((), dtype=w.dtype, device=w.device)
    return torch.exp2(torch.ceil(torch.log2(m)))


# ---------------------------------------------------------------------------------------------------- accounting
def _precisions(precisions: Mapping[str, torch.Tensor] | Iterable[torch.Tensor]) -> list[torch.Tensor]:
    ps = list(precisions.values()) if isinstance(precisions, Mapping) else list(precisions)
    if not ps:
        raise ValueError("precisions is empty: pass one integer tensor per quantized weight tensor")
    for p in ps:
        _as_precision(p, p, "precisions")
    return ps


def model_bits(precisions: Mapping[str, torch.Tensor] | Iterable[torch.Tensor]) -> int:
    """Total bits of the quantized weights, ``sum_i p_i`` (per-weight precision metadata not counted, as in 5.3.4)."""
    return int(sum(int(p.sum()) for p in _precisions(precisions)))


def bits_per_parameter(precisions: Mapping[str, torch.Tensor] | Iterable[torch.Tensor]) -> float:
    """Average bits per quantized parameter (the thesis's "average bpp", 5.3.4); 32 / bpp is the compression ratio.

    Only the quantized tensors count: full-precision ones (BatchNorm, biases) are outside the numerator and the
    denominator, as the thesis's numbers imply.
    """
    ps = _precisions(precisions)
    n = sum(p.numel() for p in ps)
    return model_bits(ps) / n


def bops(model: nn.Module, x: torch.Tensor, precisions: Mapping[str, torch.Tensor],
         activation_bits: float = 32.0) -> dict[str, float]:
    """Bit-operations per forward of one input, per layer: ``sum_i p_i * uses_i * b_a``.

    ``precisions`` maps a module name (as in ``named_modules``) of an ``nn.Linear`` / ``nn.Conv*d`` to an integer
    tensor of its weight's shape (broadcastable); ``uses_i`` is how often weight ``i`` multiplies an activation per
    input (1 for a linear layer, the number of output positions for a convolution).  ``x`` is a batch; the result
    is per input.  A weight of precision 0 costs nothing.
    """
    if not isinstance(activation_bits, (int, float)) or activation_bits <= 0:
        raise ValueError(f"activation_bits must be positive; got {activation_bits!r}")
    modules = dict(model.named_modules())
    unknown = [k for k in precisions if k not in modules]
    if unknown:
        raise KeyError(f"precisions names modules that the model lacks: {unknown}")
    shapes: dict[str, torch.Size] = {}
    hooks = []
    for name in precisions:
        m = modules[name]
        if not isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            raise TypeError(f"bops counts Linear and Conv layers; {name!r} is a {type(m).__name__}")
        hooks.append(m.register_forward_hook(lambda mod, inp, out, name=name: shapes.__setitem__(name, out.shape)))
    try:
        with torch.no_grad():
            was = model.training
            model.eval()
            model(x)
            model.train(was)
    finally:
        for h in hooks:
            h.remove()
    out = {}
    for name, p in precisions.items():
        m = modules[name]
        positions = 1 if isinstance(m, nn.Linear) else math.prod(shapes[name][2:])
        p = torch.broadcast_to(torch.as_tensor(p), m.weight.shape)
        out[name] = float(p.sum()) * positions * float(activation_bits)
    return out

"""SMOL-A (Savarese 2025, 5.4.3): learned precisions for ReLU activations, behind a PACT clip.

The thesis perturbs an activation ``u`` with range ``M`` as ``u + (M / 2) sigmoid(s) eps`` and, for ReLU, clips it
with PACT at a trainable ``alpha`` (so ``M = alpha``).  It gives no activation grid; ours is ``2^p`` uniform levels
on ``[0, alpha]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .precision import integer_precision, precision_penalty, precision_to_s

__all__ = ["ActivationSMOL", "add_activation_smol"]


class ActivationSMOL(nn.Module):
    """SMOL-A (5.4.3): a PACT clip ``min(max(x, 0), alpha)`` with trainable ``alpha`` and per-element precisions.

    ``"noise"``: ``u + (M / 2) sigmoid(s) eps`` with ``M = alpha`` (detached: the noise should not train the clip);
    ``"quant"``: ``2^p`` uniform levels on ``[0, alpha]`` (step ``alpha / (2^p - 1)``), straight-through.
    The thesis does not give the activation grid; this one makes the noise half-width ``alpha 2^-p`` about one grid
    step, twice the worst rounding error (the weight case matches them exactly).
    """

    def __init__(self, shape: Sequence[int], alpha: float = 4.0, p_init: float = 8.0,
                 device: str | torch.device | None = None):
        super().__init__()
        shape = tuple(int(d) for d in shape)
        if not shape or any(d < 1 for d in shape):
            raise ValueError(f"shape must list positive sizes (one activation, no batch dim); got {shape!r}")
        if not alpha > 0:
            raise ValueError(f"alpha must be positive; got {alpha!r}")
        self.alpha = nn.Parameter(torch.tensor(float(alpha), device=device))
        self.s = nn.Parameter(torch.full(shape, float(precision_to_s(float(p_init))), device=device))
        self.register_buffer("precision", torch.full(shape, int(p_init), dtype=torch.int64, device=device))
        self.mode = "noise"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = F.relu(x) - F.relu(x - self.alpha)  # PACT: clip to [0, alpha], d/d alpha = 1 where x > alpha
        if self.mode == "noise" and self.training:
            u = u + 0.5 * self.alpha.detach() * torch.sigmoid(self.s) * (2 * torch.rand_like(u) - 1)
        elif self.mode == "quant":
            step = self.alpha / (torch.exp2(self.precision.to(u.dtype)) - 1)
            u = u + (torch.round(u / step) * step - u).detach()
        return u

    def penalty(self) -> torch.Tensor:
        """Bits above 1 summed over the elements (:func:`~effcourse.smol.precision.precision_penalty`)."""
        return precision_penalty(self.s)

    def allocate(self, rounding: str = "floor") -> torch.Tensor:
        """Integer precisions from ``s`` (eq. 5.20); switches to ``"quant"``."""
        self.precision.copy_(integer_precision(self.s, rounding))
        self.mode = "quant"
        return self.precision.clone()

    def set_precision(self, bits: int) -> ActivationSMOL:
        """Every element at ``bits`` (PACT at a uniform bit width); switches to ``"quant"``."""
        if not isinstance(bits, int) or isinstance(bits, bool) or bits < 1:
            raise ValueError(f"bits must be a positive int; got {bits!r}")
        self.precision.fill_(bits)
        self.mode = "quant"
        return self

    def extra_repr(self) -> str:
        return f"shape={tuple(self.s.shape)}, mode={self.mode!r}"


def add_activation_smol(model: nn.Module, example: torch.Tensor, alpha: float = 4.0,
                        p_init: float = 8.0) -> list[ActivationSMOL]:
    """Replace every ``nn.ReLU`` in ``model`` by an :class:`ActivationSMOL` sized by one forward of ``example``."""
    relus = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.ReLU)]
    if not relus:
        raise ValueError("model has no nn.ReLU module to replace")
    shapes: dict[str, torch.Size] = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: shapes.__setitem__(n, o.shape[1:])) for n, m in relus]
    try:
        with torch.no_grad():
            model(example)
    finally:
        for h in hooks:
            h.remove()
    out = []
    for n, _ in relus:
        parent_name, _, attr = n.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        act = ActivationSMOL(shapes[n], alpha=alpha, p_init=p_init, device=example.device)
        setattr(parent, attr, act)
        out.append(act)
    return out

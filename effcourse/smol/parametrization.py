"""SMOL's weight parametrization (Savarese 2025, 5.2-5.3, Algorithm 5): each weight learns the noise it tolerates.

Each quantized weight ``w`` (in grid units, ``[-2, 2]``) gets a trainable ``s``; during precision training the network
sees ``w + sigmoid(s) * eps`` with ``eps ~ U(-1, 1)`` (Def. 5.5, eq. 5.19), and the loss carries
``lambda * ||log2(1 + e^-s)||_1``, which is ``lambda * sum_i (p_i - 1)`` under the map ``sigmoid(s) = 2^(1-p)``.
Afterwards ``p = 1 + floor(log2(1 + e^-s))`` (5.20), optionally zero-precision allocation, and straight-through
fine-tuning of ``w`` at those precisions (Algorithm 5; the loops are in :mod:`effcourse.smol.training`).

:class:`SMOL` attaches to any ``nn.Module``'s chosen weights with ``torch.nn.utils.parametrize`` (the model's code is
not touched).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping

import torch
from torch import nn
from torch.nn.utils import parametrize

from .activations import ActivationSMOL
from .fixed_point import MAX_PRECISION, bits_per_parameter, power_of_two_scale, quantize, quantize_ste
from .fixed_point import zero_precision_allocation as _zpa
from .precision import integer_precision, precision_penalty, precision_to_s, s_to_precision

__all__ = ["GRANULARITIES", "MODES", "SMOL", "SMOLWeight"]

GRANULARITIES = ("weight", "channel", "layer")
MODES = ("fp", "noise", "quant")


# ------------------------------------------------------------------------------------------------ weight SMOL
class SMOLWeight(nn.Module):
    """The parametrization ``w -> scale * g(w)`` of one weight tensor stored in grid units.

    ``g`` depends on ``mode``: ``"fp"`` the identity; ``"noise"`` ``w + sigmoid(s) * U(-1, 1)`` in training mode
    (eq. 5.19; the clean ``w`` in eval mode); ``"quant"`` the fixed-point ``q(w, p)`` with straight-through
    gradients (Alg. 5, lines 11-12).  ``s`` has the weight's shape (``"weight"``), one entry per output channel
    (``"channel"``) or one in all (``"layer"``).
    """

    def __init__(self, weight: torch.Tensor, granularity: str = "weight", p_init: float = 8.0,
                 scale: str | float = "pow2"):
        super().__init__()
        if granularity not in GRANULARITIES:
            raise ValueError(f"granularity must be one of {GRANULARITIES}; got {granularity!r}")
        if weight.dim() == 0:
            raise ValueError("weight must have at least one dimension")
        if granularity == "weight":
            shape = tuple(weight.shape)
        elif granularity == "channel":
            shape = (weight.shape[0],) + (1,) * (weight.dim() - 1)
        else:
            shape = (1,) * weight.dim()
        self.granularity = granularity
        self.group_size = weight.numel() // math.prod(shape)
        self.s = nn.Parameter(torch.full(shape, float(precision_to_s(float(p_init))), dtype=weight.dtype,
                                         device=weight.device))
        if scale == "pow2":
            c = power_of_two_scale(weight)
        elif isinstance(scale, (int, float)) and not isinstance(scale, bool) and scale > 0:
            c = torch.tensor(float(scale), device=weight.device)
        else:
            raise ValueError(f"scale must be 'pow2' or a positive number; got {scale!r}")
        self.register_buffer("scale", c.to(weight.dtype))
        self.register_buffer("precision", torch.full(weight.shape, int(p_init), dtype=torch.int64,
                                                     device=weight.device))
        self.mode = "noise"

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        if self.mode == "noise" and self.training:
            u = u + torch.sigmoid(self.s) * (2 * torch.rand_like(u) - 1)
        elif self.mode == "quant":
            u = quantize_ste(u, self.precision)
        return u * self.scale

    def right_inverse(self, w: torch.Tensor) -> torch.Tensor:
        return w / self.scale

    def noise_width(self) -> torch.Tensor:
        """``sigmoid(s)`` broadcast to the weight's shape: the learned perturbation limit in grid units."""
        return torch.sigmoid(self.s.detach()).expand(self.precision.shape)

    def extra_repr(self) -> str:
        return f"granularity={self.granularity!r}, mode={self.mode!r}, scale={float(self.scale):g}"


class SMOL:
    """SMOL attached to ``model``'s weights named in ``weights`` (default: every Linear/Conv ``weight``).

    Keeps the model's code: each chosen weight becomes a :class:`SMOLWeight` parametrization.  Use
    :meth:`model_parameters` for the weight optimizer and :meth:`precision_parameters` (``s``) for Adam.
    """

    def __init__(self, model: nn.Module, weights: Iterable[str] | None = None, granularity: str = "weight",
                 p_init: float = 8.0, scale: str | float = "pow2"):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module; got {type(model).__name__}")
        if not (isinstance(p_init, (int, float)) and p_init > 1):
            raise ValueError(f"p_init must be a number > 1; got {p_init!r}")
        if weights is None:
            weights = [f"{n}.weight" if n else "weight" for n, m in model.named_modules()
                       if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d))]
        weights = list(weights)
        if not weights:
            raise ValueError("no weights to quantize: pass weights=[...] names of parameters")
        self.model = model
        self.names: list[str] = []
        self._modules: dict[str, nn.Module] = {}
        params = dict(model.named_parameters())
        for name in weights:
            if name not in params:
                raise KeyError(f"{name!r} is not a parameter of the model; parameters: {sorted(params)[:12]}...")
            mod_name, _, attr = name.rpartition(".")
            mod = model.get_submodule(mod_name) if mod_name else model
            parametrize.register_parametrization(
                mod, attr, SMOLWeight(getattr(mod, attr), granularity, p_init, scale))
            self.names.append(name)
            self._modules[name] = mod
        self.granularity = granularity

    # -------------------------------------------------------------------------------------- access
    def _attr(self, name: str) -> str:
        return name.rpartition(".")[2]

    def parametrization(self, name: str) -> SMOLWeight:
        """The :class:`SMOLWeight` of the quantized weight ``name`` (its ``s``, ``scale``, ``precision``, ``mode``)."""
        if name not in self._modules:
            raise KeyError(f"{name!r} is not quantized by this SMOL; quantized: {self.names}")
        return getattr(self._modules[name].parametrizations, self._attr(name))[0]

    def grid_weight(self, name: str) -> torch.Tensor:
        """The stored weight of ``name`` in grid units (the ``w`` of Algorithm 5)."""
        return getattr(self._modules[name].parametrizations, self._attr(name)).original

    def precision_parameters(self) -> list[nn.Parameter]:
        """The ``s`` of every quantized weight (for the precision optimizer, Adam in the thesis)."""
        return [self.parametrization(n).s for n in self.names]

    def model_parameters(self) -> list[nn.Parameter]:
        """Every parameter of the model except the ``s`` of SMOL (and of any :class:`ActivationSMOL`'s ``s``)."""
        skip = {id(p) for p in self.precision_parameters()}
        skip |= {id(m.s) for m in self.model.modules() if isinstance(m, ActivationSMOL)}
        return [p for p in self.model.parameters() if id(p) not in skip]

    def set_mode(self, mode: str, names: Iterable[str] | None = None) -> SMOL:
        """``"fp"`` (full precision), ``"noise"`` (precision training) or ``"quant"`` for ``names`` (default: all)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}; got {mode!r}")
        for n in self.names if names is None else names:
            self.parametrization(n).mode = mode
        return self

    # -------------------------------------------------------------------------------------- training pieces
    def penalty(self) -> torch.Tensor:
        """``sum`` over layers of :func:`precision_penalty` (bits above 1, summed over all quantized weights)."""
        return sum(precision_penalty(self.parametrization(n).s, self.parametrization(n).group_size)
                   for n in self.names)

    @torch.no_grad()
    def clip_(self) -> None:
        """Alg. 5, line 6: clip ``w`` to ``+-(2 - sigmoid(s))`` so ``w + noise`` stays in ``[-2, 2]``."""
        for n in self.names:
            par, w = self.parametrization(n), self.grid_weight(n)
            bound = 2 - torch.sigmoid(par.s) if par.mode == "noise" else torch.full_like(par.s, 2.0)
            w.copy_(torch.maximum(torch.minimum(w, bound), -bound))

    def real_precisions(self) -> dict[str, torch.Tensor]:
        """``1 + log2(1 + e^-s)`` per ``s`` entry (group shape)."""
        return {n: s_to_precision(self.parametrization(n).s.detach()) for n in self.names}

    # -------------------------------------------------------------------------------------- precisions
    def allocate(self, rounding: str = "floor", zpa: bool = False) -> dict[str, torch.Tensor]:
        """Alg. 5, lines 8-9: integer precisions from ``s`` (eq. 5.20), optionally ZPA; switches to ``"quant"``."""
        out = {}
        for n in self.names:
            par = self.parametrization(n)
            p = integer_precision(par.s, rounding).expand(par.precision.shape).clone()
            par.precision.copy_(p)
            out[n] = par.precision.clone()
        if zpa:
            out = self.zero_precision_allocation()
        self.set_mode("quant")
        return out

    def precisions(self) -> dict[str, torch.Tensor]:
        """A copy of the integer precisions of every quantized weight (weight-shaped)."""
        return {n: self.parametrization(n).precision.clone() for n in self.names}

    def set_precisions(self, precisions: Mapping[str, torch.Tensor] | int) -> SMOL:
        """Fix the precisions (an int for all weights: uniform ``k``-bit), and switch to ``"quant"``."""
        for n in self.names:
            par = self.parametrization(n)
            p = precisions if isinstance(precisions, int) else precisions[n]
            p = torch.as_tensor(p, device=par.precision.device)
            if p.is_floating_point() or int(p.min()) < 0 or int(p.max()) > MAX_PRECISION:
                raise ValueError(f"precisions for {n!r} must be integers in [0, {MAX_PRECISION}]")
            par.precision.copy_(torch.broadcast_to(p, par.precision.shape))
        self.set_mode("quant")
        return self

    @torch.no_grad()
    def zero_precision_allocation(self) -> dict[str, torch.Tensor]:
        """Apply ZPA (5.2.4) to the current precisions; returns them."""
        for n in self.names:
            par = self.parametrization(n)
            par.precision.copy_(_zpa(self.grid_weight(n), par.precision))
        return self.precisions()

    @torch.no_grad()
    def shuffle_precisions(self, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Permute the precisions among the weights of each layer (Table 5.6's control): same bits, no structure."""
        for n in self.names:
            par = self.parametrization(n)
            flat = par.precision.flatten()
            perm = torch.randperm(flat.numel(), generator=generator).to(flat.device)
            par.precision.copy_(flat[perm].view_as(par.precision))
        return self.precisions()

    def bits_per_parameter(self) -> float:
        """Average bits per quantized parameter at the current precisions (5.3.4)."""
        return bits_per_parameter(self.precisions())

    @torch.no_grad()
    def quantization_errors(self) -> dict[str, torch.Tensor]:
        """``|w - q(w, p)|`` per weight in grid units at the current precisions."""
        return {n: (self.grid_weight(n) - quantize(self.grid_weight(n), self.parametrization(n).precision)).abs()
                for n in self.names}

    def state(self) -> dict[str, torch.Tensor]:
        """A copy of the model's state (weights, ``s``, precisions) for :meth:`load_state`."""
        return copy.deepcopy(self.model.state_dict())

    def load_state(self, state: Mapping[str, torch.Tensor]) -> SMOL:
        """Restore a :meth:`state` (weights, ``s`` and precisions; the modes are left as they are)."""
        self.model.load_state_dict(state)
        return self

    def remove(self) -> nn.Module:
        """Bake the current mode's weights (eval: no noise) into plain parameters and drop the parametrizations."""
        was = self.model.training
        self.model.eval()
        for n in self.names:
            parametrize.remove_parametrizations(self._modules[n], self._attr(n), leave_parametrized=True)
        self.model.train(was)
        self.names = []
        return self.model

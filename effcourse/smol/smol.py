"""SMOL (Savarese 2025, ch. 5): learn each weight's precision from how much uniform noise it tolerates.

Each quantized weight ``w`` (in grid units, ``[-2, 2]``) gets a trainable ``s``; during precision training the network
sees ``w + sigmoid(s) * eps`` with ``eps ~ U(-1, 1)`` (Def. 5.5, eq. 5.19), and the loss carries
``lambda * ||log2(1 + e^-s)||_1``, which is ``lambda * sum_i (p_i - 1)`` under the map ``sigmoid(s) = 2^(1-p)``.
Afterwards ``p = 1 + floor(log2(1 + e^-s))`` (5.20), optionally zero-precision allocation, and straight-through
fine-tuning of ``w`` at those precisions (Algorithm 5).

:class:`SMOL` attaches to any ``nn.Module``'s chosen weights with ``torch.nn.utils.parametrize`` (the model's code is
not touched); :class:`ActivationSMOL` is the activation variant (SMOL-A, 5.4.3) with a PACT clip.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from ..core.data import Split
from ..core.train import batches, evaluate, fit
from .fixed_point import MAX_PRECISION, bits_per_parameter, quantize, quantize_ste, zero_precision_allocation

__all__ = [
    "GRANULARITIES",
    "ActivationSMOL",
    "SMOL",
    "SMOLWeight",
    "add_activation_smol",
    "integer_precision",
    "precision_penalty",
    "precision_to_s",
    "precision_training",
    "s_to_precision",
    "sensitivity_allocation",
    "smol_pipeline",
    "uniform_pipeline",
]

GRANULARITIES = ("weight", "channel", "layer")
MODES = ("fp", "noise", "quant")
ROUNDINGS = ("floor", "round", "ceil")


# ------------------------------------------------------------------------------------------------- s <-> p maps
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
            m = weight.detach().abs().max()
            c = torch.exp2(torch.ceil(torch.log2(m))) if float(m) > 0 else torch.ones((), device=weight.device)
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
        return getattr(self._modules[name].parametrizations, self._attr(name))[0]

    def grid_weight(self, name: str) -> torch.Tensor:
        """The stored weight of ``name`` in grid units (the ``w`` of Algorithm 5)."""
        return getattr(self._modules[name].parametrizations, self._attr(name)).original

    def precision_parameters(self) -> list[nn.Parameter]:
        return [self.parametrization(n).s for n in self.names]

    def model_parameters(self) -> list[nn.Parameter]:
        """Every parameter of the model except the ``s`` of SMOL (and of any :class:`ActivationSMOL`'s ``s``)."""
        skip = {id(p) for p in self.precision_parameters()}
        skip |= {id(m.s) for m in self.model.modules() if isinstance(m, ActivationSMOL)}
        return [p for p in self.model.parameters() if id(p) not in skip]

    def set_mode(self, mode: str, names: Iterable[str] | None = None) -> SMOL:
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
            par.precision.copy_(zero_precision_allocation(self.grid_weight(n), par.precision))
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


# -------------------------------------------------------------------------------------------- activation SMOL
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
        return precision_penalty(self.s)

    def allocate(self, rounding: str = "floor") -> torch.Tensor:
        self.precision.copy_(integer_precision(self.s, rounding))
        self.mode = "quant"
        return self.precision.clone()

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


# -------------------------------------------------------------------------------------------- training loops
def precision_training(model: nn.Module, smol: SMOL | None, data: Split, epochs: int, batch_size: int,
                       w_optimizer: torch.optim.Optimizer, s_optimizer: torch.optim.Optimizer, lam: float,
                       samples: int = 1, activations: Sequence[ActivationSMOL] = (), lam_act: float = 0.0,
                       loss_fn: Callable = F.cross_entropy, generator: torch.Generator | None = None,
                       augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
                       scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
                       progress: bool | str = False) -> list[float]:
    """Alg. 5, lines 2-7: minimize the ``samples``-sample noisy loss (5.16) + ``lam * penalty`` in ``(w, s)``.

    Fresh noise in every forward; ``w`` clipped after every step.  Returns the mean task loss per epoch.
    ``smol=None`` trains only the ``activations``' precisions (weights left as they are).
    """
    if not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples (K) must be a positive int; got {samples!r}")
    if lam < 0 or lam_act < 0:
        raise ValueError(f"lam and lam_act must be >= 0; got {lam!r}, {lam_act!r}")
    if smol is not None:
        smol.set_mode("noise")
    for a in activations:
        a.mode = "noise"
    model.train()
    history = []
    it = range(epochs)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc=progress if isinstance(progress, str) else "precision training", leave=False)
    n = data.x_train.shape[0]
    for _ in it:
        total = torch.zeros((), device=data.x_train.device)
        for idx in batches(n, batch_size, generator, device=data.x_train.device):
            xb, yb = data.x_train[idx], data.y_train[idx]
            if augment is not None:
                xb = augment(xb)
            task = sum(loss_fn(model(xb), yb) for _ in range(samples)) / samples
            loss = task + lam * smol.penalty() if smol is not None else task
            if activations:
                loss = loss + lam_act * sum(a.penalty() for a in activations)
            w_optimizer.zero_grad(set_to_none=True)
            s_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            w_optimizer.step()
            s_optimizer.step()
            if smol is not None:
                smol.clip_()
            total += task.detach() * idx.numel()
        history.append(float(total) / n)
        if scheduler is not None:
            scheduler.step()
    return history


def _err(model: nn.Module, data: Split) -> float:
    return evaluate(model, data.x_test, data.y_test)[1]


def _train_loss(model: nn.Module, data: Split) -> float:
    return evaluate(model, data.x_train, data.y_train)[0]


def smol_pipeline(model: nn.Module, data: Split, lam: float, *, precision_epochs: int, finetune_epochs: int,
                  batch_size: int = 64, lr_w: float = 0.05, lr_s: float = 1e-2, lr_ft: float = 0.01,
                  momentum: float = 0.9, samples: int = 1, granularity: str = "weight", p_init: float = 8.0,
                  rounding: str = "floor", zpa: bool = True, shuffle: bool = True, weight_decay: float = 0.0,
                  milestones: Sequence[int] = (), ft_milestones: Sequence[int] = (),
                  weights: Iterable[str] | None = None, augment: Callable | None = None,
                  generator: torch.Generator | None = None, progress: bool = False) -> dict:
    """One SMOL run (Algorithm 5): precision training, floor, [ZPA], STE fine-tuning; errors before and after.

    Returns a dict: ``bpp``, ``err_before``, ``err_after`` (and with ``zpa``: ``bpp_zpa``, ``err_zpa_before``,
    ``err_zpa_after``, ``zpa_error_never_up``; with ``shuffle``: ``err_shuffled_before``), ``precisions`` (CPU
    tensors), ``train_loss_before``/``train_loss_shuffled_before``, and ``smol`` (the attached :class:`SMOL`, left
    at the run's last precisions).  ``lam`` multiplies the sum over weights; ``milestones`` divide the weight
    learning rate by 10 in precision training, ``ft_milestones`` in fine-tuning; ``weights`` as in :class:`SMOL`.
    """
    smol = SMOL(model, weights, granularity=granularity, p_init=p_init)
    w_opt = torch.optim.SGD(smol.model_parameters(), lr=lr_w, momentum=momentum, weight_decay=weight_decay)
    s_opt = torch.optim.Adam(smol.precision_parameters(), lr=lr_s)  # thesis: Adam, no weight decay on s
    sched = torch.optim.lr_scheduler.MultiStepLR(w_opt, list(milestones), 0.1) if milestones else None
    precision_training(model, smol, data, precision_epochs, batch_size, w_opt, s_opt, lam, samples,
                       generator=generator, augment=augment, scheduler=sched,
                       progress="precision training" if progress else False)
    p = smol.allocate(rounding)
    out: dict = {"bpp": smol.bits_per_parameter(), "precisions": {k: v.cpu() for k, v in p.items()},
                 "err_before": _err(model, data), "train_loss_before": _train_loss(model, data)}
    trained = smol.state()
    if shuffle:
        smol.shuffle_precisions(generator)
        out["err_shuffled_before"] = _err(model, data)
        out["train_loss_shuffled_before"] = _train_loss(model, data)
        smol.set_precisions(p)
    if zpa:
        err0 = smol.quantization_errors()
        pz = smol.zero_precision_allocation()
        err1 = smol.quantization_errors()
        out["zpa_error_never_up"] = all(bool((err1[n] <= err0[n]).all()) for n in smol.names)
        out["bpp_zpa"] = smol.bits_per_parameter()
        out["err_zpa_before"] = _err(model, data)
        smol.set_precisions(p)

    def finetune() -> float:
        opt = torch.optim.SGD(smol.model_parameters(), lr=lr_ft, momentum=momentum, weight_decay=weight_decay)
        sch = torch.optim.lr_scheduler.MultiStepLR(opt, list(ft_milestones), 0.1) if ft_milestones else None
        fit(model, opt, data, finetune_epochs, batch_size, generator=generator, augment=augment, scheduler=sch,
            eval_every=max(finetune_epochs, 1), progress="fine-tuning" if progress else False)
        return _err(model, data)

    out["err_after"] = finetune()
    if zpa:
        smol.load_state(trained)
        smol.set_precisions(pz)
        out["err_zpa_after"] = finetune()
    out["smol"] = smol
    return out


def uniform_pipeline(model: nn.Module, data: Split, bits: Sequence[int], *, precision_epochs: int,
                     finetune_epochs: int, batch_size: int = 64, lr_w: float = 0.05, lr_ft: float = 0.01,
                     momentum: float = 0.9, weight_decay: float = 0.0, milestones: Sequence[int] = (),
                     ft_milestones: Sequence[int] = (), weights: Iterable[str] | None = None,
                     augment: Callable | None = None, generator: torch.Generator | None = None) -> dict:
    """The baselines with SMOL's budget: full precision trained ``precision_epochs`` (same grid domain ``[-2, 2]``,
    no noise), then (a) ``finetune_epochs`` more at full precision, (b) for each ``k`` in ``bits``: uniform ``k``-bit
    quantization (the same fixed-point grid, ``p = k`` everywhere), evaluated before and after STE fine-tuning.
    """
    smol = SMOL(model, weights, p_init=8.0).set_mode("fp")
    opt = torch.optim.SGD(smol.model_parameters(), lr=lr_w, momentum=momentum, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, list(milestones), 0.1) if milestones else None
    fit(model, opt, data, precision_epochs, batch_size, generator=generator, augment=augment, scheduler=sched,
        after_step=lambda *_: smol.clip_(), eval_every=max(precision_epochs, 1))
    trained = smol.state()
    out: dict = {"err_fp_before": _err(model, data)}

    def finetune() -> float:
        ft_opt = torch.optim.SGD(smol.model_parameters(), lr=lr_ft, momentum=momentum, weight_decay=weight_decay)
        sch = torch.optim.lr_scheduler.MultiStepLR(ft_opt, list(ft_milestones), 0.1) if ft_milestones else None
        fit(model, ft_opt, data, finetune_epochs, batch_size, generator=generator, augment=augment, scheduler=sch,
            eval_every=max(finetune_epochs, 1))
        return _err(model, data)

    out["err_fp"] = finetune()
    for k in bits:
        smol.load_state(trained)
        smol.set_precisions(int(k))
        out[f"err_u{k}_before"] = _err(model, data)
        out[f"err_u{k}_after"] = finetune()
    smol.load_state(trained)
    smol.set_mode("fp")
    out["smol"] = smol
    return out


@torch.no_grad()
def sensitivity_allocation(smol: SMOL, x: torch.Tensor, y: torch.Tensor, budget_bpp: float,
                           bits: Sequence[int] = (1, 2, 3, 4, 5, 6, 7, 8),
                           loss_fn: Callable = F.cross_entropy) -> dict[str, int]:
    """A cheap per-layer mixed-precision baseline (in the spirit of HAWQ's sensitivity ordering, but measured):

    ``D[l][b]`` = training-loss increase when layer ``l`` alone is quantized to ``b`` bits (the rest full precision);
    start every layer at ``max(bits)`` and repeatedly lower by one step the layer with the smallest
    ``(increase in D) / (bits saved)`` until the average bits per parameter is ``<= budget_bpp``.
    Leaves the model in ``"quant"`` mode at the chosen precisions; returns ``{name: bits}``.
    """
    bits = sorted(int(b) for b in bits)
    if not bits or bits[0] < 1:
        raise ValueError(f"bits must list positive ints; got {bits!r}")
    if not bits[0] <= budget_bpp:
        raise ValueError(f"budget_bpp must be >= min(bits) = {bits[0]}; got {budget_bpp!r}")
    was = smol.model.training
    smol.model.eval()
    smol.set_mode("fp")
    base = float(loss_fn(smol.model(x), y))
    sizes = {n: smol.grid_weight(n).numel() for n in smol.names}
    delta: dict[str, dict[int, float]] = {}
    for n in smol.names:
        delta[n] = {}
        for b in bits:
            smol.parametrization(n).precision.fill_(b)
            smol.set_mode("quant", [n])
            delta[n][b] = float(loss_fn(smol.model(x), y)) - base
        smol.set_mode("fp", [n])
    choice = {n: len(bits) - 1 for n in smol.names}  # index into bits
    total = sum(sizes.values())

    def bpp() -> float:
        return sum(bits[choice[n]] * sizes[n] for n in smol.names) / total

    while bpp() > budget_bpp + 1e-12:
        best, best_cost = None, math.inf
        for n in smol.names:
            i = choice[n]
            if i == 0:
                continue
            cost = (delta[n][bits[i - 1]] - delta[n][bits[i]]) / ((bits[i] - bits[i - 1]) * sizes[n])
            if cost < best_cost:
                best, best_cost = n, cost
        if best is None:
            break
        choice[best] -= 1
    smol.set_precisions({n: torch.tensor(bits[choice[n]]) for n in smol.names})
    smol.model.train(was)
    return {n: bits[choice[n]] for n in smol.names}

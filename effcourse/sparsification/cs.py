"""Continuous Sparsification (CS; Savarese 2025, ch. 4): a deterministic continuation for l0-regularized training.

Each chosen weight tensor ``theta`` is re-parametrized as ``sigma(beta s) * theta`` (4.15) with one mask
parameter ``s_i`` per weight.  Training minimizes

    L_beta(theta, s) = L(f(sigma(beta s) * theta)) + lambda * ||sigma(beta s)||_1            (4.13, p = 1)

while the temperature ``beta`` grows from 1 to ``beta_final`` exponentially (Alg. 1); the hard mask is the
Heaviside step ``H(s) = 1{s >= 0}``.  Ticket search (Alg. 2) repeats rounds, resetting ``s <- min(beta s, s_init)``
and ``beta <- 1`` between them, and finally re-trains the mask from an early iterate.

The mask is a ``torch.nn.utils.parametrize`` parametrization, so it attaches to any module's weight without
rewriting the model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..core.data import Split
from .masks import (
    Checkpoints,
    Layers,
    Masks,
    SnapshotHolder,
    Ticket,
    TrainSpec,
    accuracy,
    load_snapshot,
    phase,
    prunable_layers,
    retrain_ticket,
    snapshot,
    sparsity_report,
    train_masked,
)

__all__ = [
    "SOFT_STEPS",
    "ContinuousSparsifier",
    "SoftMask",
    "cs_ticket_search",
    "continuous_sparsification",
    "heaviside",
    "round_reset",
    "soft_step",
    "temperature",
]


# ---------------------------------------------------------------------------------------------- the relaxation
def heaviside(s: torch.Tensor) -> torch.Tensor:
    """``H(s) = 1{s >= 0}`` (Alg. 1, line 7), as ``s``'s dtype."""
    return (s >= 0).to(s.dtype)


def _sigmoid(beta, s):
    return torch.sigmoid(beta * s)


def _erf(beta, s):
    return 0.5 * (1 + torch.erf(beta * s))


def _power(beta, s, k: float = 1.0):
    return 0.5 * (1 + s / (1 / beta + s.abs() ** k) ** (1 / k))


def _arctan(beta, s):
    # The thesis prints (pi/2) arctan(beta s), which tends to (1 + pi^2/4)/2 ~ 1.73 for s > 0; 2/pi is the scale
    # that maps arctan's range (-pi/2, pi/2) onto (-1, 1) and makes the family converge to H.
    return 0.5 * (1 + (2 / math.pi) * torch.atan(beta * s))


def _arctan_as_printed(beta, s):
    return 0.5 * (1 + (math.pi / 2) * torch.atan(beta * s))


SOFT_STEPS: dict[str, Callable[[float | torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "sigmoid": _sigmoid, "erf": _erf, "power": _power, "arctan": _arctan, "arctan_as_printed": _arctan_as_printed,
}


def soft_step(s: torch.Tensor, beta: float | torch.Tensor, kind: str = "sigmoid") -> torch.Tensor:
    """A smooth ``b_hat(beta, s)`` with ``b_hat -> H`` pointwise for ``s != 0`` as ``beta -> inf`` (4.7, 4.15).

    ``kind``: ``"sigmoid"`` (the one CS uses), ``"erf"``, ``"power"`` (k = 1) or ``"arctan"`` (with the corrected
    2/pi factor); ``"arctan_as_printed"`` is the thesis's misprint, kept to show that it does not converge to H.
    """
    if kind not in SOFT_STEPS:
        raise ValueError(f"kind must be one of {sorted(SOFT_STEPS)}; got {kind!r}")
    return SOFT_STEPS[kind](beta, s)


def temperature(step: int, total: int, beta_final: float) -> float:
    """The exponential schedule ``beta_t = beta_final ** (t / T)``: 1 at ``t = 0``, ``beta_final`` at ``t = T``.

    Alg. 1 multiplies ``beta`` by ``beta_final ** (1/T)`` after every iteration; this is the closed form.  The
    public code steps once per epoch instead, ``beta_e = beta_final ** (e / (E - 1))``: call with ``(e, E - 1)``.
    """
    if total <= 0:
        raise ValueError(f"total must be positive; got {total!r}")
    if beta_final <= 0:
        raise ValueError(f"beta_final must be positive; got {beta_final!r}")
    return float(beta_final) ** (min(max(step, 0), total) / total)


def round_reset(s: torch.Tensor, beta: float, s_init: float) -> torch.Tensor:
    """Alg. 2, line 3: ``s <- min(beta s, s_init)`` (to be used with ``beta <- 1``).

    Why it works: ``sigma(1 * (beta s)) = sigma(beta s)``, so a weight the round suppressed keeps exactly the soft
    mask value it ended with (and stays pruned), while every survivor restarts at ``s_init`` and can be pruned in a
    later round.  The public code resets with ``min(s, s_init)`` (it sets ``beta = 1`` first), which lifts suppressed
    weights back to ``sigma(s)`` close to 1/2; we follow the thesis.
    """
    return torch.minimum(beta * s, torch.full_like(s, s_init))


class SoftMask(nn.Module):
    """Parametrization ``theta -> b_hat(beta, s) * theta`` (soft) or ``H(s) * theta`` (hard), one ``s`` per weight.

    ``beta`` is a buffer so that it moves with ``.to(device)`` and is saved in state dicts.
    """

    def __init__(self, shape: Iterable[int], s_init: float = 0.0, kind: str = "sigmoid",
                 device: str | torch.device | None = None, dtype: torch.dtype | None = None):
        super().__init__()
        if kind not in SOFT_STEPS:
            raise ValueError(f"kind must be one of {sorted(SOFT_STEPS)}; got {kind!r}")
        self.kind = kind
        self.s = nn.Parameter(torch.full(tuple(shape), float(s_init), device=device, dtype=dtype))
        self.register_buffer("beta", torch.tensor(1.0, device=device, dtype=dtype))
        self.hard = False

    def soft_mask(self) -> torch.Tensor:
        return soft_step(self.s, self.beta, self.kind)

    def hard_mask(self) -> torch.Tensor:
        return heaviside(self.s)

    def forward(self, theta: torch.Tensor) -> torch.Tensor:
        return theta * (self.hard_mask() if self.hard else self.soft_mask())


class ContinuousSparsifier:
    """Attach :class:`SoftMask` parametrizations to chosen layers of ``model`` and drive them (Alg. 1 and 2).

    ``layers`` maps names to modules (default :func:`effcourse.sparsification.masks.prunable_layers`: every
    ``Linear``/``Conv2d`` but the classifier).  The model itself is unchanged apart from the parametrizations;
    ``remove()`` bakes the hard mask into the weights.
    """

    def __init__(self, model: nn.Module, layers: Layers | None = None, s_init: float = 0.0, kind: str = "sigmoid"):
        self.model = model
        self.layers = dict(layers) if layers is not None else prunable_layers(model)
        self.s_init = float(s_init)
        self.masks: dict[str, SoftMask] = {}
        for n, m in self.layers.items():
            w = m.weight
            sm = SoftMask(w.shape, s_init, kind, device=w.device, dtype=w.dtype)
            parametrize.register_parametrization(m, "weight", sm)
            self.masks[n] = sm

    # -- parameters
    def mask_parameters(self) -> list[nn.Parameter]:
        return [sm.s for sm in self.masks.values()]

    def weight_parameters(self) -> list[nn.Parameter]:
        ids = {id(p) for p in self.mask_parameters()}
        return [p for p in self.model.parameters() if id(p) not in ids and p.requires_grad]

    # -- temperature
    @property
    def beta(self) -> float:
        return float(next(iter(self.masks.values())).beta)

    @beta.setter
    def beta(self, value: float) -> None:
        if not value > 0:
            raise ValueError(f"beta must be positive; got {value!r}")
        for sm in self.masks.values():
            sm.beta.fill_(float(value))

    def penalty(self) -> torch.Tensor:
        """``||sigma(beta s)||_1`` summed over every mask entry (multiply by lambda; (4.13) with p = 1)."""
        return sum(sm.soft_mask().sum() for sm in self.masks.values())

    # -- masks
    def hard_masks(self) -> Masks:
        """``H(s)`` per layer (read these *before* :meth:`reset`: afterwards every survivor sits at ``s_init``)."""
        return {n: sm.hard_mask().detach().clone() for n, sm in self.masks.items()}

    def remaining(self) -> float:
        return sparsity_report(masks=self.hard_masks())["global"]["remaining"]

    def soft_fraction(self, lo: float = 0.01, hi: float = 0.99) -> float:
        """Fraction of soft-mask entries strictly inside ``(lo, hi)``: how far from binary the mask still is."""
        inside = sum(int(((m := sm.soft_mask()) > lo).logical_and(m < hi).sum()) for sm in self.masks.values())
        return inside / sum(sm.s.numel() for sm in self.masks.values())

    def set_hard(self, hard: bool = True) -> None:
        """Use ``H(s)`` (and freeze ``s``) instead of ``sigma(beta s)``: Alg. 1 line 7, before fine-tuning."""
        for sm in self.masks.values():
            sm.hard = hard
            sm.s.requires_grad_(not hard)

    @torch.no_grad()
    def reset(self, s_init: float | None = None) -> None:
        """Between rounds (Alg. 2, line 3): ``s <- min(beta s, s_init)``, then ``beta <- 1``."""
        s0 = self.s_init if s_init is None else float(s_init)
        beta = self.beta
        for sm in self.masks.values():
            sm.s.copy_(round_reset(sm.s, beta, s0))
        self.beta = 1.0

    def remove(self) -> None:
        """Replace each parametrization by the plain weight ``H(s) * theta``."""
        self.set_hard(True)
        for m in self.layers.values():
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
        self.masks = {}


# ---------------------------------------------------------------------------------------------- the algorithms
def _cs_round(sp: ContinuousSparsifier, data: Split, spec: TrainSpec, lam: float, beta_final: float,
              mask_lr_mult: float, per: str, generator: torch.Generator | None,
              on_epoch: Callable[[int], None] | None = None, checkpoint: Any | None = None) -> float:
    """One round of Alg. 1's loop: joint SGD on (theta, s) while beta goes 1 -> beta_final.

    ``beta`` is a buffer of every mask, so a ``checkpoint`` restores it with the weights and ``s``."""
    if per not in ("step", "epoch"):
        raise ValueError(f"per must be 'step' or 'epoch'; got {per!r}")
    groups = [{"params": sp.weight_parameters()},
              {"params": sp.mask_parameters(), "lr": spec.lr * mask_lr_mult, "weight_decay": 0.0}]
    sp.beta = 1.0
    steps_per_epoch = math.ceil(data.x_train.shape[0] / spec.batch_size)

    def on_step(step: int, total: int) -> None:
        if per == "step":
            sp.beta = temperature(step, total, beta_final)
        elif step % steps_per_epoch == 0:
            # per epoch, as the public code: beta_e = beta_final^(e/(E-1)), so the last epoch runs at beta_final
            sp.beta = temperature(step // steps_per_epoch, max(spec.epochs - 1, 1), beta_final)

    return train_masked(sp.model, data, spec, generator=generator, groups=groups,
                        penalty=(lambda: lam * sp.penalty()) if lam > 0 else None, on_step=on_step,
                        on_epoch=on_epoch, checkpoint=checkpoint)


@dataclass
class CSResult:
    """What :func:`continuous_sparsification` and :func:`cs_ticket_search` return."""

    tickets: list[Ticket] = field(default_factory=list)
    theta_hat: dict[str, torch.Tensor] | None = None
    round_accuracy: list[float] = field(default_factory=list)
    soft_fraction: list[float] = field(default_factory=list)


def continuous_sparsification(model: nn.Module, data: Split, spec: TrainSpec, s_init: float = 0.0,
                              lam: float = 1e-8, beta_final: float = 200.0, mask_lr_mult: float = 1.0,
                              finetune: TrainSpec | None = None, layers: Layers | None = None, per: str = "step",
                              generator: torch.Generator | None = None,
                              checkpoints: Checkpoints | None = None) -> tuple[ContinuousSparsifier, float]:
    """Alg. 1: one round of CS, then the hard mask ``H(s)`` and an optional fine-tuning of ``theta``.

    ``mask_lr_mult`` scales the mask parameters' learning rate relative to the weights' (the thesis uses the same
    optimizer and learning rate for both, i.e. 1).  Returns the sparsifier (in hard mode) and the test accuracy.
    ``checkpoints`` (a sweep's ``ctx.fit_checkpoint``) names the two phases ``cs`` and ``finetune``.
    """
    sp = ContinuousSparsifier(model, layers, s_init)
    acc = _cs_round(sp, data, spec, lam, beta_final, mask_lr_mult, per, generator,
                    checkpoint=phase(checkpoints, "cs"))
    sp.set_hard(True)
    if finetune is not None and finetune.epochs > 0:
        acc = train_masked(model, data, finetune, generator=generator,
                           groups=[{"params": sp.weight_parameters()}], checkpoint=phase(checkpoints, "finetune"))
    else:
        acc = accuracy(model, data)
    return sp, acc


def cs_ticket_search(make_model: Callable[[], nn.Module], data: Split, spec: TrainSpec, rounds: int,
                     s_init: float = 0.0, lam: float = 1e-8, beta_final: float = 200.0, mask_lr_mult: float = 1.0,
                     rewind_epoch: int = 2, rewind_between_rounds: bool = False, per: str = "step",
                     evaluate_tickets: bool = True, generator: torch.Generator | None = None,
                     layer_filter: Callable[[nn.Module], Layers] | None = None,
                     checkpoints: Checkpoints | None = None) -> CSResult:
    """Alg. 2: ``rounds`` rounds of CS with the reset ``s <- min(beta s, s_init), beta <- 1`` between them.

    The weights are *not* rewound between rounds (Alg. 2; ``rewind_between_rounds=True`` is the Conv-6 variant of
    4.5.4).  After every round the hard mask ``H(s)`` is read (before the reset) and, with ``evaluate_tickets``,
    re-trained from ``theta_hat`` (the weights after ``rewind_epoch`` epochs of round 1) with the same
    :class:`TrainSpec`, exactly as IMP's tickets are.  ``checkpoints`` (a sweep's ``ctx.fit_checkpoint``) names
    every phase (``round-<r>``, ``ticket-<r>``; ``theta_hat`` is saved with round 1) so that a killed search resumes.
    """
    if not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be a positive int; got {rounds!r}")
    model = make_model()
    layers = layer_filter(model) if layer_filter is not None else prunable_layers(model)
    sp = ContinuousSparsifier(model, layers, s_init)
    res = CSResult()
    theta_hat = SnapshotHolder()
    if rewind_epoch == 0:
        theta_hat.value = snapshot(model)

    def keep(epoch: int) -> None:
        if epoch == rewind_epoch and theta_hat.value is None:
            theta_hat.value = snapshot(model)

    for r in range(1, rounds + 1):
        if r > 1:
            sp.reset()
            if rewind_between_rounds:
                load_snapshot(model, theta_hat.value)
        extra = {"theta_hat": theta_hat} if r == 1 else {}
        acc = _cs_round(sp, data, spec, lam, beta_final, mask_lr_mult, per, generator,
                        on_epoch=keep if r == 1 else None, checkpoint=phase(checkpoints, f"round-{r}", **extra))
        res.theta_hat = theta_hat.value
        res.round_accuracy.append(acc)
        res.soft_fraction.append(sp.soft_fraction())
        masks = sp.hard_masks()
        t = Ticket("CS", r, masks, sparsity_report(masks=masks)["global"]["remaining"],
                   info={"s_init": s_init, "trained_acc": acc})
        if evaluate_tickets:
            t.accuracy = retrain_ticket(make_model, res.theta_hat, masks, data, spec, generator,
                                        checkpoint=phase(checkpoints, f"ticket-{r}"))
        res.tickets.append(t)
    return res

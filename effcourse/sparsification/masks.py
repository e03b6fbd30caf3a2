"""The mask infrastructure every pruning method of Savarese (2025), ch. 4 shares.

* which weights a method may mask (:func:`prunable_layers`), and masks applied and removed through
  ``torch.nn.utils.prune`` (:func:`apply_masks`, :func:`remove_masks`);
* snapshots of the weights under *canonical* names (``"0.weight"``), whatever re-parametrization currently wraps
  them (prune's ``weight_orig`` or ``torch.nn.utils.parametrize``'s ``original``), so that the early iterate
  ``theta_hat`` of one method's model can be loaded into another's: that is how tickets are rewound (Alg. 2-4);
* sparsity accounting over the prunable weights ("weights remaining", Table 4.2; "sparsity", Tables 4.1, 4.3);
* one round of training (:class:`TrainSpec`, :func:`train_masked`: the thesis's SGD with a step schedule, run by
  :func:`effcourse.core.train.fit`), and tickets, a mask re-trained from ``theta_hat``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize, prune

from ..core.data import Split
from ..core.train import evaluate, fit

__all__ = [
    "Checkpoints",
    "Layers",
    "Masks",
    "SnapshotHolder",
    "Ticket",
    "TrainSpec",
    "accuracy",
    "apply_masks",
    "load_snapshot",
    "phase",
    "prunable_layers",
    "remove_masks",
    "retrain_ticket",
    "snapshot",
    "sparsest_within",
    "sparsity_report",
    "train_masked",
]

Layers = dict[str, nn.Module]
Masks = dict[str, torch.Tensor]
# A factory of named training checkpoints, ``checkpoints(phase_name, **extra)`` -> a ``fit`` checkpoint (a sweep's
# ``ctx.fit_checkpoint``, :mod:`effcourse.sweep.context`).  Every multi-phase method (a round, a re-training, a
# fine-tuning) names each of its ``fit`` calls, so that a killed run replays the finished phases from their
# checkpoints and resumes the unfinished one where it stopped.
Checkpoints = Callable[..., Any]


def phase(checkpoints: Checkpoints | None, name: str, **extra: Any) -> Any:
    """The checkpoint of phase ``name`` (``None`` without a factory, i.e. outside a sweep)."""
    return None if checkpoints is None else checkpoints(name, **extra)


class SnapshotHolder:
    """A :func:`snapshot` (the early iterate ``theta_hat``) that a checkpoint saves and restores with the model:
    it is taken by an epoch callback that a resumed run no longer reaches."""

    def __init__(self) -> None:
        self.value: dict[str, torch.Tensor] | None = None

    def state_dict(self) -> dict[str, Any]:
        return {"value": self.value}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.value = state["value"]


# ---------------------------------------------------------------------------------------------- which weights
def prunable_layers(model: nn.Module, include_output: bool = False,
                    exclude: Callable[[str, nn.Module], bool] | None = None) -> Layers:
    """The ``Linear``/``Conv2d`` layers whose weights a method may mask, by module name, in forward order.

    The last ``Linear`` (the classifier) is left dense unless ``include_output``: at >= 99 % sparsity global
    magnitude pruning can otherwise delete a whole layer (the "layer collapse" of the digest's B6.7), and the
    thesis's public code leaves ResNet-20's classifier unmasked too.  ``exclude(name, module)`` drops more layers
    (e.g. ResNet-20's two 1x1 shortcut convolutions, which Savarese prunes with neither IMP nor CS).
    """
    layers = {n: m for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))}
    if not layers:
        raise ValueError("model has no nn.Linear or nn.Conv2d layer to prune")
    if not include_output:
        last_linear = [n for n, m in layers.items() if isinstance(m, nn.Linear)]
        if last_linear:
            layers.pop(last_linear[-1])
    if exclude is not None:
        layers = {n: m for n, m in layers.items() if not exclude(n, m)}
    if not layers:
        raise ValueError("no prunable layer left after include_output/exclude")
    return layers


def _raw_weight(module: nn.Module) -> torch.Tensor:
    """The trainable tensor behind ``module.weight`` under any of the re-parametrizations used here."""
    if parametrize.is_parametrized(module, "weight"):
        return module.parametrizations.weight.original
    if hasattr(module, "weight_orig"):
        return module.weight_orig
    return module.weight


def _canonical(name: str) -> str:
    return (name.replace(".parametrizations.weight.original", ".weight")
            .replace("parametrizations.weight.original", "weight").replace("weight_orig", "weight"))


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of the model's weights, biases and buffers under canonical names (masks left out).

    Used to store the early iterate ``theta_hat`` of Alg. 2-4 and to rewind to it later.
    """
    out: dict[str, torch.Tensor] = {}
    for name, p in model.named_parameters():
        if ".parametrizations.weight.0." in name or name.startswith("parametrizations.weight.0."):
            continue  # a mask parameter (s), not a weight
        out[_canonical(name)] = p.detach().clone()
    for name, b in model.named_buffers():
        if name.endswith("weight_mask") or ".parametrizations." in name or name.startswith("parametrizations."):
            continue
        out[_canonical(name)] = b.detach().clone()
    return out


@torch.no_grad()
def load_snapshot(model: nn.Module, snap: dict[str, torch.Tensor]) -> None:
    """Copy a :func:`snapshot` into ``model``'s underlying tensors (masks and mask parameters are untouched)."""
    targets = {}
    for name, p in model.named_parameters():
        targets[_canonical(name)] = p
    for name, b in model.named_buffers():
        targets.setdefault(_canonical(name), b)
    missing = [k for k in snap if k not in targets]
    if missing:
        raise KeyError(f"snapshot names not in model: {missing[:5]}")
    for k, v in snap.items():
        targets[k].copy_(v)


# ---------------------------------------------------------------------------------------------- accounting
def _current_mask(module: nn.Module) -> torch.Tensor:
    """The 0/1 mask a layer applies now: prune's buffer, a parametrization's ``hard_mask()``, or all ones."""
    if hasattr(module, "weight_mask"):
        return module.weight_mask.detach()
    if parametrize.is_parametrized(module, "weight"):
        p = module.parametrizations.weight[0]
        if hasattr(p, "hard_mask"):
            return p.hard_mask().detach()
    return torch.ones_like(_raw_weight(module))


def sparsity_report(layers: Layers | None = None, masks: Masks | None = None) -> dict[str, dict[str, float]]:
    """Per-layer and global counts of kept weights: ``{name: {"total", "kept", "remaining", "sparsity"}}``.

    Give ``layers`` (masks read from the modules) or a ``masks`` dict.  The ``"global"`` row counts prunable
    weights only, as Savarese's "weights remaining" (Table 4.2) and "sparsity" (Tables 4.1, 4.3) do.
    """
    if (layers is None) == (masks is None):
        raise ValueError("give exactly one of layers= or masks=")
    if masks is None:
        masks = {n: _current_mask(m) for n, m in layers.items()}
    rows: dict[str, dict[str, float]] = {}
    tot = kept = 0
    for n, m in masks.items():
        t, k = m.numel(), int((m != 0).sum())
        rows[n] = {"total": t, "kept": k, "remaining": k / t, "sparsity": 1 - k / t}
        tot, kept = tot + t, kept + k
    rows["global"] = {"total": tot, "kept": kept, "remaining": kept / tot, "sparsity": 1 - kept / tot}
    return rows


# ---------------------------------------------------------------------------------------------- masks
def apply_masks(layers: Layers, masks: Masks | None = None) -> None:
    """Give every layer a ``torch.nn.utils.prune`` mask (``masks[name]``, or all ones), replacing any old one."""
    for n, m in layers.items():
        if prune.is_pruned(m):
            prune.remove(m, "weight")
        mask = masks[n] if masks is not None else torch.ones_like(m.weight)
        prune.custom_from_mask(m, "weight", mask.to(device=m.weight.device, dtype=m.weight.dtype))


def remove_masks(layers: Layers) -> None:
    """Make the pruning permanent: ``weight = weight_orig * weight_mask`` becomes a plain parameter."""
    for m in layers.values():
        if prune.is_pruned(m):
            prune.remove(m, "weight")


# ---------------------------------------------------------------------------------------------- training
@dataclass(frozen=True)
class TrainSpec:
    """One round of training: SGD(momentum) with a step schedule, as in Savarese's ticket-search protocol.

    ``milestones`` are fractions of the round at which the learning rate is multiplied by ``gamma`` (the thesis's
    56 and 71 of 85 epochs are ``(0.66, 0.835)``); ``weight_decay`` applies to weights, never to mask parameters.
    """

    epochs: int
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 1e-4
    batch_size: int = 64
    milestones: tuple[float, ...] = (2 / 3, 5 / 6)
    gamma: float = 0.1
    optimizer: str = "sgd"  # "sgd" | "adam"
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None  # e.g. train.random_crop_flip on CIFAR

    def __post_init__(self):
        if not isinstance(self.epochs, int) or self.epochs < 0:
            raise ValueError(f"epochs must be a non-negative int; got {self.epochs!r}")
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam'; got {self.optimizer!r}")

    def make_optimizer(self, groups: list[dict]) -> torch.optim.Optimizer:
        """An optimizer over parameter ``groups`` (each may carry its own ``lr``/``weight_decay``)."""
        groups = [g for g in groups if g["params"]]
        if self.optimizer == "adam":
            return torch.optim.Adam(groups, lr=self.lr, weight_decay=self.weight_decay)
        return torch.optim.SGD(groups, lr=self.lr, momentum=self.momentum, nesterov=self.nesterov,
                               weight_decay=self.weight_decay)

    def lr_factor(self, epoch: int) -> float:
        """The learning-rate multiplier in ``epoch`` (0-based) of the round."""
        passed = sum(epoch >= round(f * self.epochs) for f in self.milestones)
        return self.gamma ** passed


def train_masked(model: nn.Module, data: Split, spec: TrainSpec, *, generator: torch.Generator | None = None,
                 groups: list[dict] | None = None, penalty: Callable[[], torch.Tensor] | None = None,
                 on_step: Callable[[int, int], None] | None = None,
                 on_epoch: Callable[[int], None] | None = None, checkpoint: Any | None = None) -> float:
    """Train for ``spec.epochs`` epochs through :func:`effcourse.core.train.fit`; return the final test accuracy.

    ``groups`` are the optimizer's parameter groups (default: every trainable parameter); ``penalty()`` is added
    to each minibatch loss (CS's ``lambda * ||sigma(beta s)||_1``, (4.13)); ``on_step(step, steps_total)`` runs after
    every update (CS anneals its temperature there) and ``on_epoch(epoch)`` after every epoch (rewind points).
    Training stops early if the loss becomes non-finite (``fit``'s divergence check).  ``checkpoint`` (a sweep's
    ``ctx.fit_checkpoint(...)``) saves and restores the state every epoch.
    """
    if groups is None:
        groups = [{"params": [p for p in model.parameters() if p.requires_grad]}]
    fit(model, spec.make_optimizer(groups), data, spec.epochs, spec.batch_size, generator=generator,
        augment=spec.augment, regularizer=penalty, after_step=on_step, eval_every=0, lr_factor=spec.lr_factor,
        after_epoch=on_epoch, checkpoint=checkpoint)
    return accuracy(model, data)


def accuracy(model: nn.Module, data: Split) -> float:
    """Test accuracy in [0, 1]."""
    return 1.0 - evaluate(model, data.x_test, data.y_test)[1]


# ---------------------------------------------------------------------------------------------- accounting of results
def sparsest_within(points: Iterable[tuple[float, float]], reference: float, tolerance: float = 0.02) -> float:
    """Table 4.1's statistic: the largest sparsity among ``(sparsity, accuracy)`` points whose accuracy is at
    least ``reference - tolerance`` (accuracies in [0, 1]); 0 if none qualifies."""
    ok = [sp for sp, acc in points if acc >= reference - tolerance - 1e-12]
    return max(ok, default=0.0)


# ---------------------------------------------------------------------------------------------- tickets
@dataclass
class Ticket:
    """A sub-network found by a method: its masks, weights remaining and (once re-trained) its test accuracy."""

    method: str
    round: int
    masks: Masks
    remaining: float
    accuracy: float = float("nan")
    info: dict = field(default_factory=dict)


def retrain_ticket(make_model: Callable[[], nn.Module], theta_hat: dict[str, torch.Tensor], masks: Masks,
                   data: Split, spec: TrainSpec, generator: torch.Generator | None = None,
                   checkpoint: Any | None = None) -> float:
    """Train ``masks`` from the early iterate ``theta_hat`` (weights only, no mask parameters); test accuracy."""
    model = make_model()
    load_snapshot(model, theta_hat)
    layers = {n: dict(model.named_modules())[n] for n in masks}
    apply_masks(layers, masks)
    return train_masked(model, data, spec, generator=generator, checkpoint=checkpoint)

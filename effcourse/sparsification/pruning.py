"""Magnitude pruning and its relatives: the baselines of Savarese (2025), ch. 4, on ``torch.nn.utils.prune``.

* sparsity accounting over the *prunable* weights (the ones a method may mask), per layer and global;
* a masked training loop shared by every method (SGD with a step schedule, a per-step hook);
* one-shot magnitude pruning (MP, Han et al. 2015), gradual magnitude pruning (GMP, Zhu & Gupta 2017, cubic
  schedule), iterative magnitude pruning with and without rewinding (IMP / IMP-C, Alg. 3);
* stochastic sparsification (SS / ISS, Alg. 4): Bernoulli masks trained with the straight-through estimator.

Weights are addressed by *canonical* names (``"0.weight"``), whatever re-parametrization currently wraps them
(``torch.nn.utils.prune``'s ``weight_orig`` or ``torch.nn.utils.parametrize``'s ``original``), so a snapshot taken
from one method's model can be loaded into another's: that is how tickets are rewound.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize, prune

from ..core.data import Split
from ..core.train import batches, evaluate

__all__ = [
    "BernoulliMask",
    "accuracy",
    "retrain_ticket",
    "Ticket",
    "TrainSpec",
    "apply_masks",
    "gmp_sparsity",
    "gradual_magnitude_pruning",
    "iterative_magnitude_pruning",
    "load_snapshot",
    "magnitude_masks",
    "one_shot_magnitude_pruning",
    "prunable_layers",
    "remove_masks",
    "snapshot",
    "sparsest_within",
    "sparsity_report",
    "stochastic_sparsification",
    "train_masked",
]

Layers = dict[str, nn.Module]
Masks = dict[str, torch.Tensor]


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


@torch.no_grad()
def magnitude_masks(layers: Layers, amount: float, scope: str = "global") -> Masks:
    """Prune ``amount`` of the *still unpruned* weights with the smallest ``|w|``; return the new masks.

    ``scope="global"`` ranks all layers together (``prune.global_unstructured``, Savarese's IMP on VGG/ResNet);
    ``"layer"`` removes ``amount`` of each layer separately.  Repeated calls compound: after ``r`` calls with
    ``amount=0.2`` a fraction ``0.8**r`` remains (up to rounding), because prune's containers only rank the weights
    that survive.
    """
    if not (0.0 <= amount < 1.0):
        raise ValueError(f"amount must be in [0, 1); got {amount!r}")
    if scope not in ("global", "layer"):
        raise ValueError(f"scope must be 'global' or 'layer'; got {scope!r}")
    for m in layers.values():
        if not prune.is_pruned(m):
            prune.identity(m, "weight")
    if amount > 0:
        if scope == "global":
            kept = sum(int(m.weight_mask.sum()) for m in layers.values())
            prune.global_unstructured([(m, "weight") for m in layers.values()],
                                      pruning_method=prune.L1Unstructured, amount=int(round(amount * kept)))
        else:
            for m in layers.values():
                prune.l1_unstructured(m, "weight", amount=int(round(amount * float(m.weight_mask.sum()))))
    return {n: m.weight_mask.detach().clone() for n, m in layers.items()}


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
                 on_epoch: Callable[[int], None] | None = None) -> float:
    """Train for ``spec.epochs`` epochs; return the final test accuracy.

    ``groups`` are the optimizer's parameter groups (default: every trainable parameter); ``penalty()`` is added
    to each minibatch loss (CS's ``lambda * ||sigma(beta s)||_1``, (4.13)); ``on_step(step, steps_total)`` runs after
    every update (CS anneals its temperature there) and ``on_epoch(epoch)`` after every epoch (rewind points).
    """
    if groups is None:
        groups = [{"params": [p for p in model.parameters() if p.requires_grad]}]
    opt = spec.make_optimizer(groups)
    base = [g["lr"] for g in opt.param_groups]
    n = data.x_train.shape[0]
    steps_per_epoch = math.ceil(n / spec.batch_size)
    total, step = spec.epochs * steps_per_epoch, 0
    model.train()
    for epoch in range(spec.epochs):
        f = spec.lr_factor(epoch)
        for g, b in zip(opt.param_groups, base):
            g["lr"] = b * f
        for idx in batches(n, spec.batch_size, generator, device=data.x_train.device):
            xb = data.x_train[idx] if spec.augment is None else spec.augment(data.x_train[idx])
            loss = F.cross_entropy(model(xb), data.y_train[idx])
            if penalty is not None:
                loss = loss + penalty()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if on_step is not None:
                on_step(step, total)
        if on_epoch is not None:
            on_epoch(epoch + 1)
    return accuracy(model, data)


def sparsest_within(points: Iterable[tuple[float, float]], reference: float, tolerance: float = 0.02) -> float:
    """Table 4.1's statistic: the largest sparsity among ``(sparsity, accuracy)`` points whose accuracy is at
    least ``reference - tolerance`` (accuracies in [0, 1]); 0 if none qualifies."""
    ok = [sp for sp, acc in points if acc >= reference - tolerance - 1e-12]
    return max(ok, default=0.0)


def accuracy(model: nn.Module, data: Split) -> float:
    """Test accuracy in [0, 1]."""
    return 1.0 - evaluate(model, data.x_test, data.y_test)[1]


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
                   data: Split, spec: TrainSpec, generator: torch.Generator | None = None) -> float:
    """Train ``masks`` from the early iterate ``theta_hat`` (weights only, no mask parameters); test accuracy."""
    model = make_model()
    load_snapshot(model, theta_hat)
    layers = {n: dict(model.named_modules())[n] for n in masks}
    apply_masks(layers, masks)
    return train_masked(model, data, spec, generator=generator)


def iterative_magnitude_pruning(make_model: Callable[[], nn.Module], data: Split, spec: TrainSpec, rounds: int,
                                rate: float = 0.2, rewind: bool = True, rewind_epoch: int = 2,
                                scope: str = "global", generator: torch.Generator | None = None,
                                evaluate_tickets: bool = True, progress: bool = False,
                                layer_filter: Callable[[nn.Module], Layers] | None = None) -> list[Ticket]:
    """Ticket search with IMP (Alg. 3; Frankle & Carbin 2019, Frankle et al. 2019).

    Round 1 trains the dense net and stores ``theta_hat`` after ``rewind_epoch`` epochs; every round ends by
    removing ``rate`` of the remaining prunable weights by magnitude (``scope``: global or per layer), then either
    rewinds the survivors to ``theta_hat`` (IMP) or keeps training from where it is (``rewind=False``: IMP-C).
    Ticket ``r`` (``0.8**r`` remaining for ``rate=0.2``) is evaluated by re-training ``theta_hat`` under its mask
    for one round.  With rewinding, round ``r+1`` *is* that re-training, so it is read off for free; IMP-C tickets
    need a separate re-training.  Returns the dense "ticket" (round 0) and ``rounds`` pruned tickets.
    """
    if not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be a positive int; got {rounds!r}")
    if not (0.0 < rate < 1.0):
        raise ValueError(f"rate must be in (0, 1); got {rate!r}")
    if not (0 <= rewind_epoch <= spec.epochs):
        raise ValueError(f"rewind_epoch must be in [0, spec.epochs]; got {rewind_epoch!r}")
    model = make_model()
    layers = layer_filter(model) if layer_filter is not None else prunable_layers(model)
    apply_masks(layers)
    store: dict[str, dict] = {}
    if rewind_epoch == 0:
        store["theta_hat"] = snapshot(model)

    def keep(epoch: int) -> None:
        if epoch == rewind_epoch and "theta_hat" not in store:
            store["theta_hat"] = snapshot(model)

    name = "IMP" if rewind else "IMP-C"
    acc = train_masked(model, data, spec, generator=generator, on_epoch=keep)
    tickets = [Ticket(name, 0, {n: torch.ones_like(m.weight_mask) for n, m in layers.items()}, 1.0, acc)]
    it = range(1, rounds + 1)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc=name, leave=False)
    for r in it:
        # magnitudes come from the weights trained in the round that just ended (before any rewinding)
        masks = magnitude_masks(layers, rate, scope)
        t = Ticket(name, r, masks, sparsity_report(masks=masks)["global"]["remaining"], info={"trained_acc": acc})
        tickets.append(t)
        if rewind:
            if r == rounds and not evaluate_tickets:
                break
            load_snapshot(model, store["theta_hat"])
            acc = train_masked(model, data, spec, generator=generator)
            t.accuracy = acc  # the next round's training *is* this ticket's re-training from theta_hat
        else:
            if evaluate_tickets:
                t.accuracy = retrain_ticket(make_model, store["theta_hat"], masks, data, spec, generator)
            if r < rounds:
                acc = train_masked(model, data, spec, generator=generator)  # continue, no rewinding
    return tickets


# ---------------------------------------------------------------------------------------------- pruning baselines
def one_shot_magnitude_pruning(model: nn.Module, layers: Layers, data: Split, sparsity: float,
                               finetune: TrainSpec, scope: str = "global",
                               generator: torch.Generator | None = None) -> tuple[float, float]:
    """MP (Han et al. 2015) on a trained copy of ``model``: prune ``sparsity`` of the prunable weights at once,
    fine-tune with the mask fixed; return ``(test accuracy, sparsity reached)``.  ``model`` is not modified."""
    if not (0.0 <= sparsity < 1.0):
        raise ValueError(f"sparsity must be in [0, 1); got {sparsity!r}")
    m2 = copy.deepcopy(model)
    names = dict(model.named_modules())
    inv = {id(v): k for k, v in names.items()}
    l2 = {inv[id(m)]: dict(m2.named_modules())[inv[id(m)]] for m in layers.values()}
    masks = magnitude_masks(l2, sparsity, scope)
    acc = train_masked(m2, data, finetune, generator=generator)
    return acc, sparsity_report(masks=masks)["global"]["sparsity"]


def gmp_sparsity(step: int, final: float, begin: int, end: int, initial: float = 0.0) -> float:
    """Zhu & Gupta's cubic schedule: ``s_t = s_f + (s_i - s_f) (1 - (t - t_0) / (n dt))^3`` for ``t`` in
    ``[t_0, t_0 + n dt]``; ``initial`` before ``begin``, ``final`` after ``end``."""
    if not (0.0 <= initial <= final < 1.0):
        raise ValueError(f"need 0 <= initial <= final < 1; got initial={initial!r}, final={final!r}")
    if end <= begin:
        raise ValueError(f"end must exceed begin; got begin={begin!r}, end={end!r}")
    if step <= begin:
        return initial
    if step >= end:
        return final
    frac = (step - begin) / (end - begin)
    return final + (initial - final) * (1.0 - frac) ** 3


def gradual_magnitude_pruning(model: nn.Module, layers: Layers, data: Split, spec: TrainSpec, final: float,
                              begin_frac: float = 0.1, end_frac: float = 0.6, prune_every: int = 10,
                              scope: str = "global", generator: torch.Generator | None = None) -> float:
    """GMP: train while raising sparsity along :func:`gmp_sparsity` every ``prune_every`` steps between
    ``begin_frac`` and ``end_frac`` of training; the last ``1 - end_frac`` fine-tunes the fixed mask.

    Returns the test accuracy; ``model`` is trained and pruned in place (masks via ``torch.nn.utils.prune``).
    """
    apply_masks(layers)
    n = data.x_train.shape[0]
    total = spec.epochs * math.ceil(n / spec.batch_size)
    begin, end = int(begin_frac * total), max(int(end_frac * total), int(begin_frac * total) + 1)

    def on_step(step: int, _total: int) -> None:
        if (step - begin) % prune_every == 0 or step == end:
            target = gmp_sparsity(step, final, begin, end)
            kept = sum(float(m.weight_mask.sum()) for m in layers.values())
            tot = sum(m.weight_mask.numel() for m in layers.values())
            cur = 1 - kept / tot
            if target > cur + 1e-12:
                magnitude_masks(layers, (target - cur) / (1 - cur), scope)

    return train_masked(model, data, spec, generator=generator, on_step=on_step)


# ---------------------------------------------------------------------------------------------- stochastic masks
class _BernoulliSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, p: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return (u < p).to(p.dtype)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        return g, None  # straight-through: d m / d p := 1


class BernoulliMask(nn.Module):
    """Parametrization ``w -> m * w`` with ``m ~ Bernoulli(sigma(s))`` resampled every forward (Alg. 4, SS/ISS).

    Gradients reach ``s`` through the straight-through estimator (Bengio et al. 2013): ``dm/dp`` is taken as 1.
    In eval mode the mask is the one fixed by :meth:`freeze` (a sample, as Alg. 4's last step), if any.
    """

    def __init__(self, shape: Sequence[int], s_init: float = 1.0, device: str | torch.device | None = None):
        super().__init__()
        self.s = nn.Parameter(torch.full(tuple(shape), float(s_init), device=device))
        self.register_buffer("fixed", torch.empty(0, device=device))

    def probs(self) -> torch.Tensor:
        return torch.sigmoid(self.s)

    def hard_mask(self) -> torch.Tensor:
        return self.fixed if self.fixed.numel() else (self.s > 0).to(self.s.dtype)

    @torch.no_grad()
    def freeze(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw the final mask ``m ~ Bernoulli(sigma(s))`` and use it from now on in eval mode."""
        u = torch.rand(self.s.shape, generator=generator).to(self.s.device)
        self.fixed = (u < self.probs()).to(self.s.dtype)
        return self.fixed

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        if not self.training and self.fixed.numel():
            return w * self.fixed
        u = torch.rand_like(self.s)
        return w * _BernoulliSTE.apply(self.probs(), u)


def stochastic_sparsification(model: nn.Module, layers: Layers, data: Split, spec: TrainSpec, rounds: int = 1,
                              s_init: float = 1.0, lam: float = 1e-8, mask_lr: float = 100.0,
                              train_weights: bool = False, generator: torch.Generator | None = None,
                              ) -> dict[str, float | Masks]:
    """SS (``rounds=1``, Zhou et al. 2019) and ISS (Alg. 4): Bernoulli(sigma(s)) masks trained by STE.

    Mask parameters use plain SGD at ``mask_lr`` (Zhou et al.'s 100; the thesis's ISS uses 20) and the penalty
    ``lam * sum(sigma(s))`` (Alg. 4 prints ``sigma(beta s)``: there is no beta in SS, so read ``sigma(s)``).
    Between rounds, entries whose ``s`` fell below ``s_init`` are removed for good (``s = -inf``).  With
    ``train_weights=False`` the weights stay at initialization (supermask search).  The model keeps its masks.
    Returns the accuracy with a sampled final mask, its remaining fraction and the masks.
    """
    if not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be a positive int; got {rounds!r}")
    masks = {}
    for n, m in layers.items():
        bm = BernoulliMask(m.weight.shape, s_init, device=m.weight.device)
        parametrize.register_parametrization(m, "weight", bm)
        masks[n] = bm
    s_params = [bm.s for bm in masks.values()]
    w_params = [p for n, p in model.named_parameters() if not any(p is s for s in s_params)]
    for p in w_params:
        p.requires_grad_(train_weights)

    def penalty() -> torch.Tensor:
        return lam * sum(torch.sigmoid(s).sum() for s in s_params)

    for r in range(rounds):
        if r > 0:
            with torch.no_grad():
                for s in s_params:
                    s.masked_fill_(s < s_init, -math.inf)
        # Zhou et al. train s with plain SGD whatever optimizer the weights use, hence two optimizers
        opt_w = spec.make_optimizer([{"params": w_params}]) if train_weights else None
        opt_s = torch.optim.SGD(s_params, lr=mask_lr, momentum=0.0)
        n = data.x_train.shape[0]
        model.train()
        for _epoch in range(spec.epochs):
            for idx in batches(n, spec.batch_size, generator, device=data.x_train.device):
                loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx]) + penalty()
                opt_s.zero_grad(set_to_none=True)
                if opt_w is not None:
                    opt_w.zero_grad(set_to_none=True)
                loss.backward()
                opt_s.step()
                if opt_w is not None:
                    opt_w.step()
    final = {n: bm.freeze(generator) for n, bm in masks.items()}
    acc = accuracy(model, data)
    return {"accuracy": acc, "remaining": sparsity_report(masks=final)["global"]["remaining"], "masks": final}

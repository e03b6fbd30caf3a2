"""The baselines CS is compared with in Savarese (2025), ch. 4, on ``torch.nn.utils.prune`` masks.

* magnitude masks (:func:`magnitude_masks`), global or per layer;
* one-shot magnitude pruning (MP, Han et al. 2015) and gradual magnitude pruning (GMP, Zhu & Gupta 2017, cubic
  schedule): Table 4.1;
* iterative magnitude pruning with and without rewinding (IMP / IMP-C, Alg. 3): the ticket searches of Table 4.2;
* stochastic sparsification (SS / ISS, Alg. 4): Bernoulli masks trained with the straight-through estimator, the
  supermask baseline of Figs 4.9-4.10.

Every method trains through :func:`effcourse.sparsification.masks.train_masked` (that is, ``core.train.fit``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize, prune

from ..core.data import Split
from ..core.train import fit
from .masks import (
    Checkpoints,
    Layers,
    Masks,
    SnapshotHolder,
    Ticket,
    TrainSpec,
    accuracy,
    apply_masks,
    load_snapshot,
    phase,
    prunable_layers,
    retrain_ticket,
    snapshot,
    sparsity_report,
    train_masked,
)

__all__ = [
    "BernoulliMask",
    "gmp_sparsity",
    "gradual_magnitude_pruning",
    "iterative_magnitude_pruning",
    "magnitude_masks",
    "one_shot_magnitude_pruning",
    "stochastic_sparsification",
]


# ---------------------------------------------------------------------------------------------- magnitude
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


# ---------------------------------------------------------------------------------------------- tickets by IMP
def iterative_magnitude_pruning(make_model: Callable[[], nn.Module], data: Split, spec: TrainSpec, rounds: int,
                                rate: float = 0.2, rewind: bool = True, rewind_epoch: int = 2,
                                scope: str = "global", generator: torch.Generator | None = None,
                                evaluate_tickets: bool = True, progress: bool = False,
                                layer_filter: Callable[[nn.Module], Layers] | None = None,
                                checkpoints: Checkpoints | None = None) -> list[Ticket]:
    """Ticket search with IMP (Alg. 3; Frankle & Carbin 2019, Frankle et al. 2019).

    Round 1 trains the dense net and stores ``theta_hat`` after ``rewind_epoch`` epochs; every round ends by
    removing ``rate`` of the remaining prunable weights by magnitude (``scope``: global or per layer), then either
    rewinds the survivors to ``theta_hat`` (IMP) or keeps training from where it is (``rewind=False``: IMP-C).
    Ticket ``r`` (``0.8**r`` remaining for ``rate=0.2``) is evaluated by re-training ``theta_hat`` under its mask
    for one round.  With rewinding, round ``r+1`` *is* that re-training, so it is read off for free; IMP-C tickets
    need a separate re-training.  Returns the dense "ticket" (round 0) and ``rounds`` pruned tickets.

    ``checkpoints`` (a sweep's ``ctx.fit_checkpoint``) names every training phase (``round-<r>``, ``ticket-<r>``;
    ``theta_hat`` is saved with round 0), so that a killed search replays its finished rounds and resumes.
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
    theta_hat = SnapshotHolder()
    if rewind_epoch == 0:
        theta_hat.value = snapshot(model)

    def keep(epoch: int) -> None:
        if epoch == rewind_epoch and theta_hat.value is None:
            theta_hat.value = snapshot(model)

    name = "IMP" if rewind else "IMP-C"
    acc = train_masked(model, data, spec, generator=generator, on_epoch=keep,
                       checkpoint=phase(checkpoints, "round-0", theta_hat=theta_hat))
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
            load_snapshot(model, theta_hat.value)
            acc = train_masked(model, data, spec, generator=generator, checkpoint=phase(checkpoints, f"round-{r}"))
            t.accuracy = acc  # the next round's training *is* this ticket's re-training from theta_hat
        else:
            if evaluate_tickets:
                t.accuracy = retrain_ticket(make_model, theta_hat.value, masks, data, spec, generator,
                                            checkpoint=phase(checkpoints, f"ticket-{r}"))
            if r < rounds:  # continue, no rewinding
                acc = train_masked(model, data, spec, generator=generator,
                                   checkpoint=phase(checkpoints, f"round-{r}"))
    return tickets


# ---------------------------------------------------------------------------------------------- MP and GMP
def one_shot_magnitude_pruning(model: nn.Module, layers: Layers, data: Split, sparsity: float,
                               finetune: TrainSpec, scope: str = "global",
                               generator: torch.Generator | None = None,
                               checkpoint: Any | None = None) -> tuple[float, float]:
    """MP (Han et al. 2015) on a trained copy of ``model``: prune ``sparsity`` of the prunable weights at once,
    fine-tune with the mask fixed (``checkpoint``: the fine-tuning's, in a sweep); return ``(test accuracy,
    sparsity reached)``.  ``model`` is not modified."""
    if not (0.0 <= sparsity < 1.0):
        raise ValueError(f"sparsity must be in [0, 1); got {sparsity!r}")
    m2 = copy.deepcopy(model)
    names = dict(model.named_modules())
    inv = {id(v): k for k, v in names.items()}
    l2 = {inv[id(m)]: dict(m2.named_modules())[inv[id(m)]] for m in layers.values()}
    masks = magnitude_masks(l2, sparsity, scope)
    acc = train_masked(m2, data, finetune, generator=generator, checkpoint=checkpoint)
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
                              scope: str = "global", generator: torch.Generator | None = None,
                              checkpoint: Any | None = None) -> float:
    """GMP: train while raising sparsity along :func:`gmp_sparsity` every ``prune_every`` steps between
    ``begin_frac`` and ``end_frac`` of training; the last ``1 - end_frac`` fine-tunes the fixed mask.

    Returns the test accuracy; ``model`` is trained and pruned in place (masks via ``torch.nn.utils.prune``; they
    are buffers of the model, so a sweep's ``checkpoint`` saves and restores them with the weights).
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

    return train_masked(model, data, spec, generator=generator, on_step=on_step, checkpoint=checkpoint)


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
                              checkpoints: Checkpoints | None = None) -> dict[str, float | Masks]:
    """SS (``rounds=1``, Zhou et al. 2019) and ISS (Alg. 4): Bernoulli(sigma(s)) masks trained by STE.

    Mask parameters use plain SGD at ``mask_lr`` (Zhou et al.'s 100; the thesis's ISS uses 20) and the penalty
    ``lam * sum(sigma(s))`` (Alg. 4 prints ``sigma(beta s)``: there is no beta in SS, so read ``sigma(s)``).
    Between rounds, entries whose ``s`` fell below ``s_init`` are removed for good (``s = -inf``).  With
    ``train_weights=False`` the weights stay at initialization (supermask search).  The model keeps its masks.
    Returns the accuracy with a sampled final mask, its remaining fraction and the masks.  ``checkpoints`` names
    each round's training ``round-<r>`` (a sweep's ``ctx.fit_checkpoint``).
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
        fit(model, [opt_s] if opt_w is None else [opt_s, opt_w], data, spec.epochs, spec.batch_size,
            generator=generator, regularizer=penalty, eval_every=0, checkpoint=phase(checkpoints, f"round-{r + 1}"))
    final = {n: bm.freeze(generator) for n, bm in masks.items()}
    acc = accuracy(model, data)
    return {"accuracy": acc, "remaining": sparsity_report(masks=final)["global"]["remaining"], "masks": final}

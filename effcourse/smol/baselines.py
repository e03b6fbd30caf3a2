"""The baselines SMOL is compared with (Savarese 2025, 5.3-5.4): uniform ``k``-bit quantization on the same grid,
trained with the same budget, and a per-layer sensitivity allocation in the spirit of HAWQ (Dong et al. 2019).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..core.data import Split
from ..core.train import fit
from .parametrization import SMOL
from .training import Checkpoints, _phases, eval_error, finetune

__all__ = ["sensitivity_allocation", "uniform_pipeline"]


def uniform_pipeline(model: nn.Module, data: Split, bits: Sequence[int], *, precision_epochs: int,
                     finetune_epochs: int, batch_size: int = 64, lr_w: float = 0.05, lr_ft: float = 0.01,
                     momentum: float = 0.9, weight_decay: float = 0.0, milestones: Sequence[int] = (),
                     ft_milestones: Sequence[int] = (), weights: Iterable[str] | None = None,
                     augment: Callable | None = None, generator: torch.Generator | None = None,
                     checkpoint: Checkpoints | None = None) -> dict:
    """The baselines with SMOL's budget: full precision trained ``precision_epochs`` (same grid domain ``[-2, 2]``,
    no noise), then (a) ``finetune_epochs`` more at full precision, (b) for each ``k`` in ``bits``: uniform ``k``-bit
    quantization (the same fixed-point grid, ``p = k`` everywhere), evaluated before and after STE fine-tuning.

    Returns ``err_fp_before``, ``err_fp``, ``err_u{k}_before``, ``err_u{k}_after`` and ``smol`` (in ``"fp"`` mode,
    at the weights of the end of the first phase).  ``checkpoint`` (a sweep's ``ctx.fit_checkpoint``) checkpoints
    every phase, ``"fp"``, ``"fp-finetune"`` and ``"u<k>-finetune"``, every epoch (see :func:`smol_pipeline`).
    """
    if any(not isinstance(k, int) or isinstance(k, bool) or k < 1 for k in bits):
        raise ValueError(f"bits must list positive ints; got {list(bits)!r}")
    smol = SMOL(model, weights, p_init=8.0).set_mode("fp")
    opt = torch.optim.SGD(smol.model_parameters(), lr=lr_w, momentum=momentum, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, list(milestones), 0.1) if milestones else None
    ckpt = _phases(checkpoint)
    fit(model, opt, data, precision_epochs, batch_size, generator=generator, augment=augment, scheduler=sched,
        after_step=lambda *_: smol.clip_(), eval_every=0, checkpoint=ckpt("fp"))
    trained = smol.state()
    out: dict = {"err_fp_before": eval_error(model, data)}
    ft = dict(lr=lr_ft, momentum=momentum, weight_decay=weight_decay, milestones=ft_milestones, augment=augment,
              generator=generator)
    out["err_fp"] = finetune(model, smol.model_parameters(), data, finetune_epochs, batch_size, **ft,
                             checkpoint=ckpt("fp-finetune"))
    for k in bits:
        smol.load_state(trained)
        smol.set_precisions(int(k))
        out[f"err_u{k}_before"] = eval_error(model, data)
        out[f"err_u{k}_after"] = finetune(model, smol.model_parameters(), data, finetune_epochs, batch_size, **ft,
                                          checkpoint=ckpt(f"u{k}-finetune"))
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

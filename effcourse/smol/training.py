"""SMOL's two phases (Savarese 2025, Algorithm 5), both through :func:`effcourse.core.train.fit`.

Precision training (lines 2-7) minimizes the ``K``-sample noisy loss (5.16) plus ``lambda`` times the bit penalty
in ``(w, s)``, clipping ``w`` after every step; the precisions are then rounded down (5.20), optionally zeroed by
ZPA (5.2.4), and the weights are fine-tuned at those precisions with straight-through gradients (lines 10-13).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..core.data import Split
from ..core.train import evaluate, fit
from .activations import ActivationSMOL
from .parametrization import SMOL

__all__ = ["Checkpoints", "eval_error", "eval_train_loss", "finetune", "precision_training", "smol_pipeline"]

# A phase name -> the checkpoint of that phase's fit (a sweep's ``ctx.fit_checkpoint``); None: no checkpoints.
Checkpoints = Callable[[str], Any]


def _phases(checkpoint: Checkpoints | None) -> Callable[[str], Any]:
    """``checkpoint`` as a function that is ``None`` for every phase when no checkpoints are kept."""
    if checkpoint is None:
        return lambda name: None
    if not callable(checkpoint):
        raise TypeError(f"checkpoint must map a phase name to a checkpoint (ctx.fit_checkpoint); got "
                        f"{type(checkpoint).__name__}")
    return checkpoint


def eval_error(model: nn.Module, data: Split) -> float:
    """Test error of ``model`` on ``data`` (in [0, 1]), in eval mode (no noise)."""
    return evaluate(model, data.x_test, data.y_test)[1]


def eval_train_loss(model: nn.Module, data: Split) -> float:
    """Mean cross-entropy of ``model`` on the training set, in eval mode (no noise)."""
    return evaluate(model, data.x_train, data.y_train)[0]


def precision_training(model: nn.Module, smol: SMOL | None, data: Split, epochs: int, batch_size: int,
                       w_optimizer: torch.optim.Optimizer, s_optimizer: torch.optim.Optimizer, lam: float,
                       samples: int = 1, activations: Sequence[ActivationSMOL] = (), lam_act: float = 0.0,
                       loss_fn: Callable = F.cross_entropy, generator: torch.Generator | None = None,
                       augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
                       scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
                       progress: bool | str = False, checkpoint: Any | None = None) -> list[float]:
    """Alg. 5, lines 2-7: minimize the ``samples``-sample noisy loss (5.16) + ``lam * penalty`` in ``(w, s)``.

    Fresh noise in every forward; ``w`` clipped after every step; ``activations`` add ``lam_act`` times their
    penalty (SMOL-A).  Returns the mean task loss per epoch.  ``smol=None`` trains only the ``activations``'
    precisions (weights left in full precision).  ``checkpoint`` (a sweep's ``ctx.fit_checkpoint(name)``) goes to
    :func:`~effcourse.core.train.fit`: saved every epoch, restored before the first.
    """
    if not isinstance(samples, int) or isinstance(samples, bool) or samples < 1:
        raise ValueError(f"samples (K) must be a positive int; got {samples!r}")
    if lam < 0 or lam_act < 0:
        raise ValueError(f"lam and lam_act must be >= 0; got {lam!r}, {lam_act!r}")
    activations = list(activations)
    if smol is None and not activations:
        raise ValueError("nothing to train: pass a SMOL (smol=...) or activations=[ActivationSMOL, ...]")
    if smol is not None:
        smol.set_mode("noise")
    for a in activations:
        a.mode = "noise"

    def noisy_loss(m: nn.Module, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:  # (5.16), K samples
        return sum(loss_fn(m(xb), yb) for _ in range(samples)) / samples

    def penalties() -> torch.Tensor:
        weights = lam * smol.penalty() if smol is not None else None
        if not activations:
            return weights
        acts = lam_act * sum(a.penalty() for a in activations)
        return acts if weights is None else weights + acts

    hist = fit(model, [w_optimizer, s_optimizer], data, epochs, batch_size, loss_fn=loss_fn, generator=generator,
               scheduler=scheduler, augment=augment, regularizer=penalties,
               after_step=(lambda *_: smol.clip_()) if smol is not None else None, eval_every=0,
               progress="precision training" if progress is True else progress, batch_loss=noisy_loss,
               checkpoint=checkpoint)
    return hist.train_loss


def finetune(model: nn.Module, parameters: Iterable[torch.Tensor], data: Split, epochs: int, batch_size: int, *,
             lr: float, momentum: float = 0.9, weight_decay: float = 0.0, milestones: Sequence[int] = (),
             augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
             generator: torch.Generator | None = None, progress: bool | str = False,
             checkpoint: Any | None = None) -> float:
    """Alg. 5, lines 10-13: SGD on ``parameters`` at fixed precisions (straight-through), then the test error.

    ``milestones`` divide the learning rate by 10.  The model must already be in ``"quant"`` (or ``"fp"``) mode.
    ``checkpoint`` as in :func:`precision_training`.
    """
    if not lr > 0:
        raise ValueError(f"lr must be positive; got {lr!r}")
    opt = torch.optim.SGD(parameters, lr=lr, momentum=momentum, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, list(milestones), 0.1) if milestones else None
    fit(model, opt, data, epochs, batch_size, generator=generator, augment=augment, scheduler=sched, eval_every=0,
        progress="fine-tuning" if progress is True else progress, checkpoint=checkpoint)
    return eval_error(model, data)


def smol_pipeline(model: nn.Module, data: Split, lam: float, *, precision_epochs: int, finetune_epochs: int,
                  batch_size: int = 64, lr_w: float = 0.05, lr_s: float = 1e-2, lr_ft: float = 0.01,
                  momentum: float = 0.9, samples: int = 1, granularity: str = "weight", p_init: float = 8.0,
                  rounding: str = "floor", zpa: bool = True, shuffle: bool = True, weight_decay: float = 0.0,
                  milestones: Sequence[int] = (), ft_milestones: Sequence[int] = (),
                  weights: Iterable[str] | None = None, augment: Callable | None = None,
                  generator: torch.Generator | None = None, progress: bool = False,
                  checkpoint: Checkpoints | None = None) -> dict:
    """One SMOL run (Algorithm 5): precision training, floor, [ZPA], STE fine-tuning; errors before and after.

    Returns a dict: ``bpp``, ``err_before``, ``err_after`` (and with ``zpa``: ``bpp_zpa``, ``err_zpa_before``,
    ``err_zpa_after``, ``zpa_error_never_up``; with ``shuffle``: ``err_shuffled_before``), ``precisions`` (CPU
    tensors), ``train_loss_before``/``train_loss_shuffled_before``, and ``smol`` (the attached :class:`SMOL`, left
    at the run's last precisions).  ``lam`` multiplies the sum over weights; ``milestones`` divide the weight
    learning rate by 10 in precision training, ``ft_milestones`` in fine-tuning; ``weights`` as in :class:`SMOL`.

    ``checkpoint`` (a sweep's ``ctx.fit_checkpoint``: a phase name -> a checkpoint) checkpoints the two phases of
    Algorithm 5, ``"precision"`` and ``"finetune"`` (and ``"finetune-zpa"``, the second fine-tuning with ZPA), every
    epoch.  A resumed run replays a finished phase from its last checkpoint, and everything between phases
    (rounding, the shuffle, ZPA) is recomputed from it, so the run continues exactly as it would have.
    """
    smol = SMOL(model, weights, granularity=granularity, p_init=p_init)
    w_opt = torch.optim.SGD(smol.model_parameters(), lr=lr_w, momentum=momentum, weight_decay=weight_decay)
    s_opt = torch.optim.Adam(smol.precision_parameters(), lr=lr_s)  # thesis: Adam, no weight decay on s
    sched = torch.optim.lr_scheduler.MultiStepLR(w_opt, list(milestones), 0.1) if milestones else None
    ckpt = _phases(checkpoint)
    precision_training(model, smol, data, precision_epochs, batch_size, w_opt, s_opt, lam, samples,
                       generator=generator, augment=augment, scheduler=sched, progress=progress,
                       checkpoint=ckpt("precision"))
    p = smol.allocate(rounding)
    out: dict = {"bpp": smol.bits_per_parameter(), "precisions": {k: v.cpu() for k, v in p.items()},
                 "err_before": eval_error(model, data), "train_loss_before": eval_train_loss(model, data)}
    trained = smol.state()
    if shuffle:
        smol.shuffle_precisions(generator)
        out["err_shuffled_before"] = eval_error(model, data)
        out["train_loss_shuffled_before"] = eval_train_loss(model, data)
        smol.set_precisions(p)
    if zpa:
        err0 = smol.quantization_errors()
        pz = smol.zero_precision_allocation()
        err1 = smol.quantization_errors()
        out["zpa_error_never_up"] = all(bool((err1[n] <= err0[n]).all()) for n in smol.names)
        out["bpp_zpa"] = smol.bits_per_parameter()
        out["err_zpa_before"] = eval_error(model, data)
        smol.set_precisions(p)
    ft = dict(lr=lr_ft, momentum=momentum, weight_decay=weight_decay, milestones=ft_milestones, augment=augment,
              generator=generator, progress=progress)
    out["err_after"] = finetune(model, smol.model_parameters(), data, finetune_epochs, batch_size, **ft,
                                checkpoint=ckpt("finetune"))
    if zpa:
        smol.load_state(trained)
        smol.set_precisions(pz)
        out["err_zpa_after"] = finetune(model, smol.model_parameters(), data, finetune_epochs, batch_size, **ft,
                                        checkpoint=ckpt("finetune-zpa"))
    out["smol"] = smol
    return out

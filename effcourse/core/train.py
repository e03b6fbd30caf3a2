"""A small training loop that every chapter shares: minibatches of in-memory tensors, fit and evaluate."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .data import Split
from .numerics import Numerics, current_numerics

__all__ = ["History", "batches", "evaluate", "fit"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def batches(n: int, batch_size: int, generator: torch.Generator | None = None, shuffle: bool = True,
            device: str | torch.device = "cpu", drop_last: bool = False) -> Iterator[torch.Tensor]:
    """Index tensors of one epoch over ``n`` samples (a permutation drawn from ``generator`` when ``shuffle``)."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int; got {batch_size!r}")
    idx = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    idx = idx.to(device)
    stop = n - n % batch_size if drop_last and n >= batch_size else n
    for start in range(0, stop, batch_size):
        yield idx[start:start + batch_size]


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn = F.cross_entropy,
             batch_size: int = 4096) -> tuple[float, float]:
    """Mean loss and classification error (in [0, 1]) of ``model`` on ``(x, y)``, in eval mode."""
    was_training = model.training
    model.eval()
    total, wrong, n = 0.0, 0, x.shape[0]
    for start in range(0, n, batch_size):
        out = model(x[start:start + batch_size])
        yy = y[start:start + batch_size]
        total += float(loss_fn(out, yy)) * yy.shape[0]
        if out.dim() == 2 and yy.dtype == torch.long:
            wrong += int((out.argmax(1) != yy).sum())
    model.train(was_training)
    return total / n, wrong / n


@dataclass
class History:
    """Per-epoch records of :func:`fit`; ``diverged`` is set when the training loss became non-finite."""

    train_loss: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_err: list[float] = field(default_factory=list)
    diverged: bool = False

    @property
    def final_err(self) -> float:
        return self.test_err[-1] if self.test_err and not self.diverged else 1.0


def fit(model: nn.Module, optimizer: torch.optim.Optimizer | Sequence[torch.optim.Optimizer], data: Split,
        epochs: int, batch_size: int, loss_fn: LossFn = F.cross_entropy, generator: torch.Generator | None = None,
        scheduler: torch.optim.lr_scheduler.LRScheduler | Callable[[torch.optim.Optimizer], object] | None = None,
        augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
        regularizer: Callable[[], torch.Tensor] | None = None,
        after_step: Callable[[int, int], object] | None = None, eval_every: int = 1,
        progress: bool | str = False, *, lr_factor: Callable[[int], float] | None = None,
        batch_loss: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        after_epoch: Callable[[int], object] | None = None, max_steps: int | None = None,
        checkpoint: Any | None = None, precision: str | None = None, channels_last: bool | None = None) -> History:
    """Train ``model`` for ``epochs`` passes over ``data.x_train`` in minibatches: the one loop of the library.

    Each step minimizes ``batch_loss(model, xb, yb)`` (default ``loss_fn(model(xb), yb)``) plus ``regularizer()``,
    then steps every optimizer (``optimizer`` may be a sequence, e.g. weights and precisions in SMOL) and calls
    ``after_step(step, total_steps)`` (a projection, clipping, a temperature schedule; ``step`` counts from 1).
    Training ends after ``max_steps`` steps if given (a budget in steps, not whole epochs), or as soon as
    ``after_step`` returns a true value (a budget it keeps itself); the epoch it ends in is then recorded as usual.

    Per epoch: ``lr_factor(epoch)`` (0-based) sets every group's learning rate to its initial value times the
    factor before the epoch; ``scheduler`` (a scheduler, or a function of the optimizer that builds one) steps
    after it; ``after_epoch(epoch)`` runs after it (``epoch`` counts from 1: rewind points).  The test set is
    evaluated every ``eval_every`` epochs and after the last (``eval_every=0``: never).  ``History.train_loss``
    is the mean data term per epoch (without the regularizer).  Training stops early, with ``History.diverged``
    set, when that loss becomes non-finite (a diverging learning rate in a sweep).

    ``checkpoint`` (a sweep's ``ctx.fit_checkpoint()``, :mod:`effcourse.sweep.context`) is restored before the
    first epoch, if one was saved, and saved after each epoch: model, optimizers, scheduler, ``generator``, history
    and every random stream, so that a killed run continues exactly where it stopped.

    ``precision`` (``"fp32"`` or ``"bf16"``: forward and loss under ``torch.autocast``) and ``channels_last``
    default to the enclosing :func:`effcourse.core.numerics.training_numerics` (fp32, contiguous).
    """
    if not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative int; got {epochs!r}")
    if not isinstance(eval_every, int) or eval_every < 0:
        raise ValueError(f"eval_every must be a non-negative int (0: never); got {eval_every!r}")
    if max_steps is not None and (not isinstance(max_steps, int) or max_steps < 1):
        raise ValueError(f"max_steps must be None or a positive int; got {max_steps!r}")
    ambient = current_numerics()
    numerics = Numerics(ambient.precision if precision is None else precision,
                        ambient.channels_last if channels_last is None else channels_last)
    optimizers = [optimizer] if isinstance(optimizer, torch.optim.Optimizer) else list(optimizer)
    if not optimizers or not all(isinstance(o, torch.optim.Optimizer) for o in optimizers):
        raise TypeError("optimizer must be a torch.optim.Optimizer or a non-empty sequence of them")
    if scheduler is not None and not hasattr(scheduler, "step"):
        scheduler = scheduler(optimizers[0])
    base_lrs = [[g["lr"] for g in o.param_groups] for o in optimizers]
    hist = History()
    n = data.x_train.shape[0]
    device = data.x_train.device
    total_steps, step, stop = epochs * math.ceil(n / batch_size), 0, False
    if max_steps is not None:
        total_steps = min(total_steps, max_steps)
    first = 0
    if checkpoint is not None:
        restored = checkpoint.restore(model, optimizers, scheduler, generator)
        if restored is not None:
            first, step, hist, finished = restored
            if finished:
                return hist
    it = range(first, epochs)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc=progress if isinstance(progress, str) else "epochs", leave=False)
    if numerics.channels_last:
        model.to(memory_format=torch.channels_last)
    model.train()
    for epoch in it:
        if lr_factor is not None:
            f = lr_factor(epoch)
            for o, lrs in zip(optimizers, base_lrs):
                for g, lr in zip(o.param_groups, lrs):
                    g["lr"] = lr * f
        total = torch.zeros((), device=device)  # summed on the device: one host sync per epoch, not per step
        seen = 0
        for idx in batches(n, batch_size, generator, device=device):
            xb, yb = data.x_train[idx], data.y_train[idx]
            if augment is not None:
                xb = augment(xb)
            xb = numerics.batch(xb)
            with numerics.autocast(device):
                task = loss_fn(model(xb), yb) if batch_loss is None else batch_loss(model, xb, yb)
                loss = task if regularizer is None else task + regularizer()
            for o in optimizers:
                o.zero_grad(set_to_none=True)
            loss.backward()
            for o in optimizers:
                o.step()
            step += 1
            total += task.detach() * idx.numel()
            seen += idx.numel()
            if after_step is not None and after_step(step, total_steps):
                stop = True
            if stop or step == total_steps:
                break
        hist.train_loss.append(float(total) / max(seen, 1))
        if not math.isfinite(hist.train_loss[-1]):
            hist.diverged = True
            if checkpoint is not None:
                checkpoint.save(epoch + 1, step, model, optimizers, scheduler, generator, hist, last=True)
            break
        if scheduler is not None:
            scheduler.step()
        if after_epoch is not None:
            after_epoch(epoch + 1)
        last = stop or step == total_steps or epoch + 1 == epochs
        if eval_every and ((epoch + 1) % eval_every == 0 or last):
            tl, te = evaluate(model, data.x_test, data.y_test, loss_fn)
            hist.test_loss.append(tl)
            hist.test_err.append(te)
        if checkpoint is not None:
            checkpoint.save(epoch + 1, step, model, optimizers, scheduler, generator, hist, last=last)
        if last:
            break
    return hist

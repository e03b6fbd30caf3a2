"""A small training loop that every chapter shares: minibatches of in-memory tensors, fit and evaluate."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .data import Split

__all__ = ["History", "batches", "evaluate", "fit", "random_crop_flip"]

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


def random_crop_flip(x: torch.Tensor, pad: int = 4, generator: torch.Generator | None = None) -> torch.Tensor:
    """The CIFAR augmentation (random crop after zero padding, random horizontal flip), batched on ``x``'s device."""
    n, _, h, w = x.shape
    xp = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    rows = (dy.view(n, 1) + torch.arange(h, device=x.device).view(1, h))  # n x h
    cols = (dx.view(n, 1) + torch.arange(w, device=x.device).view(1, w))  # n x w
    flip = torch.rand(n, generator=generator).to(x.device) < 0.5
    cols = torch.where(flip.view(n, 1), cols.flip(1), cols)
    b = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    c = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
    return xp[b, c, rows.view(n, 1, h, 1), cols.view(n, 1, 1, w)]


def fit(model: nn.Module, optimizer: torch.optim.Optimizer, data: Split, epochs: int, batch_size: int,
        loss_fn: LossFn = F.cross_entropy, generator: torch.Generator | None = None,
        scheduler: torch.optim.lr_scheduler.LRScheduler | Callable[[torch.optim.Optimizer], object] | None = None,
        augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
        regularizer: Callable[[], torch.Tensor] | None = None, after_step: Callable[[], object] | None = None,
        eval_every: int = 1,
        progress: bool | str = False) -> History:
    """Train ``model`` with ``optimizer`` for ``epochs`` passes over ``data.x_train`` in minibatches.

    ``scheduler`` (a scheduler, or a function of the optimizer that builds one) steps once per epoch;
    ``regularizer()`` (if given) is added to every minibatch loss; ``after_step()`` runs after every update (e.g. a
    projection or clipping of the weights);
    the test set is evaluated every ``eval_every`` epochs and after the last one. Training stops early, with
    ``History.diverged`` set, when the loss becomes non-finite (a diverging learning rate in a sweep).
    """
    if not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative int; got {epochs!r}")
    if scheduler is not None and not hasattr(scheduler, "step"):
        scheduler = scheduler(optimizer)
    hist = History()
    n = data.x_train.shape[0]
    device = data.x_train.device
    it = range(epochs)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc=progress if isinstance(progress, str) else "epochs", leave=False)
    model.train()
    for epoch in it:
        total = torch.zeros((), device=device)  # summed on the device: one host sync per epoch, not per step
        for idx in batches(n, batch_size, generator, device=device):
            xb, yb = data.x_train[idx], data.y_train[idx]
            if augment is not None:
                xb = augment(xb)
            loss = loss_fn(model(xb), yb)
            if regularizer is not None:
                loss = loss + regularizer()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if after_step is not None:
                after_step()
            total += loss.detach() * idx.numel()
        hist.train_loss.append(float(total) / n)
        if not math.isfinite(hist.train_loss[-1]):
            hist.diverged = True
            break
        if scheduler is not None:
            scheduler.step()
        if (epoch + 1) % eval_every == 0 or epoch + 1 == epochs:
            tl, te = evaluate(model, data.x_test, data.y_test, loss_fn)
            hist.test_loss.append(tl)
            hist.test_err.append(te)
    return hist

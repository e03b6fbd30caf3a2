"""Fine-tuning a sequence classifier with MeZO, MeZO-SVRG or a first-order baseline, on one clock.

Every method is charged the same way: wall time counts only the training steps (evaluation is paused out of the
clock), and queries count single-sample forward passes (B.7.4).  The trace records the full-batch training loss
(the thesis's "fine-tuning loss") and the test accuracy at regular steps.

This is a step loop, not :func:`effcourse.core.train.fit`: the zeroth-order methods step on loss closures without
``backward``, and the first-order baselines share the same loop on purpose (the same per-step minibatches, the same
clock with evaluation paused, the same step-indexed trace, the model kept in ``eval()`` mode without dropout), so
that the four methods are compared on equal terms.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from .optim import LossAnnealer, MeZO, MeZOSVRG

__all__ = ["Encoded", "FinetuneTrace", "METHODS", "StepCheckpoint", "finetune", "loss_and_accuracy"]

METHODS = ("mezo", "mezo-svrg", "fo-sgd", "fo-adam")


@dataclass
class Encoded:
    """A tokenised task on a device: ``x_*`` are dicts of ``input_ids`` / ``attention_mask``."""

    x_train: dict[str, torch.Tensor]
    y_train: torch.Tensor
    x_test: dict[str, torch.Tensor]
    y_test: torch.Tensor

    @property
    def n(self) -> int:
        return int(self.y_train.shape[0])


def _rows(x: dict[str, torch.Tensor], idx: torch.Tensor | None) -> dict[str, torch.Tensor]:
    return x if idx is None else {k: v[idx] for k, v in x.items()}


def _loss(model: nn.Module, x: dict[str, torch.Tensor], y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(model(**x).logits.float(), y)


@torch.no_grad()
def loss_and_accuracy(model: nn.Module, x: dict[str, torch.Tensor], y: torch.Tensor,
                      chunk: int = 256) -> tuple[float, float]:
    """``(mean loss, accuracy)`` over a split, in chunks."""
    tot, correct = 0.0, 0
    for s in range(0, y.shape[0], chunk):
        xi = {k: v[s:s + chunk] for k, v in x.items()}
        logits = model(**xi).logits.float()
        tot += float(F.cross_entropy(logits, y[s:s + chunk], reduction="sum"))
        correct += int((logits.argmax(-1) == y[s:s + chunk]).sum())
    return tot / y.shape[0], correct / y.shape[0]


@dataclass
class FinetuneTrace:
    """What :func:`finetune` logs every ``eval_every`` steps: steps, queries (single-sample forward passes),
    passes (batched forward calls, a deterministic stand-in for time on hardware that runs a batch at once),
    training seconds, the full-batch training loss and the test accuracy."""

    method: str
    steps: list[int] = field(default_factory=list)
    queries: list[int] = field(default_factory=list)
    passes: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)

    def best_loss(self) -> tuple[float, float]:
        """``(lowest training loss, seconds when first reached)``."""
        i = min(range(len(self.train_loss)), key=lambda j: self.train_loss[j])
        return self.train_loss[i], self.seconds[i]

    def time_to(self, loss: float) -> float:
        """Seconds until the training loss first is <= ``loss`` (``inf`` if never)."""
        for s, v in zip(self.seconds, self.train_loss):
            if v <= loss:
                return s
        return float("inf")

    def cost_to(self, loss: float, unit: str = "passes") -> float:
        """``unit`` (``"passes"``, ``"queries"``, ``"seconds"`` or ``"steps"``) spent until the training loss first
        is <= ``loss`` (``inf`` if never)."""
        if unit not in ("passes", "queries", "seconds", "steps"):
            raise ValueError(f"unit must be 'passes', 'queries', 'seconds' or 'steps'; got {unit!r}")
        for c, v in zip(getattr(self, unit), self.train_loss):
            if v <= loss:
                return float(c)
        return float("inf")


class StepCheckpoint(Protocol):
    """Where a step loop saves its state every ``every`` steps and resumes from (e.g. a sweep run's context):
    ``save(step, **state)`` writes it, ``load()`` returns ``(step, state)`` or ``None`` when there is none."""

    every: int

    def save(self, step: int, **state: Any) -> None: ...

    def load(self) -> tuple[int, dict[str, Any]] | None: ...


def finetune(model: nn.Module, params: list[nn.Parameter], data: Encoded, method: str, steps: int,
             batch_size: int, lr: float = 1e-3, mu: float = 1e-3, lr_full: float = 1e-3, lr_mini: float = 1e-4,
             q: int = 2, anchor_size: int | None = None, anneal_window: int | None = None, eval_every: int = 10,
             seed: int = 0, progress: bool = False, checkpoint: StepCheckpoint | None = None) -> FinetuneTrace:
    """Train ``params`` of ``model`` in place with ``method`` (one of :data:`METHODS`) for ``steps`` steps.

    Each step draws ``batch_size`` distinct training rows.  ``lr`` is MeZO's (Def. 3) and the first-order
    baselines' rate; ``lr_full`` / ``lr_mini`` are MeZO-SVRG's ``eta_1`` / ``eta_2`` (Alg. 3) with an anchor every
    ``q`` steps on the full batch or ``anchor_size`` rows (Remark 10); ``anneal_window`` turns on Alg. 6.

    ``checkpoint`` saves the trained tensors, the optimizer (MeZO-SVRG's anchor, stored ``g`` and its seed stream),
    Alg. 6's losses, the minibatch generator, the trace and the counters every ``checkpoint.every`` steps and at
    the end; a run started again with the same arguments resumes from the last save and continues bit for bit
    (only the wall-clock ``seconds`` differ).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    if steps < 1 or batch_size < 1 or eval_every < 1:
        raise ValueError(f"steps, batch_size and eval_every must be >= 1; got {steps}, {batch_size}, {eval_every}")
    gen = torch.Generator().manual_seed(seed)
    n = data.n
    b = min(batch_size, n)
    dev = data.y_train.device
    if method == "mezo":
        opt = MeZO(params, lr=lr, mu=mu, seed=seed)
    elif method == "mezo-svrg":
        opt = MeZOSVRG(params, lr_full=lr_full, lr_mini=lr_mini, mu=mu, q=q, seed=seed)
    elif method == "fo-sgd":
        opt = torch.optim.SGD(params, lr=lr)
    else:
        opt = torch.optim.Adam(params, lr=lr)
    annealer = LossAnnealer(opt, anneal_window) if anneal_window else None
    tr = FinetuneTrace(method)
    clock, queries, passes = 0.0, 0, 0

    def log(t):
        loss, _ = loss_and_accuracy(model, data.x_train, data.y_train)
        _, acc = loss_and_accuracy(model, data.x_test, data.y_test)
        tr.steps.append(t)
        tr.queries.append(queries)
        tr.passes.append(passes)
        tr.seconds.append(clock)
        tr.train_loss.append(loss)
        tr.test_acc.append(acc)

    start = 0
    if checkpoint is not None and not (isinstance(checkpoint.every, int) and checkpoint.every >= 1):
        raise ValueError(f"checkpoint.every must be a positive int; got {checkpoint.every!r}")
    saved = checkpoint.load() if checkpoint is not None else None
    if saved is None:
        log(0)
    else:  # resume: everything that the remaining steps depend on comes back
        start, st = saved
        with torch.no_grad():
            for p, v in zip(params, st["params"]):
                p.copy_(v)
        opt.load_state_dict(st["optimizer"])
        gen.set_state(st["generator"])
        if annealer is not None:
            annealer.load_state_dict(st["annealer"])
        tr = FinetuneTrace(**st["trace"])
        clock, queries, passes = st["clock"], st["queries"], st["passes"]
    it = range(start, steps)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc=method, leave=False, initial=start, total=steps)
    for t in it:
        idx = torch.randperm(n, generator=gen)[:b].to(dev)
        xb, yb = _rows(data.x_train, idx), data.y_train[idx]
        t0 = time.perf_counter()
        if method in ("fo-sgd", "fo-adam"):
            opt.zero_grad(set_to_none=True)
            with torch.enable_grad():
                loss = _loss(model, xb, yb)
                loss.backward()
            opt.step()
            queries, passes = queries + b, passes + 1  # and one backward pass
            lval = float(loss.detach())
        elif method == "mezo":
            lval = opt.step(lambda xb=xb, yb=yb: _loss(model, xb, yb))
            queries += 2 * b
        else:
            if t % q == 0:
                if anchor_size is None or anchor_size >= n:
                    aidx, na = None, n
                else:
                    aidx, na = torch.randperm(n, generator=gen)[:anchor_size].to(dev), anchor_size
                xa = _rows(data.x_train, aidx)
                ya = data.y_train if aidx is None else data.y_train[aidx]
                lval = opt.step(lambda xb=xb, yb=yb: _loss(model, xb, yb), lambda xa=xa, ya=ya: _loss(model, xa, ya))
                queries += 2 * na
            else:
                lval = opt.step(lambda xb=xb, yb=yb: _loss(model, xb, yb))
                queries += 4 * b
        if method in ("mezo", "mezo-svrg"):
            passes = opt.forward_calls
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        clock += time.perf_counter() - t0
        if annealer is not None and not (method == "mezo-svrg" and t % q == 0):
            annealer.observe(lval)
        if (t + 1) % eval_every == 0 or t + 1 == steps:
            log(t + 1)
        if checkpoint is not None and ((t + 1) % checkpoint.every == 0 or t + 1 == steps):
            checkpoint.save(t + 1, params=[p.detach().clone() for p in params], optimizer=opt.state_dict(),
                            generator=gen.get_state(),
                            annealer=annealer.state_dict() if annealer is not None else None, trace=asdict(tr),
                            clock=clock, queries=queries, passes=passes)
    return tr

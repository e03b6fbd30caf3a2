"""Meta-training a parameterized optimizer over a family of tasks: Algorithm 7 (Gautam 2024, 4.3).

``Opt`` is any module with ``forward(theta, grad, state) -> (theta_next, state_next)`` and ``init_state(theta)``
(the DCO optimizers of :mod:`effcourse.dco.layers`); the inner problems are a batched
:class:`effcourse.dco.tasks.Tasks`.
Each meta-step unrolls T inner steps (4.7) on a minibatch of tasks, averages the validation losses into
``l_total`` (4.9)-(4.10) and takes one MetaOpt step on ``phi`` (4.11).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from .tasks import Tasks

__all__ = ["MetaCheckpoint", "MetaResult", "evaluate_optimizer", "load_phi", "meta_step_seconds", "meta_train", "phi",
           "unroll"]

MetaOptFactory = Callable[[list[nn.Parameter]], torch.optim.Optimizer]


def unroll(opt: nn.Module, tasks: Tasks, theta: torch.Tensor, state: torch.Tensor | None, steps: int,
           create_graph: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``Opt_T``: apply ``opt`` ``steps`` times from ``(theta, state)`` on every task at once.

    With ``create_graph`` the inner gradients stay on the graph, so ``d l_total / d phi`` sees that ``G^(t)``
    depends on ``phi`` through ``theta^(t)`` for t > 1 (second-order terms).  For T = 1 from a fixed start,
    ``G^(1)`` does not depend on ``phi`` and first-order autograd is exact.
    """
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"steps (T) must be a non-negative int; got {steps!r}")
    for _ in range(steps):
        g = tasks.grad(theta, create_graph=create_graph)
        theta, state = opt(theta, g, state)
    return theta, state


class MetaCheckpoint(Protocol):
    """Where a long loop saves its state and resumes from (a sweep's checkpoint, :mod:`effcourse.dco.sweep`).

    ``load()`` returns the state saved last (``None`` if there is none); ``save(step, state)`` replaces it;
    ``every`` is the number of meta-steps between two saves of :func:`meta_train`.
    """

    every: int

    def load(self) -> Mapping[str, Any] | None: ...

    def save(self, step: int, state: Mapping[str, Any]) -> None: ...


def phi(opt: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of ``opt``'s meta-parameters by name: its parameters only, not the buffers of a cvxpylayers layer,
    which the layer builds again from the program on first use."""
    return {name: q.detach().clone() for name, q in opt.named_parameters()}


def load_phi(opt: nn.Module, values: Mapping[str, torch.Tensor]) -> None:
    """Set ``opt``'s meta-parameters to ``values`` (as returned by :func:`phi`); every parameter must be there."""
    params = dict(opt.named_parameters())
    if set(values) != set(params):
        raise KeyError(f"values must hold the meta-parameters {sorted(params)}; got {sorted(values)}")
    with torch.no_grad():
        for name, q in params.items():
            q.copy_(values[name])


@dataclass
class MetaResult:
    """What :func:`meta_train` returns: ``l_total`` per meta-step, and the inner state it ended with."""

    losses: list[float] = field(default_factory=list)
    theta: torch.Tensor | None = None
    state: torch.Tensor | None = None


def meta_train(opt: nn.Module, tasks: Tasks, *, horizon: int = 1, epochs: int = 20, task_batch: int | None = None,
               persistent: bool = False, meta_optimizer: MetaOptFactory | None = None,
               theta0: torch.Tensor | None = None, generator: torch.Generator | None = None,
               callback: Callable[[int, nn.Module], None] | None = None,
               progress: bool | str = False, checkpoint: MetaCheckpoint | None = None) -> MetaResult:
    """Algorithm 7: meta-train ``opt``'s parameters on ``tasks``; returns the history of ``l_total``.

    * ``horizon`` is T; ``epochs`` is M.  With ``task_batch=None`` an epoch is one full-batch meta-step (as
      printed); otherwise each epoch visits the tasks in random minibatches of ``task_batch`` (Remark 14).
    * ``meta_optimizer`` builds MetaOpt from the parameters; default RMSProp with PyTorch's defaults (lr 1e-2),
      as in the thesis's experiments.
    * ``persistent=False`` restarts every task from ``theta^(1)`` in every epoch (Alg. 7 as printed, the setting
      of Theorem 6); ``persistent=True`` carries ``theta^(T+1)`` and the optimizer state over to the next epoch,
      so successive meta-steps see the later parts of each task's trajectory (truncated unrolling).
    * ``callback(k, opt)`` runs after meta-step k (k = 1, 2, ...), e.g. to record the distance to a known optimum.
    * ``checkpoint`` (:class:`MetaCheckpoint`) is restored before the first epoch, if it holds a state, and saved
      every ``checkpoint.every`` epochs and after the last: ``phi``, MetaOpt's state, every task's ``theta`` and
      ``S``, the task-order generator and ``l_total`` so far, so that a killed run continues exactly where it
      stopped (a resumed run does not call ``callback`` for the meta-steps it restored).
    """
    if not isinstance(horizon, int) or horizon < 1:
        raise ValueError(f"horizon (T) must be a positive int; got {horizon!r}")
    if not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs (M) must be a non-negative int; got {epochs!r}")
    n = tasks.n_tasks
    if task_batch is not None and not (isinstance(task_batch, int) and 1 <= task_batch <= n):
        raise ValueError(f"task_batch must be None or an int in [1, {n}]; got {task_batch!r}")
    params = [q for q in opt.parameters() if q.requires_grad]
    if not params:
        raise ValueError("opt has no trainable meta-parameters")
    meta = meta_optimizer(params) if meta_optimizer is not None else torch.optim.RMSprop(params, lr=1e-2)
    theta_all = (tasks.init_params() if theta0 is None else theta0).detach().clone()
    if theta_all.shape != (n, tasks.p):
        raise ValueError(f"theta0 must have shape ({n}, {tasks.p}); got {tuple(theta_all.shape)}")
    state0 = opt.init_state(theta_all)
    state_all = None if state0 is None else state0.detach().clone()
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    result = MetaResult()
    first = 0
    if checkpoint is not None:
        if not isinstance(checkpoint.every, int) or checkpoint.every < 1:
            raise ValueError(f"checkpoint.every must be a positive int; got {checkpoint.every!r}")
        saved = checkpoint.load()
        if saved is not None:
            load_phi(opt, saved["phi"])
            meta.load_state_dict(saved["meta_opt"])
            # a checkpoint is read onto the CPU; the tasks may live elsewhere
            theta_all = saved["theta"].to(theta_all.device)
            state_all = None if saved["state"] is None else saved["state"].to(theta_all.device)
            gen.set_state(saved["generator"])
            result.losses, first = list(saved["losses"]), int(saved["epoch"])
    it = range(first, epochs)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc=progress if isinstance(progress, str) else "meta-train", leave=False)
    for epoch in it:
        order = (torch.arange(n) if task_batch is None
                 else torch.randperm(n, generator=gen))
        step = n if task_batch is None else task_batch
        for start in range(0, n, step):
            idx = order[start:start + step].to(theta_all.device)
            sub = tasks if task_batch is None else tasks.subset(idx)
            theta = theta_all[idx]
            state = None if state_all is None else state_all[idx]
            theta_T, state_T = unroll(opt, sub, theta, state, horizon, create_graph=horizon > 1)
            l_total = sub.val_loss(theta_T).mean()
            meta.zero_grad(set_to_none=True)
            l_total.backward()
            meta.step()
            result.losses.append(float(l_total.detach()))
            if callback is not None:
                callback(len(result.losses), opt)
            if persistent:
                theta_all[idx] = theta_T.detach()
                if state_all is not None:
                    state_all[idx] = state_T.detach()
        if checkpoint is not None and ((epoch + 1) % checkpoint.every == 0 or epoch + 1 == epochs):
            checkpoint.save(epoch + 1, {"epoch": epoch + 1, "phi": phi(opt), "meta_opt": meta.state_dict(),
                                        "theta": theta_all, "state": state_all, "generator": gen.get_state(),
                                        "losses": list(result.losses)})
    result.theta, result.state = theta_all, state_all
    return result


@torch.no_grad()
def evaluate_optimizer(opt: nn.Module, tasks: Tasks, steps: int, theta0: torch.Tensor | None = None
                       ) -> torch.Tensor:
    """The learned update rule at test time: mean validation loss over ``tasks`` after 0..steps steps of ``opt``
    from a fresh start (``theta0``, else ``tasks.init_params()``, and ``opt.init_state``); shape ``(steps+1,)``.

    This is how Figures 4.1-4.3 score a meta-trained ``phi`` on held-out tasks; no meta-parameter changes.
    """
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"steps must be a non-negative int; got {steps!r}")
    theta = (tasks.init_params() if theta0 is None else theta0).detach().clone()
    state = opt.init_state(theta)
    curve = torch.empty(steps + 1, dtype=theta.dtype)
    curve[0] = tasks.val_loss(theta).mean()
    for t in range(steps):
        theta, state = unroll(opt, tasks, theta, state, 1)
        curve[t + 1] = tasks.val_loss(theta).mean()
    return curve


def meta_step_seconds(opts: dict[str, nn.Module], tasks: Tasks, repeats: int = 3) -> dict[str, list[float]]:
    """Wall-clock seconds of one full-batch meta-step (T = 1) for each optimizer, repeats interleaved.

    Each optimizer first takes one untimed step (it builds a cvxpylayers layer on first use); then the repeats
    alternate between optimizers so that a slow phase of a shared machine hits all of them alike.
    """
    import time

    if not opts:
        raise ValueError("opts must name at least one optimizer")
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive int; got {repeats!r}")
    for opt in opts.values():
        meta_train(opt, tasks, epochs=1)
    out: dict[str, list[float]] = {k: [] for k in opts}
    for _ in range(repeats):
        for name, opt in opts.items():
            t0 = time.perf_counter()
            meta_train(opt, tasks, epochs=1)
            out[name].append(time.perf_counter() - t0)
    return out

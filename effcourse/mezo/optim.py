"""Zeroth-order optimizers for any ``nn.Module``: MeZO, MeZO-SVRG (Alg. 3), naive ZO-SVRG (Alg. 4), Alg. 6.

All of them only call loss closures (forward passes, under ``torch.no_grad``); none calls ``backward``.  They
work on full or partial parameter sets (pass only the tensors to train), in fp32 or bf16, on CPU or CUDA.

Query accounting (the thesis's tables disagree, B.7.4): a *query* is one forward pass of one sample.  A MeZO step
on a batch of ``b`` costs ``2b``; a MeZO-SVRG full-batch step ``2n``, a minibatch step ``4b``.  The optimizers count
closure calls in ``optimizer.forward_calls``; :class:`QueryCounter` turns calls into queries.

Storage efficiency (Sec. 3.3): every change these optimizers make to the parameters is ``theta += c * z(seed)``.
A :class:`Trajectory` logs those (seed, c) operations, perturb/restore cycles included, so :func:`rebuild` replays
the exact floating-point arithmetic from the start point without a single forward pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch.optim import Optimizer

from .spsa import DirectionStreams, check_distribution, direction, direction_chunks, projected_gradient, tensor_list

__all__ = ["LossAnnealer", "MeZO", "MeZOSVRG", "QueryCounter", "Trajectory", "ZOSVRG", "rebuild"]

Closure = Callable[[], torch.Tensor]


@dataclass
class Trajectory:
    """The operations ``theta += coef * z(seed)`` applied to the parameters, in order.

    ``ops`` holds ``(seed, coef, prescale)`` triples; a perturb/restore cycle is logged as its three scalings.  A
    MeZO step adds 4 of them (a seed and two scalars, 24 bytes): a whole run is kilobytes, whatever the model.
    """

    ops: list[tuple[int, float, float]] = field(default_factory=list)
    step_ends: list[int] = field(default_factory=list)

    def add(self, seed: int, coef: float, prescale: float = 1.0) -> None:
        """Log ``theta += coef * (prescale * z(seed))`` (``prescale`` mirrors a stored ``g = pg z``)."""
        self.ops.append((int(seed), float(coef), float(prescale)))

    def end_step(self) -> None:
        self.step_ends.append(len(self.ops))

    def nbytes(self) -> int:
        return 24 * len(self.ops)


@torch.no_grad()
def rebuild(params: Iterable[torch.Tensor], trajectory: Trajectory, steps: int | None = None,
            distribution: str = "gaussian") -> None:
    """Replay ``trajectory`` on ``params`` (in place, from the start point): the checkpoint after ``steps`` steps.

    The same tensor operations in the same order give bit-identical weights on the same device and dtype.
    """
    params = tensor_list(params)
    if steps is None:
        n_ops = len(trajectory.ops)
    else:
        if not 0 <= steps <= len(trajectory.step_ends):
            raise ValueError(f"steps must be in [0, {len(trajectory.step_ends)}]; got {steps}")
        n_ops = trajectory.step_ends[steps - 1] if steps else 0
    for seed, coef, prescale in trajectory.ops[:n_ops]:
        for piece, z in direction_chunks(params, DirectionStreams(seed), distribution):
            piece.add_(z.mul_(prescale), alpha=coef)


class QueryCounter:
    """Counts single-sample forward passes: wrap a closure with the number of samples it evaluates."""

    def __init__(self) -> None:
        self.queries = 0

    def wrap(self, closure: Closure, batch_size: int) -> Closure:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; got {batch_size}")

        def counted():
            self.queries += batch_size
            return closure()

        return counted


class _ZOBase(Optimizer):
    """Shared machinery: per-step seeds from a master seed, the seeded update, the trajectory log."""

    def __init__(self, params, defaults: dict, seed: int, distribution: str, trajectory: Trajectory | None):
        check_distribution(distribution)
        if not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative int; got {seed!r}")
        super().__init__(params, defaults)
        self.distribution = distribution
        self.trajectory = trajectory
        self._seeds = torch.Generator().manual_seed(seed)
        self.forward_calls = 0
        self.steps = 0

    def _params(self) -> list[torch.Tensor]:
        return [p for g in self.param_groups for p in g["params"]]

    def _next_seed(self) -> int:
        return int(torch.randint(0, 2**62, (1,), generator=self._seeds))

    def _extra_state(self) -> dict:
        return {"seeds": self._seeds.get_state(), "forward_calls": self.forward_calls, "steps": self.steps}

    def _load_extra_state(self, extra: dict) -> None:
        self._seeds.set_state(extra["seeds"])
        self.forward_calls, self.steps = int(extra["forward_calls"]), int(extra["steps"])

    def state_dict(self) -> dict:  # type: ignore[override]
        """``torch.optim.Optimizer``'s state plus what a zeroth-order run needs to resume bit for bit: the seed
        stream of the directions, the step and forward-call counts (and MeZO-SVRG's anchor seed and scalar)."""
        sd = super().state_dict()
        sd["zo"] = self._extra_state()
        return sd

    def load_state_dict(self, state_dict: dict) -> None:  # type: ignore[override]
        state_dict = dict(state_dict)
        extra = state_dict.pop("zo", None)
        if extra is None:
            raise KeyError("state_dict holds no 'zo' entry: it was not saved by a zeroth-order optimizer")
        super().load_state_dict(state_dict)
        self._load_extra_state(extra)

    def _counted(self, closure: Closure) -> Closure:
        def call():
            self.forward_calls += 1
            return closure()

        return call

    def _pg(self, closure: Closure, seed: int, mu: float) -> tuple[float, float, float]:
        pg, lp, lm = projected_gradient(self._counted(closure), self._params(), seed, mu, self.distribution)
        if self.trajectory is not None:
            for c in (mu, -2.0 * mu, mu):
                self.trajectory.add(seed, c)
        return pg, lp, lm

    @torch.no_grad()
    def _axpy(self, seed: int, coef_key: str, scalar: float) -> None:
        """``theta -= group[coef_key] * scalar * z(seed)`` per parameter group, one regenerated ``z``."""
        # perturb_ walks the groups' tensors in order with one stream per device: regenerate the same way here.
        streams = DirectionStreams(seed)
        for g in self.param_groups:
            coef = -float(g[coef_key]) * scalar
            for piece, z in direction_chunks(g["params"], streams, self.distribution):
                piece.add_(z, alpha=coef)
        if self.trajectory is not None:
            if len({float(g[coef_key]) for g in self.param_groups}) > 1:
                raise ValueError("a Trajectory needs one learning rate for all parameter groups")
            self.trajectory.add(seed, -float(self.param_groups[0][coef_key]) * scalar)


class MeZO(_ZOBase):
    """ZO-SGD with the shared-direction estimator and in-place seeded perturbation (Def. 3 and Alg. 5).

    ``step(closure)`` evaluates ``closure`` twice (at ``theta +- mu z``) and returns the loss at ``theta + mu z``.
    """

    def __init__(self, params, lr: float, mu: float = 1e-3, seed: int = 0, distribution: str = "gaussian",
                 trajectory: Trajectory | None = None):
        if not lr > 0:
            raise ValueError(f"lr must be > 0; got {lr!r}")
        if not mu > 0:
            raise ValueError(f"mu must be > 0; got {mu!r}")
        super().__init__(params, dict(lr=lr, mu=mu), seed, distribution, trajectory)
        self.last_pg = 0.0

    @torch.no_grad()
    def step(self, closure: Closure) -> float:  # type: ignore[override]
        seed = self._next_seed()
        pg, lp, lm = self._pg(closure, seed, self.param_groups[0]["mu"])
        self._axpy(seed, "lr", pg)
        self.last_pg = pg
        self.steps += 1
        if self.trajectory is not None:
            self.trajectory.end_step()
        return 0.5 * (lp + lm)


class MeZOSVRG(_ZOBase):
    """Memory-efficient ZO-SVRG (Alg. 3): a full-batch (or large-batch) anchor every ``q`` steps.

    ``step(minibatch_closure, anchor_closure)``: when ``t mod q == 0`` the anchor closure (full batch, or a large
    batch as in Remark 10) gives ``g = pg_f z_f``, the anchor copy ``theta_bar <- theta`` is taken and
    ``theta -= lr_full g``; otherwise ``theta -= lr_mini [grad_I(theta) - grad_I(theta_bar) + g]`` in place, with the
    two minibatch estimates along one shared ``z`` (``shared_direction=True``, what Lemmas 1-2 assume) or two
    independent ones (the public implementation).

    ``anchor_estimator="store"`` keeps ``g`` as a parameter-sized buffer (the thesis's 3d); ``"regenerate"`` keeps
    only its seed and scalar and regenerates ``z_f`` when needed -- the same numbers Remark 8's recomputation would
    give (the forward passes are deterministic), without its forward passes (2d).

    ``theta_bar`` is a real copy (its own storage), and the minibatch estimate at ``theta_bar`` is taken by pointing
    each parameter at the anchor storage, perturbing it in place and pointing back: no third parameter copy.
    """

    def __init__(self, params, lr_full: float, lr_mini: float, mu: float = 1e-3, q: int = 2,
                 shared_direction: bool = True, anchor_estimator: str = "store", seed: int = 0,
                 distribution: str = "gaussian", trajectory: Trajectory | None = None):
        for name, v in (("lr_full", lr_full), ("lr_mini", lr_mini), ("mu", mu)):
            if not v > 0:
                raise ValueError(f"{name} must be > 0; got {v!r}")
        if not isinstance(q, int) or q < 1:
            raise ValueError(f"q must be an int >= 1; got {q!r}")
        if anchor_estimator not in ("store", "regenerate"):
            raise ValueError(f"anchor_estimator must be 'store' or 'regenerate'; got {anchor_estimator!r}")
        super().__init__(params, dict(lr_full=lr_full, lr_mini=lr_mini, mu=mu), seed, distribution, trajectory)
        self.q, self.shared_direction, self.anchor_estimator = q, shared_direction, anchor_estimator
        self._g_seed: int | None = None
        self._g_pg = 0.0

    def _extra_state(self) -> dict:
        return {**super()._extra_state(), "g_seed": self._g_seed, "g_pg": self._g_pg}

    def _load_extra_state(self, extra: dict) -> None:
        super()._load_extra_state(extra)
        self._g_seed, self._g_pg = extra["g_seed"], float(extra["g_pg"])

    def anchor(self) -> list[torch.Tensor]:
        """The anchor copies ``theta_bar`` (empty before the first step)."""
        return [self.state[p]["anchor"] for p in self._params() if "anchor" in self.state[p]]

    @torch.no_grad()
    def _take_anchor(self, seed: int, pg: float) -> None:
        for p in self._params():
            st = self.state[p]
            if "anchor" not in st:
                st["anchor"] = torch.empty_like(p, memory_format=torch.preserve_format)
            st["anchor"].copy_(p)
        self._g_seed, self._g_pg = seed, pg
        if self.anchor_estimator == "store":
            for p in self._params():
                if "g" not in self.state[p]:
                    self.state[p]["g"] = torch.empty_like(p, memory_format=torch.preserve_format)
            gs = [self.state[p]["g"] for p in self._params()]
            for piece, z in direction_chunks(gs, DirectionStreams(seed), self.distribution):
                piece.copy_(z).mul_(pg)

    @torch.no_grad()
    def _pg_at_anchor(self, closure: Closure, seed: int, mu: float) -> float:
        params = self._params()
        for p in params:  # swap storages: the module now computes with theta_bar
            st = self.state[p]
            st["anchor"], p.data = p.data, st["anchor"]
        try:
            pg, _, _ = projected_gradient(self._counted(closure), params, seed, mu, self.distribution)
        finally:
            for p in params:
                st = self.state[p]
                st["anchor"], p.data = p.data, st["anchor"]
        return pg

    @torch.no_grad()
    def step(self, minibatch_closure: Closure, anchor_closure: Closure | None = None) -> float:  # type: ignore[override]
        mu = self.param_groups[0]["mu"]
        if self.steps % self.q == 0:
            if anchor_closure is None:
                raise ValueError("anchor_closure (full or large batch) is required at every q-th step")
            seed = self._next_seed()
            pg, lp, lm = self._pg(anchor_closure, seed, mu)
            self._take_anchor(seed, pg)
            self._axpy(seed, "lr_full", pg)  # line 3: a ZO-GD step with lr_full
        else:
            s1 = self._next_seed()
            pg1, lp, lm = self._pg(minibatch_closure, s1, mu)
            s2 = s1 if self.shared_direction else self._next_seed()
            pg2 = self._pg_at_anchor(minibatch_closure, s2, mu)
            if self.shared_direction:  # lines 5-6 along one z: a single regeneration
                self._axpy(s1, "lr_mini", pg1 - pg2)
            else:
                self._axpy(s1, "lr_mini", pg1)
                self._axpy(s2, "lr_mini", -pg2)
            if self.anchor_estimator == "store":  # line 7 with the stored g
                for g in self.param_groups:
                    for p in g["params"]:
                        p.add_(self.state[p]["g"], alpha=-float(g["lr_mini"]))
                if self.trajectory is not None:
                    self.trajectory.add(self._g_seed, -float(self.param_groups[0]["lr_mini"]), self._g_pg)
            else:
                self._axpy(self._g_seed, "lr_mini", self._g_pg)
        self.steps += 1
        if self.trajectory is not None:
            self.trajectory.end_step()
        return 0.5 * (lp + lm)


class ZOSVRG(_ZOBase):
    """Naive ZO-SVRG (Alg. 4, Liu et al. 2018) with per-sample directions (3.3)-(3.4): the thesis's baseline.

    ``step(sample_closure, minibatch, full)``: ``sample_closure(i)`` is the loss of sample ``i``; the per-sample
    estimators are accumulated sequentially in place (the slow, memory-lean strategy of Sec. 3.3).  It keeps
    ``theta_bar``, ``g``, ``g_hat`` and ``g_bar``: five parameter-sized tensors with ``theta``.
    """

    def __init__(self, params, lr: float, mu: float = 1e-3, q: int = 2, seed: int = 0,
                 distribution: str = "gaussian"):
        if not lr > 0 or not mu > 0:
            raise ValueError(f"lr and mu must be > 0; got lr={lr!r}, mu={mu!r}")
        if not isinstance(q, int) or q < 1:
            raise ValueError(f"q must be an int >= 1; got {q!r}")
        super().__init__(params, dict(lr=lr, mu=mu), seed, distribution, None)
        self.q = q

    def _estimate(self, sample_closure, indices, out: list[torch.Tensor], seeds: list[int]) -> None:
        mu = self.param_groups[0]["mu"]
        for o in out:
            o.zero_()
        for i, seed in zip(indices, seeds):
            pg, _, _ = self._pg(lambda i=i: sample_closure(int(i)), seed, mu)
            for o, z in zip(out, direction(self._params(), seed, self.distribution)):
                o.add_(z, alpha=pg / len(indices))

    @torch.no_grad()
    def step(self, sample_closure: Callable[[int], torch.Tensor], minibatch, full) -> None:  # type: ignore[override]
        params = self._params()
        for p in params:
            st = self.state[p]
            if "anchor" not in st:
                for k in ("anchor", "g", "g_hat", "g_bar"):
                    st[k] = torch.zeros_like(p)
        if self.steps % self.q == 0:
            full = list(full)
            self._estimate(sample_closure, full, [self.state[p]["g"] for p in params],
                           [self._next_seed() for _ in full])
            for p in params:
                self.state[p]["anchor"].copy_(p)
        minibatch = list(minibatch)
        seeds = [self._next_seed() for _ in minibatch]  # the same z_i at theta and theta_bar: a control variate
        self._estimate(sample_closure, minibatch, [self.state[p]["g_hat"] for p in params], seeds)
        for p in params:
            st = self.state[p]
            st["anchor"], p.data = p.data, st["anchor"]
        try:
            self._estimate(sample_closure, minibatch, [self.state[p]["g_bar"] for p in params], seeds)
        finally:
            for p in params:
                st = self.state[p]
                st["anchor"], p.data = p.data, st["anchor"]
        lr = self.param_groups[0]["lr"]
        for p in params:
            st = self.state[p]
            p.add_(st["g_hat"] - st["g_bar"] + st["g"], alpha=-lr)
        self.steps += 1


class LossAnnealer:
    """Alg. 6: divide the learning rates by ``alpha`` when the mean of the last ``w`` losses exceeds ``kappa``
    times the mean of the ``w`` before them.

    The thesis leaves open which losses and how often; here (as in the public code) minibatch losses are fed to
    :meth:`observe` after every step and the rule fires at most once per ``w`` observations (an epoch).
    """

    def __init__(self, optimizer: Optimizer, window: int, kappa: float = 1.05, alpha: float = 5.0,
                 keys: tuple[str, ...] = ("lr_full", "lr_mini", "lr")):
        if window < 1:
            raise ValueError(f"window must be >= 1; got {window}")
        if not kappa > 0 or not alpha > 1:
            raise ValueError(f"kappa must be > 0 and alpha > 1; got kappa={kappa}, alpha={alpha}")
        self.opt, self.w, self.kappa, self.alpha = optimizer, window, kappa, alpha
        self.keys = keys
        self.losses: list[float] = []
        self.annealed_at: list[int] = []

    def state_dict(self) -> dict:
        return {"losses": list(self.losses), "annealed_at": list(self.annealed_at)}

    def load_state_dict(self, state: dict) -> None:
        self.losses, self.annealed_at = list(state["losses"]), list(state["annealed_at"])

    def observe(self, loss: float) -> bool:
        """Record one loss; at each epoch boundary apply the rule.  Returns whether the rates were annealed."""
        self.losses.append(float(loss))
        n, w = len(self.losses), self.w
        if n % w or n < 2 * w:
            return False
        m1 = sum(self.losses[-w:]) / w
        m2 = sum(self.losses[-2 * w:-w]) / w
        if m1 / m2 > self.kappa:
            for g in self.opt.param_groups:
                for k in self.keys:
                    if k in g:
                        g[k] = g[k] / self.alpha
            self.annealed_at.append(n)
            return True
        return False

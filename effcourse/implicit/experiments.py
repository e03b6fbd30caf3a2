"""The experiments of chapter 1 (Gautam 2024, ch. 2): random checks of Theorems 2-3 and the two comparisons of
sequential blockwise training (Algorithm 1) with end-to-end projected-gradient training ((2.4)).

The thesis names 1-D function interpolation and MNIST / Fashion-MNIST but gives no protocol; this one is the
book's (see :mod:`effcourse.implicit.config`).  Both comparisons run each method on the same seeds and read the
end-to-end learning curve at the sequential method's training FLOPs ("equal compute") and at ``e2e_flop_factor``
times them.  FLOPs are counted (matrix products by ``torch.utils.flop_counter.FlopCounterMode``, least squares
analytically), so budgets and outcomes do not depend on the machine; wall time is recorded and shown only.
The sweeps return plain records; the tables and figures of the chapter are built from them by the ``*_rows``
and ``plot_*`` functions here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.data import Split
from .blockwise import SequentialResult, train_sequential
from .model import E2EHistory, ImplicitModel, append_ones, train_projected
from .selfloops import (
    explicit_block,
    implicit_block,
    nonstrict_to_strict,
    picard_amplification,
    strict_to_nonstrict,
)

__all__ = [
    "TARGETS",
    "CHECKPOINT_STEPS",
    "DigitsRun",
    "DigitsSummary",
    "InterpolationRun",
    "TheoremCheck",
    "accuracy_on",
    "digits_rows",
    "digits_run",
    "digits_summary",
    "digits_sweep",
    "interpolation_ratios",
    "interpolation_rows",
    "interpolation_run",
    "interpolation_sweep",
    "interpolation_task",
    "mse_on",
    "phase_shares",
    "plot_digits",
    "plot_interpolation",
    "ratio_rows",
    "seed_spread",
    "theorem_errors",
    "flops_to_reach",
]

#: The two 1-D targets on ``[-3, 3]``: smooth ``sin 2u + 0.3u`` and non-smooth ``|sin 2u| - 0.2 sign u``.
TARGETS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "smooth": lambda v: torch.sin(2 * v) + 0.3 * v,
    "nonsmooth": lambda v: torch.sin(2 * v).abs() - 0.2 * torch.sign(v),
}


def _check_target(target: str) -> None:
    if target not in TARGETS:
        raise ValueError(f"target must be one of {sorted(TARGETS)}; got {target!r}")


# ------------------------------------------------------------------------------------------------ Theorems 2-3
@dataclass
class TheoremCheck:
    """The random checks of Theorems 2-3 (:func:`theorem_errors`): the largest forward gap, converse residual and
    round-trip gap (each relative to ``1 + max |features|``), and the largest error over its instance's tolerance
    ``max(tol, floor)``, where ``floor = 64 (n_i + 1) eps ||(I - |A_ii|)^{-1}||_inf`` is the rounding level that
    the Picard iteration can reach (:func:`~effcourse.implicit.selfloops.picard_amplification`).  ``floored``
    counts the checks (three per instance) whose floor exceeded ``tol``."""

    forward: float
    converse: float
    round_trip: float
    worst_vs_tol: float
    floored: int
    instances: int
    tol: float

    @property
    def max_error(self) -> float:
        return max(self.forward, self.converse, self.round_trip)

    @property
    def held(self) -> bool:
        return self.worst_vs_tol <= 1.0


def theorem_errors(block: int, instances: int, seed: int, *, samples: int, prev: int, inputs: int,
                   tol: float = 1e-10, dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu"
                   ) -> TheoremCheck:
    """Theorems 2 (``block=1``) and 3 on ``instances`` random ReLU blocks, both directions (see
    :class:`TheoremCheck`).

    Forward: a self-loop block solved by Picard iteration against back-substitution (2.14) through
    :func:`nonstrict_to_strict`.  Converse: explicit features built from random coefficients solve the self-loop
    equation of :func:`strict_to_nonstrict` (``eps`` uniform in (0.2, 1.8)) and are what Picard finds; round
    trip: the coefficients come back.  Errors are relative to ``1 + max |features|`` (a diagonal near 1 makes the
    features large)."""
    for name, v in (("block", block), ("instances", instances), ("samples", samples), ("prev", prev),
                    ("inputs", inputs)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int; got {v!r}")
    if not (isinstance(tol, float) and tol > 0):
        raise ValueError(f"tol must be a positive float; got {tol!r}")
    g = torch.Generator().manual_seed(seed)
    unit = 64 * (block + 1) * torch.finfo(dtype).eps

    def r(*s):
        return torch.randn(*s, generator=g, dtype=dtype).to(device)

    def rel(a, b):
        return float((a - b).abs().max()) / (1.0 + float(b.abs().max()))

    fwd = conv = trip = worst = 0.0
    floored = 0
    for _ in range(instances):
        X_prev = torch.relu(r(samples, prev))
        U = r(samples, inputs)
        diag = (torch.rand(block, generator=g, dtype=dtype) * 1.98 - 0.99).to(device)
        A_ii = torch.triu(r(block, block) * 0.5, diagonal=1) + torch.diag(diag)
        A_prev, B_i = r(block, prev), r(block, inputs)
        X_impl = implicit_block(A_ii, A_prev, B_i, X_prev, U)
        X_expl = explicit_block(*nonstrict_to_strict(A_ii, A_prev, B_i), X_prev, U)
        e_fwd = rel(X_impl, X_expl)
        G_self = torch.triu(r(block, block) * 0.5, diagonal=1)
        G_prev, Lam = r(block, prev), r(block, inputs)
        X_target = explicit_block(G_self, G_prev, Lam, X_prev, U)
        eps = float(torch.rand(1, generator=g)) * 1.6 + 0.2
        A2, P2, B2 = strict_to_nonstrict(G_self, G_prev, Lam, eps)
        rhs = torch.relu(X_target @ A2.t() + X_prev @ P2.t() + U @ B2.t())
        e_conv = max(rel(rhs, X_target), rel(implicit_block(A2, P2, B2, X_prev, U), X_target))
        back = nonstrict_to_strict(A2, P2, B2)
        e_trip = max(rel(x, y) for x, y in zip(back, (G_self, G_prev, Lam)))
        fwd, conv, trip = max(fwd, e_fwd), max(conv, e_conv), max(trip, e_trip)
        for e, A in ((e_fwd, A_ii), (e_conv, A2), (e_trip, A2)):
            t = max(tol, unit * picard_amplification(A))
            floored += t > tol
            worst = max(worst, e / t)
    return TheoremCheck(fwd, conv, trip, worst, floored, instances, tol)


# ------------------------------------------------------------------------------------------------ evaluation
def mse_on(u: torch.Tensor, y: torch.Tensor) -> Callable[[nn.Module], float]:
    """``model -> mean squared error of model(u) against y`` (the interpolation test error)."""
    if u.shape[0] != y.shape[0]:
        raise ValueError(f"u and y must have the same number of rows; got {u.shape[0]} and {y.shape[0]}")

    @torch.no_grad()
    def evaluate(model: nn.Module) -> float:
        return float((model(u) - y).pow(2).mean())

    return evaluate


def accuracy_on(u: torch.Tensor, labels: torch.Tensor) -> Callable[[nn.Module], float]:
    """``model -> fraction of rows of u whose arg-max output equals the label`` (the digits test accuracy)."""
    if labels.dtype != torch.long or labels.dim() != 1 or labels.shape[0] != u.shape[0]:
        raise ValueError(f"labels must be integer class labels of shape ({u.shape[0]},)")

    @torch.no_grad()
    def evaluate(model: nn.Module) -> float:
        return float((model(u).argmax(1) == labels).to(u.dtype).mean())

    return evaluate


def flops_to_reach(hist: E2EHistory, level: float) -> float:
    """Training FLOPs until an end-to-end run's ``eval_fn`` first reaches ``level`` (``inf`` if never)."""
    return next((f for f, a in zip(hist.flops, hist.evals) if a >= level), math.inf)


def _flop_factor(cfg: Mapping) -> float | None:
    f = cfg["e2e_flop_factor"]
    if f is not None and not (isinstance(f, (int, float)) and f > 0):
        raise ValueError(f"e2e_flop_factor must be None (a fixed step budget) or a positive number; got {f!r}")
    return f


def _check_seeds(seeds, name: str = "seeds") -> list[int]:
    seeds = list(seeds)
    if not seeds or len(set(seeds)) != len(seeds) or not all(isinstance(x, int) and x >= 0 for x in seeds):
        raise ValueError(f"{name} must be a non-empty list of distinct ints >= 0 (from run.seeds); got {seeds!r}")
    return seeds


#: Steps between two checkpoints of an end-to-end run in a sweep (rounded to whole epochs): a few seconds of GPU
#: time, so a kill loses little and the checkpoint writes (model and Adam state) stay a small share of the run.
CHECKPOINT_STEPS = 500


def _blocks(ctx: Any | None, name: str) -> Any | None:
    return None if ctx is None else ctx.step_checkpoint(name)


def _epochs(ctx: Any | None, name: str, m: int, batch_size: int | None) -> Any | None:
    """``fit``'s checkpoint every :data:`CHECKPOINT_STEPS` steps, in whole epochs of ``m`` rows."""
    if ctx is None:
        return None
    per_epoch = math.ceil(m / (m if batch_size is None else min(batch_size, m)))
    return ctx.fit_checkpoint(name, every=max(1, CHECKPOINT_STEPS // per_epoch))


# ------------------------------------------------------------------------------------------------ 1-D interpolation
def interpolation_task(target: str, seed: int, n_train: int, n_test: int, dtype: torch.dtype = torch.float64,
                       device: str | torch.device = "cpu"
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(u_train, y_train, u_test, y_test)``: an even training grid on [-3, 3] and uniform random test points
    (drawn from ``seed``), inputs with the constant feature (:func:`append_ones`)."""
    _check_target(target)
    g = torch.Generator().manual_seed(seed)
    u = torch.linspace(-3, 3, n_train, dtype=dtype)[:, None]
    ut = torch.rand(n_test, 1, generator=g, dtype=dtype) * 6 - 3
    f = TARGETS[target]
    return append_ones(u).to(device), f(u).to(device), append_ones(ut).to(device), f(ut).to(device)


@dataclass
class InterpolationRun:
    """One (target, seed) of the interpolation sweep: both sequential solvers, the end-to-end run, test MSEs."""

    seq: SequentialResult       # Algorithm 1 with local search (the method the claims are about)
    seq_test: float
    alt: SequentialResult       # Algorithm 1 with Algorithm 2
    alt_test: float
    e2e_model: ImplicitModel
    hist: E2EHistory
    flop_factor: float | None = None

    @property
    def e2e_equal(self) -> float:
        """End-to-end test MSE at the local-search method's training FLOPs."""
        return self.hist.at_flops(self.seq.flops)

    @property
    def e2e_equal_alt(self) -> float:
        """End-to-end test MSE at Algorithm 2's training FLOPs."""
        return self.hist.at_flops(self.alt.flops)

    @property
    def e2e_long(self) -> float:
        """End-to-end test MSE after ``flop_factor`` times the local-search FLOPs (the last one without it)."""
        return self.hist.at_flops(self.flop_factor * self.seq.flops) if self.flop_factor else self.e2e_final

    @property
    def e2e_final(self) -> float:
        return self.hist.evals[-1]


def interpolation_sweep(cfg: Mapping, seeds: Iterable[int], test_seeds: Iterable[int],
                        dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu"
                        ) -> dict[tuple[str, int], InterpolationRun]:
    """Every target of ``cfg`` (the ``interp_*`` keys) and seed: sequential training with local search and with
    Algorithm 2, and end-to-end training for ``interp_e2e_steps`` steps or ``e2e_flop_factor`` times the
    local-search FLOPs, whichever comes first.  ``seeds[i]`` draws every initialization of replicate ``i`` and
    ``test_seeds[i]`` its test points (the chapter takes both from ``run.seeds``)."""
    _flop_factor(cfg)  # a bad budget fails before any training
    seeds, test_seeds = _check_seeds(seeds), _check_seeds(test_seeds, "test_seeds")
    if len(seeds) != len(test_seeds):
        raise ValueError(f"seeds and test_seeds must have the same length; got {len(seeds)} and {len(test_seeds)}")
    for target in cfg["interp_targets"]:
        _check_target(target)
    return {(target, seed): interpolation_run(cfg, target, seed, test_seed, dtype, device)
            for target in cfg["interp_targets"] for seed, test_seed in zip(seeds, test_seeds)}


def interpolation_run(cfg: Mapping, target: str, seed: int, test_seed: int, dtype: torch.dtype = torch.float64,
                      device: str | torch.device = "cpu", ctx: Any | None = None) -> InterpolationRun:
    """One (target, seed) of :func:`interpolation_sweep`: its three trainings on the same data.

    ``ctx``: a sweep's run context (:class:`effcourse.sweep.RunContext`); each training then checkpoints through it
    (``seq-local``, ``seq-altmin`` after every block, ``e2e`` every :data:`CHECKPOINT_STEPS` steps) and a killed
    run resumes where it stopped (see :mod:`effcourse.implicit.sweep`)."""
    _check_target(target)
    factor = _flop_factor(cfg)
    u_tr, y_tr, u_te, y_te = interpolation_task(target, test_seed, cfg["interp_train"], cfg["interp_test"],
                                                dtype, device)
    evaluate = mse_on(u_te, y_te)
    seq = train_sequential(u_tr, y_tr, cfg["interp_n"], cfg["interp_L"], solver="local",
                           steps=cfg["interp_local_steps"], lr=cfg["interp_local_lr"],
                           generator=torch.Generator().manual_seed(seed), checkpoint=_blocks(ctx, "seq-local"))
    alt = train_sequential(u_tr, y_tr, cfg["interp_n"], cfg["interp_L"], solver="altmin",
                           alternations=cfg["interp_alternations"], steps=cfg["interp_steps"],
                           lr=cfg["interp_lr"], generator=torch.Generator().manual_seed(seed),
                           checkpoint=_blocks(ctx, "seq-altmin"))
    e2e = ImplicitModel(cfg["interp_n"], 2, 1, dtype=dtype, device=device,
                        generator=torch.Generator().manual_seed(seed))
    hist = train_projected(e2e, u_tr, y_tr, lr=cfg["interp_e2e_lr"], kappa=cfg["interp_kappa"],
                           steps=cfg["interp_e2e_steps"], flop_budget=None if factor is None else factor * seq.flops,
                           eval_fn=evaluate, eval_every=cfg["interp_eval_every"],
                           generator=torch.Generator().manual_seed(seed),
                           checkpoint=_epochs(ctx, "e2e", u_tr.shape[0], None))
    return InterpolationRun(seq, evaluate(seq.model), alt, evaluate(alt.model), e2e, hist, factor)


def interpolation_rows(interp: Mapping[tuple[str, int], InterpolationRun], factor: str) -> list[dict[str, str]]:
    """One table row per (target, seed): test MSEs (training GFLOPs; seconds) of every method; ``factor`` names
    the long end-to-end budget in the column title.  Seconds are shown, never compared."""
    return [{"target": t, "seed": str(s),
             "sequential, local search": f"{r.seq_test:.2e} ({r.seq.flops / 1e9:.2f} GF; {r.seq.seconds:.1f} s)",
             "sequential, Alg. 2": f"{r.alt_test:.2e} ({r.alt.flops / 1e9:.2f} GF; {r.alt.seconds:.1f} s)",
             "end to end at the local-search FLOPs": f"{r.e2e_equal:.2e}",
             f"end to end given {factor}": f"{r.e2e_long:.2e}",
             "end to end, last": f"{r.e2e_final:.2e} ({r.hist.steps[-1]} steps, {r.hist.flops[-1] / 1e9:.1f} GF; "
                                 f"{r.hist.seconds[-1]:.1f} s)"}
            for (t, s), r in interp.items()]


_RATIOS = {"equal": ("e2e_equal", "seq_test"), "long": ("e2e_long", "seq_test"), "alt": ("e2e_equal_alt", "alt_test")}


def interpolation_ratios(interp: Mapping[tuple[str, int], InterpolationRun], which: str) -> dict[str, np.ndarray]:
    """Per target, the end-to-end test MSE over the sequential one for every seed (above 1: sequential better).

    ``which``: ``"equal"`` (local search, equal FLOPs), ``"long"`` (local search, end to end given
    ``e2e_flop_factor`` times the FLOPs) or ``"alt"`` (Algorithm 2, equal FLOPs)."""
    if which not in _RATIOS:
        raise ValueError(f"which must be one of {sorted(_RATIOS)}; got {which!r}")
    num, den = _RATIOS[which]
    out: dict[str, list[float]] = {}
    for (t, _), r in interp.items():
        out.setdefault(t, []).append(getattr(r, num) / getattr(r, den))
    return {t: np.array(v) for t, v in out.items()}


def ratio_rows(interp: Mapping[tuple[str, int], InterpolationRun], factor: str) -> list[dict[str, str]]:
    """One table row per target: the three :func:`interpolation_ratios` per seed, each with its median."""
    cols = {"equal": "local search, equal FLOPs", "long": f"local search, end to end given {factor}",
            "alt": "Alg. 2, equal FLOPs"}
    ratios = {w: interpolation_ratios(interp, w) for w in cols}
    fmt = {"equal": ".1f", "long": ".2f", "alt": ".1f"}

    def cell(w: str, t: str) -> str:
        x = ratios[w][t]
        return f"{', '.join(format(v, fmt[w]) for v in x)} ({format(float(np.median(x)), fmt[w])})"

    return [{"target": t, **{c: cell(w, t) for w, c in cols.items()}} for t in ratios["equal"]]


def seed_spread(interp: Mapping[tuple[str, int], InterpolationRun], solver: str) -> dict[str, float]:
    """Per target, the worst seed's test MSE over the best seed's for ``solver`` ``"local"`` or ``"altmin"``."""
    if solver not in ("local", "altmin"):
        raise ValueError(f"solver must be 'local' or 'altmin'; got {solver!r}")
    out: dict[str, list[float]] = {}
    for (t, _), r in interp.items():
        out.setdefault(t, []).append(r.seq_test if solver == "local" else r.alt_test)
    return {t: max(v) / min(v) for t, v in out.items()}


def plot_interpolation(interp: Mapping[tuple[str, int], InterpolationRun], seed: int):
    """Fits of ``seed`` on each target (one panel per target) and test MSE against training FLOPs for all seeds."""
    import matplotlib.pyplot as plt

    targets = list(dict.fromkeys(t for t, _ in interp))
    seeds = list(dict.fromkeys(s for _, s in interp))
    if seed not in seeds:
        raise ValueError(f"seed must be one of the sweep's seeds {seeds}; got {seed!r}")
    fig, axes = plt.subplots(1, len(targets) + 1, figsize=(4 * (len(targets) + 1), 4))
    for ax, target in zip(axes[:-1], targets):
        r = interp[target, seed]
        ref = r.e2e_model.A
        grid = append_ones(torch.linspace(-3, 3, 600, dtype=ref.dtype, device=ref.device)[:, None])
        with torch.no_grad():
            ax.plot(grid[:, 0].cpu(), TARGETS[target](grid[:, :1]).cpu(), "k", lw=3, alpha=0.25, label="target")
            ax.plot(grid[:, 0].cpu(), r.seq.model(grid).cpu(), label="sequential (local search)")
            ax.plot(grid[:, 0].cpu(), r.e2e_model(grid).cpu(), "--", label=f"end to end, {r.hist.steps[-1]} steps")
        ax.set(title=f"{target} target, seed {seed}", xlabel="u", ylabel="f(u)")
        ax.legend(fontsize=8)
    ax = axes[-1]
    for target, color in zip(targets, ("C0", "C3", "C1", "C2")):
        for s in seeds:
            r, first = interp[target, s], s == seeds[0]
            ax.plot(r.hist.flops[1:], r.hist.evals[1:], color=color, alpha=0.5, lw=1,
                    label=f"end to end, {target}" if first else None)
            ax.plot([r.seq.flops], [r.seq_test], "o", color=color, ms=6,
                    label=f"sequential local, {target}" if first else None)
            ax.plot([r.alt.flops], [r.alt_test], "x", color=color, ms=6,
                    label=f"sequential Alg. 2, {target}" if first else None)
    ax.set(xscale="log", yscale="log", xlabel="training FLOPs (counted)", ylabel="test MSE",
           title="test error against compute, all seeds")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------------ digits
@dataclass
class DigitsRun:
    """One seed of the classification sweep: Algorithm 2 (MSE) and local search (CE), and the end-to-end
    histories by loss (``"mse"``, ``"ce"``; ``evals`` are test accuracies)."""

    seq: SequentialResult
    seq_acc: float
    seq_ce: SequentialResult
    seq_ce_acc: float
    hists: dict[str, E2EHistory] = field(default_factory=dict)


def digits_sweep(cfg: Mapping, data: Split, seeds: Iterable[int]) -> dict[int, DigitsRun]:
    """Every seed of ``seeds`` (from ``run.seeds``) on ``data`` (flat, standardized): sequential Algorithm 2 on
    one-hot targets, sequential local search with the cross-entropy, and end to end with both losses, for
    ``cls_e2e_steps`` steps or ``e2e_flop_factor`` times Algorithm 2's FLOPs, whichever comes first."""
    seeds = _check_seeds(seeds)
    return {seed: digits_run(cfg, data, seed) for seed in seeds}


def digits_run(cfg: Mapping, data: Split, seed: int, ctx: Any | None = None) -> DigitsRun:
    """One seed of :func:`digits_sweep`: its four trainings.  ``ctx``: a sweep's run context, as in
    :func:`interpolation_run` (checkpoints ``seq-altmin``, ``seq-ce``, ``e2e-mse``, ``e2e-ce``)."""
    factor = _flop_factor(cfg)
    if data.x_train.dim() != 2:
        raise ValueError(f"data must be flat (N x F rows); got x_train of shape {tuple(data.x_train.shape)}")
    u, u_test = append_ones(data.x_train), append_ones(data.x_test)
    onehot = F.one_hot(data.y_train, data.num_classes).to(u.dtype)
    acc = accuracy_on(u_test, data.y_test)
    n, L = cfg["cls_n"], cfg["cls_L"]
    seq = train_sequential(u, onehot, n, L, solver="altmin", alternations=cfg["cls_alternations"],
                           steps=cfg["cls_steps"], lr=cfg["cls_lr"], generator=torch.Generator().manual_seed(seed),
                           checkpoint=_blocks(ctx, "seq-altmin"))
    seq_ce = train_sequential(u, data.y_train, n, L, loss="ce", solver="local", steps=cfg["cls_local_steps"],
                              lr=cfg["cls_local_lr"], generator=torch.Generator().manual_seed(seed),
                              checkpoint=_blocks(ctx, "seq-ce"))
    rec = DigitsRun(seq, acc(seq.model), seq_ce, acc(seq_ce.model))
    for loss, target in (("mse", onehot), ("ce", data.y_train)):
        model = ImplicitModel(n, u.shape[1], data.num_classes, dtype=u.dtype, device=u.device,
                              generator=torch.Generator().manual_seed(seed))
        rec.hists[loss] = train_projected(model, u, target, loss=loss, lr=cfg["cls_e2e_lr"],
                                          kappa=cfg["cls_kappa"], steps=cfg["cls_e2e_steps"],
                                          flop_budget=None if factor is None else factor * seq.flops,
                                          batch_size=cfg["cls_batch_size"], eval_fn=acc,
                                          eval_every=cfg["cls_eval_every"],
                                          generator=torch.Generator().manual_seed(seed),
                                          checkpoint=_epochs(ctx, f"e2e-{loss}", u.shape[0], cfg["cls_batch_size"]))
    return rec


def digits_rows(cls: Mapping[int, DigitsRun]) -> list[dict[str, str]]:
    """One table row per seed: accuracies (GFLOPs; seconds) of both sequential runs, end to end at Algorithm 2's
    FLOPs / last.  Seconds are shown, never compared."""
    rows = []
    for seed, r in cls.items():
        F0, h = r.seq.flops, r.hists
        rows.append({"seed": str(seed),
                     "sequential, Alg. 2 (MSE)": f"{r.seq_acc:.3f} ({F0 / 1e9:.1f} GF; {r.seq.seconds:.1f} s)",
                     "sequential, local (CE)": f"{r.seq_ce_acc:.3f} ({r.seq_ce.flops / 1e9:.1f} GF; "
                                               f"{r.seq_ce.seconds:.1f} s)",
                     "end to end MSE: equal FLOPs / last": f"{h['mse'].at_flops(F0):.3f} / {h['mse'].evals[-1]:.3f}",
                     "end to end CE: equal FLOPs / last": f"{h['ce'].at_flops(F0):.3f} / {h['ce'].evals[-1]:.3f}",
                     "end-to-end MSE run": f"{h['mse'].steps[-1]} steps, {h['mse'].flops[-1] / 1e9:.0f} GF; "
                                           f"{h['mse'].seconds[-1]:.1f} s"})
    return rows


@dataclass
class DigitsSummary:
    """Per-seed arrays of the digits sweep: Algorithm 2's accuracy, FLOPs and seconds; end to end (MSE) at equal
    FLOPs, at its last checkpoint and that checkpoint's FLOPs (in multiples of Algorithm 2's); and the FLOPs it
    needs to match Algorithm 2, in multiples of Algorithm 2's (``inf``: not within the run)."""

    seq_acc: np.ndarray
    seq_flops: np.ndarray
    seq_seconds: np.ndarray
    e2e_equal: np.ndarray
    e2e_last: np.ndarray
    e2e_last_multiple: np.ndarray
    catch_up: np.ndarray


def digits_summary(cls: Mapping[int, DigitsRun]) -> DigitsSummary:
    """The numbers of the digits claims (see :class:`DigitsSummary`)."""
    rs = list(cls.values())
    if not rs:
        raise ValueError("cls must hold at least one run")
    return DigitsSummary(
        np.array([r.seq_acc for r in rs]), np.array([r.seq.flops for r in rs]), np.array([r.seq.seconds for r in rs]),
        np.array([r.hists["mse"].at_flops(r.seq.flops) for r in rs]),
        np.array([r.hists["mse"].evals[-1] for r in rs]),
        np.array([r.hists["mse"].flops[-1] / r.seq.flops for r in rs]),
        np.array([flops_to_reach(r.hists["mse"], r.seq_acc) / r.seq.flops for r in rs]))


def phase_shares(hists: Iterable[E2EHistory]) -> dict[str, float]:
    """The share of end-to-end step time in each phase (forward, backward, update, projection), summed over runs."""
    total = {"forward": 0.0, "backward": 0.0, "update": 0.0, "projection": 0.0}
    for h in hists:
        for k in total:
            total[k] += h.phase_seconds[k]
    s = sum(total.values())
    if s <= 0:
        raise ValueError("hists must hold at least one end-to-end run with timed steps")
    return {k: v / s for k, v in total.items()}


def plot_digits(cls: Mapping[int, DigitsRun]):
    """Test accuracy against training FLOPs: end-to-end curves (both losses) and the two sequential runs as points."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.8))
    for i, r in enumerate(cls.values()):
        for loss, color in (("mse", "C1"), ("ce", "C2")):
            h = r.hists[loss]
            ax.plot(h.flops[1:], h.evals[1:], color=color, alpha=0.6, lw=1,
                    label=f"end to end ({loss})" if i == 0 else None)
        ax.plot([r.seq.flops], [r.seq_acc], "o", color="C0", label="sequential, Alg. 2" if i == 0 else None)
        ax.plot([r.seq_ce.flops], [r.seq_ce_acc], "s", color="C4", label="sequential, local CE" if i == 0 else None)
    ax.set(xscale="log", ylim=(0.8, 1.0), xlabel="training FLOPs (counted)", ylabel="test accuracy",
           title="digits: accuracy against compute, all seeds")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig

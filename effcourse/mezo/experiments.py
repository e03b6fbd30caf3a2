"""The experiments of chapter 2 (MeZO-SVRG), one function each; the notebook calls them and states the claims.

Every function draws its randomness from the generator or seed it is given, in the order the chapter's sections
run, so that a chapter's numbers do not depend on which cells ran before (the vectorised runs share one generator
per problem, as the chapter always did).  Figures are in :mod:`effcourse.mezo.figures`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import spsa
from .batched import Generators, Trace, run_fo_sgd, run_mezo, run_mezo_svrg, svrg_budget
from .finetune import Encoded, FinetuneTrace, finetune
from .optim import ZOSVRG, MeZOSVRG, Trajectory, rebuild
from .pretrained import CachedPrefix, IndexedInputs, trainable_parameters
from .problems import BatchedMLP, LeastSquares

__all__ = [
    "FiniteDifferenceBias",
    "LemmaResiduals",
    "ablation_rows",
    "ablations",
    "anchor_rows",
    "batch_size_study",
    "compare_finetuning",
    "FINETUNE_MODES",
    "finetune_inputs",
    "finetune_methods",
    "digits_comparison",
    "digits_rows",
    "excess_at",
    "finetuning_rows",
    "finite_difference_bias",
    "gradient_floor",
    "floor_rows",
    "late_loss",
    "least_squares_runs",
    "lemma_residuals",
    "memory_rows",
    "relative_excess",
    "ReachMeZO",
    "reach_mezo",
    "reach_rows",
    "rms_cosine_deviation",
    "shared_estimator_moments",
    "trajectory_demo",
    "zo_svrg_cost",
]


# ------------------------------------------------------------------------------- 1. SPSA (Sec. 3.2)
@dataclass(frozen=True)
class FiniteDifferenceBias:
    """``bias[j]``: the finite-difference error of the shared-direction estimator at ``mu_grid[j]`` over |grad|;
    ``monte_carlo``: the sampling error of the ``mu -> 0`` estimator with the same directions; ``slope``: the
    log-log slope of the bias over the three largest ``mu`` (2 for a smooth loss)."""

    bias: list[float]
    monte_carlo: float
    slope: float


def finite_difference_bias(problem: BatchedMLP, theta: torch.Tensor, mu_grid: Sequence[float], draws: int,
                           seed: int) -> FiniteDifferenceBias:
    """The bias of (3.5) as ``mu -> 0`` with the same ``draws`` directions for every ``mu``: only the
    finite-difference error ``mean_j (pg_j(mu) - z_j^T grad) z_j`` changes."""
    if draws < 1 or len(mu_grid) < 3:
        raise ValueError(f"need draws >= 1 and at least 3 values in mu_grid; got {draws}, {list(mu_grid)}")
    th = theta.clone().requires_grad_(True)
    true_grad = torch.autograd.grad(problem.loss(th[None])[0], th)[0]
    gz = torch.Generator().manual_seed(seed)
    Z = torch.randn(draws, problem.dim, generator=gz, dtype=theta.dtype).to(theta.device)
    bias = []
    with torch.no_grad():
        for mu in mu_grid:
            pg = torch.cat([(problem.loss(theta + mu * z) - problem.loss(theta - mu * z)) / (2 * mu)
                            for z in Z.split(250)])
            bias.append(float(((pg - Z @ true_grad)[:, None] * Z).mean(0).norm() / true_grad.norm()))
        mc = ((Z @ true_grad)[:, None] * Z).mean(0).sub(true_grad).norm() / true_grad.norm()
    slope = np.polyfit(np.log(list(mu_grid)[:3]), np.log(bias[:3]), 1)[0]
    return FiniteDifferenceBias(bias, float(mc), float(slope))


def shared_estimator_moments(problem: LeastSquares, theta: torch.Tensor, mu: float, draws: int,
                             seed: int) -> tuple[float, float]:
    """``(|E[est] - grad| / |grad|, E|est|^2 / |grad|^2)`` of (3.5) over ``draws`` directions on a quadratic,
    where the estimator is unbiased and its second moment is ``(d + 2) |grad|^2``."""
    g_true = problem.grad(theta[None])[0]
    est = spsa.shared_direction_estimate(problem.per_sample, theta, mu, num=draws,
                                         generator=torch.Generator().manual_seed(seed))
    rel_err = float((est.mean(0) - g_true).norm() / g_true.norm())
    m2 = float(est.square().sum(1).mean() / g_true.square().sum())
    return rel_err, m2


@dataclass(frozen=True)
class LemmaResiduals:
    """Lemmas 1 and 2 by enumeration: the largest residual of each, and ``scale``, the largest magnitude of the
    terms summed (``|pg_i z_j|``), against which a residual is rounding or not; ``terms``, how many are summed."""

    lemma1: float
    lemma2: float
    scale: float
    terms: int

    def tolerance(self, ulps: float = 64.0) -> float:
        """The rounding floor of the sums: ``ulps * eps * terms * scale`` (float64)."""
        return ulps * float(np.finfo(np.float64).eps) * self.terms * self.scale


def lemma_residuals(n: int = 6, d: int = 4, batch_size: int = 2, mu: float = 1e-3,
                    seed: int = 0) -> LemmaResiduals:
    """Lemmas 1 and 2 for one fixed direction ``z``, by enumerating every minibatch of a small least squares
    drawn from ``seed``: ``max |E_I grad_I - grad|`` and ``max |sum_i u_i|`` (both zero up to rounding)."""
    if not 1 <= batch_size <= n:
        raise ValueError(f"batch_size must be in [1, n={n}]; got {batch_size}")
    ls = LeastSquares(n=n, d=d, seed=seed)
    g = torch.Generator().manual_seed(seed)
    th_a, th_b, z = (torch.randn(d, dtype=torch.float64, generator=g) for _ in range(3))

    def pg_per_sample(t):  # per-sample projected gradients along the one shared z
        return (ls.per_sample((t + mu * z)[None]) - ls.per_sample((t - mu * z)[None]))[0] / (2 * mu)

    pa, pb = pg_per_sample(th_a), pg_per_sample(th_b)
    full = pa.mean() * z
    over_batches = torch.stack([pa[list(I)].mean() * z
                                for I in itertools.combinations(range(n), batch_size)]).mean(0)
    u = (pa - pb)[:, None] * z - ((pa - pb).mean() * z)
    scale = float(torch.cat([pa, pb]).abs().max() * z.abs().max())
    terms = math.comb(n, batch_size) * batch_size
    return LemmaResiduals(float((over_batches - full).abs().max()), float(u.sum(0).abs().max()), scale, terms)


def rms_cosine_deviation(dims: Sequence[int], qs: Sequence[int], draws: int, seed: int) -> float:
    """The largest relative deviation of the RMS cosine between the gradient and an average of ``q`` Gaussian
    SPSA directions from :func:`effcourse.mezo.spsa.expected_cosine`, over every ``d`` in ``dims`` and ``q`` in
    ``qs`` (``draws`` estimates each, in blocks of 250)."""
    if draws < 250:
        raise ValueError(f"draws must be >= 250 (blocks of 250 estimates); got {draws}")
    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    for d in dims:
        g = torch.randn(d, generator=gen)
        for q in qs:
            sq = 0.0
            for _ in range(draws // 250):  # 250 estimates at a time keeps memory small
                Zq = torch.randn(250, q, d, generator=gen)
                est = ((Zq @ g)[..., None] * Zq).mean(1)
                sq += float(((est @ g) / (est.norm(dim=1) * g.norm())).square().sum())
            rms = math.sqrt(sq / (250 * (draws // 250)))
            worst = max(worst, abs(rms / spsa.expected_cosine(d, q) - 1))
    return worst


# ------------------------------------------------------------------------------- 2-3. the optimizers
def trajectory_demo(model: nn.Module, x_train: Mapping[str, torch.Tensor], y_train: torch.Tensor,
                    batch_size: int, seed: int, steps: int = 6, anchor_rows: int = 64) -> dict:
    """The seed trick on a real model: the +1, -2, +1 restore error, and ``steps`` MeZO-SVRG steps (Alg. 3) logged
    in a :class:`Trajectory` and replayed by :func:`rebuild` from the start point (storage efficiency, Sec. 3.3).

    Returns ``restore_err``, ``moved`` (the largest weight change), ``exact`` (replay bit-identical), ``ops``,
    ``nbytes`` (of the trajectory) and ``weights_mb``.  Trains every parameter of ``model`` in place.
    """
    dev = y_train.device
    params = trainable_parameters(model, "full")
    start = [p.detach().clone() for p in params]
    perturbed = [p.detach().clone() for p in params]
    for s in (1e-3, -2e-3, 1e-3):
        spsa.perturb_(perturbed, seed=seed, scale=s)
    restore_err = max(float((a - b).abs().max()) for a, b in zip(perturbed, start))
    traj = Trajectory()
    opt = MeZOSVRG(params, lr_full=1e-3, lr_mini=1e-4, q=2, seed=seed, trajectory=traj)
    x_anchor = {k: v[:anchor_rows] for k, v in x_train.items()}  # a large-batch anchor keeps the demo quick
    order = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randperm(len(y_train), generator=order)[:batch_size].to(dev)
        xb = {k: v[idx] for k, v in x_train.items()}
        opt.step(lambda xb=xb, idx=idx: F.cross_entropy(model(**xb).logits, y_train[idx]),
                 lambda: F.cross_entropy(model(**x_anchor).logits, y_train[:anchor_rows]))
    replayed = [w.clone() for w in start]
    rebuild(replayed, traj)
    return dict(restore_err=restore_err, moved=max(float((a.detach() - b).abs().max()) for a, b in zip(params, start)),
                exact=all(torch.equal(a, b) for a, b in zip(replayed, params)), ops=len(traj.ops),
                nbytes=traj.nbytes(), weights_mb=sum(p.numel() * p.element_size() for p in params) / 1e6)


def zo_svrg_cost(seed: int, steps: int = 4, batch_size: int = 8, n: int = 64) -> dict:
    """Forward calls and parameter-sized tensors of ``steps`` steps of naive ZO-SVRG (Alg. 4, per-sample
    directions) and of MeZO-SVRG (Alg. 3, one shared direction) on a linear least-squares model."""
    ls = LeastSquares(n=n, d=8, seed=seed, dtype=torch.float32)
    lin = nn.Linear(8, 1, bias=False)
    nn.init.zeros_(lin.weight)

    def mse(idx=None):
        xi, yi = (ls.X, ls.y) if idx is None else (ls.X[idx], ls.y[idx])
        return (lin(xi)[:, 0] - yi).square().mean()

    b = batch_size
    naive = ZOSVRG(lin.parameters(), lr=1e-2, q=2)
    for t in range(steps):
        naive.step(lambda i: mse(torch.tensor([i])), range(b * t, b * t + b), range(n))
    lin.weight.data.zero_()
    ours = MeZOSVRG(lin.parameters(), lr_full=1e-2, lr_mini=1e-2, q=2)
    for t in range(steps):
        ours.step(lambda t=t: mse(torch.arange(b * t, b * t + b)), mse)
    return dict(naive_calls=naive.forward_calls, naive_tensors=len(naive.state[lin.weight]) + 1,
                ours_calls=ours.forward_calls,
                ours_tensors=sum(k in ("anchor", "g") for k in ours.state[lin.weight]) + 1)


# ------------------------------------------------------------------------------- 4-5. least squares
def least_squares_runs(ls: LeastSquares, w0: torch.Tensor, budget_mezo: int, budget_svrg: int, fo_steps: int,
                       generator: Generators) -> dict[str, Trace]:
    """Fig. 3.1a with Table 3.7's hyperparameters (bs 32, mu 1e-3; MeZO lr 1e-3; MeZO-SVRG eta_1 1e-3,
    eta_2 1e-4, q 2; FO-SGD lr 1e-3), each seed a row of ``w0``."""
    return {
        "MeZO": run_mezo(ls, w0, lr=1e-3, mu=1e-3, batch_size=32, budget=budget_mezo, generator=generator),
        "MeZO-SVRG": run_mezo_svrg(ls, w0, lr_full=1e-3, lr_mini=1e-4, mu=1e-3, q=2, batch_size=32,
                                   budget=budget_svrg, generator=generator),
        "FO-SGD": run_fo_sgd(ls, w0, lr=1e-3, batch_size=32, steps=fo_steps, generator=generator),
    }


def relative_excess(traces: Mapping[str, Trace], f_star: float) -> dict[str, np.ndarray]:
    """``(f - f*) / f*`` at the end of each run, one value per seed."""
    return {k: (tr.final() / f_star - 1).numpy() for k, tr in traces.items()}


def excess_at(trace: Trace, f_star: float, queries: float) -> float:
    """The median over seeds of ``(f - f*) / f*`` at the last logged point with at most ``queries`` queries."""
    i = max([j for j, q in enumerate(trace.queries) if q <= queries] or [0])
    return float((trace.loss[i] / f_star - 1).median())


def gradient_floor(ls: LeastSquares, w0: torch.Tensor, batches: Sequence[int], steps: int,
                   generator: Generators, lr: float = 1e-3) -> dict[tuple[bool, int], float]:
    """Theorem 4's floor: ``max over seeds of |grad f|^2`` after ``steps`` MeZO-SVRG iterations (eta_1 = eta_2 =
    ``lr``, q = 2) from each row of ``w0``, keyed by ``(shared_direction, batch_size)``."""
    out = {}
    for shared in (True, False):
        for b in batches:
            tr = run_mezo_svrg(ls, w0, lr_full=lr, lr_mini=lr, mu=1e-3, q=2, batch_size=b,
                               budget=svrg_budget(ls.n, b, 2, steps), generator=generator,
                               shared_direction=shared, points=20)
            gn = ls.grad(tr.theta.to(w0.device)).square().sum(1)
            out[(shared, b)] = torch.nan_to_num(gn, nan=float("inf")).max().item()
    return out


def floor_rows(floor: Mapping[tuple[bool, int], float], batches: Sequence[int]) -> list[dict]:
    """:func:`gradient_floor` as table rows: one per direction scheme, one column per batch size."""
    return [{"directions": "shared" if shared else "independent", **{f"b = {b}": floor[(shared, b)] for b in batches}}
            for shared in (True, False)]


# ------------------------------------------------------------------------------- 6-8. digits
def batch_size_study(problem: BatchedMLP, theta0: torch.Tensor, batches: Sequence[int], lr: float, steps: int,
                     generator: Generators) -> tuple[dict[int, Trace], Trace]:
    """Fig. 3.1b: MeZO at each batch size for ``steps`` iterations, and MeZO-SVRG (eta_1 1e-2, eta_2 1e-3, q 2)
    at the smallest batch for as many iterations."""
    runs = {b: run_mezo(problem, theta0, lr=lr, mu=1e-3, batch_size=b, budget=2 * b * steps, generator=generator)
            for b in batches}
    b = batches[0]
    svrg = run_mezo_svrg(problem, theta0, lr_full=1e-2, lr_mini=1e-3, mu=1e-3, q=2, batch_size=b,
                         budget=svrg_budget(problem.n, b, 2, steps), generator=generator)
    return runs, svrg


def late_loss(trace: Trace) -> float:
    """The median over seeds of the mean training loss over the second half of the run (diverged runs count as
    1e6)."""
    L = torch.nan_to_num(trace.losses(), nan=float("inf"), posinf=float("inf")).clamp(max=1e6)
    return float(L[len(L) // 2:].mean(0).median())


def digits_comparison(problem: BatchedMLP, theta0: torch.Tensor, mezo_lr: float, svrg_lrs: Sequence[float],
                      budget: int, fo_steps: int, generator: Generators) -> dict[str, Trace]:
    """MeZO at ``mezo_lr`` and twice it, MeZO-SVRG at ``(eta_1, eta_2) = svrg_lrs`` (equal query budgets) and
    FO-SGD (lr 0.1, ``fo_steps``), all at b = 64, q = 2, mu = 1e-3."""
    runs = {}
    for lr in (mezo_lr, 2 * mezo_lr):
        runs[f"MeZO lr {lr:g}"] = run_mezo(problem, theta0, lr=lr, mu=1e-3, batch_size=64, budget=budget,
                                           generator=generator)
    runs["MeZO-SVRG"] = run_mezo_svrg(problem, theta0, lr_full=svrg_lrs[0], lr_mini=svrg_lrs[1], mu=1e-3, q=2,
                                      batch_size=64, budget=budget, generator=generator)
    runs["FO-SGD lr 0.1"] = run_fo_sgd(problem, theta0, lr=0.1, batch_size=64, steps=fo_steps, generator=generator)
    return runs


def digits_rows(traces: Mapping[str, Trace], problem: BatchedMLP, x_test: torch.Tensor,
                y_test: torch.Tensor) -> list[dict]:
    """Final training loss and test accuracy (medians over seeds), queries and seconds of each run."""
    return [{"run": name, "train loss (median)": float(tr.final().median()),
             "test accuracy (median)": float(problem.accuracy(tr.theta, x_test, y_test).median()),
             "queries": tr.queries[-1], "seconds": tr.seconds[-1]} for name, tr in traces.items()]


def ablations(problem: BatchedMLP, theta0: torch.Tensor, svrg_lrs: Sequence[float], steps: int,
              mu_grid: Sequence[float], q_grid: Sequence[int], anchor_sizes: Sequence[int],
              generator: Generators) -> dict[tuple[str, float], Trace]:
    """Figs. 3.4-3.5 and Table 3.10: MeZO-SVRG (b = 64) for ``steps`` iterations at each ``mu``, each anchor period
    ``q`` and each anchor batch size (Remark 10), keyed ``("mu", value)``, ``("q", value)``, ``("anchor", size)``."""

    def run(**kw):
        kw = {**dict(lr_full=svrg_lrs[0], lr_mini=svrg_lrs[1], mu=1e-3, q=2, batch_size=64), **kw}
        na = kw.pop("anchor_size", problem.n)
        budget = svrg_budget(problem.n, kw["batch_size"], kw["q"], steps, anchor_size=na)
        return run_mezo_svrg(problem, theta0, budget=budget, generator=generator, anchor_size=na, **kw)

    out = {("mu", m): run(mu=m) for m in mu_grid}
    out.update({("q", q): run(q=q) for q in q_grid})
    out.update({("anchor", na): run(anchor_size=na) for na in anchor_sizes})
    return out


def ablation_rows(abl: Mapping[tuple[str, float], Trace]) -> list[dict]:
    """The ``mu`` and ``q`` ablations' final training loss (median of seeds, diverged runs capped at 1e6)."""
    return [{"ablation": k, "value": f"{v:g}", "final training loss (median of seeds)":
             min(float(tr.final().median()), 1e6)} for (k, v), tr in abl.items() if k != "anchor"]


def anchor_rows(abl: Mapping[tuple[str, float], Trace], problem: BatchedMLP, x_test: torch.Tensor,
                y_test: torch.Tensor) -> list[dict]:
    """The anchor-size ablation as Table 3.10: training loss, test accuracy (medians of seeds), queries."""
    return [{"anchor batch": f"{v}{' (full)' if v >= problem.n else ''}",
             "training loss": min(float(tr.final().median()), 1e6),
             "test accuracy": float(problem.accuracy(tr.theta, x_test, y_test).median()),
             "queries": tr.queries[-1]} for (k, v), tr in abl.items() if k == "anchor"]


# ------------------------------------------------------------------------------- 9-10. the transformer
def _reseed_head(model: nn.Module, seed: int) -> None:
    """Draw the fresh classification head again from ``seed`` (normal, std ``initializer_range``; zero bias), as
    ``transformers`` initialises it: replicate fine-tuning runs start from the same encoder and their own head."""
    g = torch.Generator().manual_seed(seed)
    std = float(getattr(getattr(model, "config", None), "initializer_range", 0.02))
    with torch.no_grad():
        for name, m in model.named_modules():
            if name.split(".")[-1] in ("classifier", "score") and isinstance(m, nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * std)
                if m.bias is not None:
                    m.bias.zero_()


FINETUNE_MODES = ("head", "partial", "full")


def finetune_inputs(model: nn.Module, x_train: Mapping[str, torch.Tensor], y_train: torch.Tensor,
                    x_test: Mapping[str, torch.Tensor], y_test: torch.Tensor, mode: str,
                    last_layers: int = 1) -> tuple[nn.Module, Encoded]:
    """What :func:`finetune` trains and reads in each fine-tuning setting of Table 3.1: ``"partial"`` (the last
    ``last_layers`` encoder layers and the head; the frozen layers run once, :class:`CachedPrefix`), ``"head"``
    (pooler and head on the frozen encoder) or ``"full"`` (every parameter, the whole model at each query).
    Returns the module called with row indices and the task as :class:`Encoded` indices into it."""
    if mode not in FINETUNE_MODES:
        raise ValueError(f"mode must be one of {FINETUNE_MODES}; got {mode!r}")
    L_max = max(x_train["input_ids"].shape[1], x_test["input_ids"].shape[1])
    all_x = {k: torch.cat([F.pad(x[k], (0, L_max - x[k].shape[1])) for x in (x_train, x_test)]) for k in x_train}
    dev, n_tr = y_train.device, len(y_train)
    if mode == "full":
        tail: nn.Module = IndexedInputs(model, all_x)
    else:
        tail = CachedPrefix(model, all_x, last_layers=last_layers if mode == "partial" else 0)
    data = Encoded({"index": torch.arange(n_tr, device=dev)}, y_train,
                   {"index": torch.arange(n_tr, n_tr + len(y_test), device=dev)}, y_test)
    return tail, data


def finetune_methods(cfg: Mapping, n_train: int, overrides: Mapping | None = None) -> dict[str, dict]:
    """The keyword arguments of :func:`finetune` for MeZO, MeZO-SVRG (q = 2, Alg. 6 if ``lm_anneal``) and FO-SGD
    from the configuration's ``lm_*`` keys; ``overrides`` (a model's entry of ``lm_models``: ``mezo_steps``,
    ``mezo_lr``, ``svrg_steps``, ``svrg_lrs``, ``fo_steps``, ``fo_lr``) replaces some, as RoBERTa-large's grid of
    Table 3.13 replaces DistilBERT's of Table 3.11."""
    keys = ("mezo_steps", "mezo_lr", "svrg_steps", "svrg_lrs", "fo_steps", "fo_lr")
    over = dict(overrides or {})
    unknown = set(over) - set(keys) - {"model", "last_layers"}
    if unknown:
        raise ValueError(f"overrides may set {keys + ('model', 'last_layers')}; got unknown {sorted(unknown)}")
    s = {k: over.get(k, cfg[f"lm_{k}"]) for k in keys}
    anneal = max(1, n_train // cfg["lm_batch"]) if cfg["lm_anneal"] else None
    return {
        "MeZO": dict(method="mezo", steps=s["mezo_steps"], lr=s["mezo_lr"]),
        "MeZO-SVRG": dict(method="mezo-svrg", steps=s["svrg_steps"], lr_full=s["svrg_lrs"][0],
                          lr_mini=s["svrg_lrs"][1], q=2, anneal_window=anneal),
        "FO-SGD": dict(method="fo-sgd", steps=s["fo_steps"], lr=s["fo_lr"]),
    }


def compare_finetuning(model: nn.Module, x_train: Mapping[str, torch.Tensor], y_train: torch.Tensor,
                       x_test: Mapping[str, torch.Tensor], y_test: torch.Tensor, cfg: Mapping, seeds: Sequence[int],
                       progress: bool = True) -> tuple[list[dict[str, FinetuneTrace]], int]:
    """MeZO and MeZO-SVRG fine-tuning of ``model`` from the same start, once per seed, and FO-SGD at the first seed,
    on one clock.

    Each seed draws the fresh head, the minibatches and the directions; the encoder is the pretrained one.  The
    frozen layers run once (:class:`CachedPrefix`); ``cfg.lm_last_layers`` encoder layers (0: only the pooler and
    head) train with the ``lm_*`` settings of the chapter's configuration.  Returns one dict of traces per seed and
    the number of trainable parameters.
    """
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    mode = "partial" if cfg["lm_last_layers"] else "head"
    tail, data = finetune_inputs(model, x_train, y_train, x_test, y_test, mode, cfg["lm_last_layers"])
    init_state = {k: v.clone() for k, v in model.state_dict().items()}
    settings = finetune_methods(cfg, len(y_train))
    out = []
    for j, seed in enumerate(seeds):
        traces = {}
        for name, kw in settings.items():
            if name == "FO-SGD" and j > 0:
                continue  # the first-order reference is drawn once, for the figure
            model.load_state_dict(init_state)
            _reseed_head(model, seed)
            params = trainable_parameters(model, mode, last_layers=max(1, cfg["lm_last_layers"]))
            traces[name] = finetune(tail, params, data, batch_size=cfg["lm_batch"], mu=1e-3,
                                    eval_every=cfg["lm_eval_every"], seed=seed, progress=progress, **kw)
        out.append(traces)
    return out, sum(p.numel() for p in params)


def finetuning_rows(traces: Mapping[str, FinetuneTrace]) -> list[dict]:
    """Final fine-tuning loss, test accuracy (final / best), queries, forward passes and training seconds of each
    method."""
    return [{"method": name, "fine-tuning loss": tr.train_loss[-1],
             "test accuracy (final / best)": f"{tr.test_acc[-1]:.3f} / {max(tr.test_acc):.3f}",
             "queries": tr.queries[-1], "forward passes": tr.passes[-1], "training seconds": tr.seconds[-1]}
            for name, tr in traces.items()]


@dataclass(frozen=True)
class ReachMeZO:
    """One seed of the fine-tuning comparison: MeZO's best loss, and what each method spent to first reach it
    (forward passes, single-sample queries, seconds; ``inf`` if MeZO-SVRG never does), and the final accuracies."""

    seed: int
    mezo_best: float
    passes: tuple[float, float]
    queries: tuple[float, float]
    seconds: tuple[float, float]
    acc: tuple[float, float]

    @property
    def pass_ratio(self) -> float:
        """MeZO-SVRG's forward passes to MeZO's best over MeZO's."""
        return self.passes[1] / self.passes[0]


def reach_mezo(runs: Sequence[Mapping[str, FinetuneTrace]], seeds: Sequence[int]) -> list[ReachMeZO]:
    """:class:`ReachMeZO` for each seed of :func:`compare_finetuning` (MeZO first, MeZO-SVRG second)."""
    out = []
    for seed, tr in zip(seeds, runs):
        m, s = tr["MeZO"], tr["MeZO-SVRG"]
        best = min(m.train_loss)
        out.append(ReachMeZO(seed, best, (m.cost_to(best, "passes"), s.cost_to(best, "passes")),
                             (m.cost_to(best, "queries"), s.cost_to(best, "queries")),
                             (m.cost_to(best, "seconds"), s.cost_to(best, "seconds")),
                             (m.test_acc[-1], s.test_acc[-1])))
    return out


def reach_rows(reach: Sequence[ReachMeZO]) -> list[dict]:
    """:func:`reach_mezo` as table rows, one per seed."""
    return [{"seed": r.seed, "MeZO's best loss": r.mezo_best,
             "forward passes (MeZO / SVRG)": f"{r.passes[0]:.0f} / {r.passes[1]:.0f}",
             "queries (MeZO / SVRG)": f"{r.queries[0]:.2e} / {r.queries[1]:.2e}",
             "seconds (MeZO / SVRG)": f"{r.seconds[0]:.1f} / {r.seconds[1]:.1f}",
             "final test acc. (MeZO / SVRG)": f"{r.acc[0]:.3f} / {r.acc[1]:.3f}"} for r in reach]


def memory_rows(mem: Mapping[str, Mapping[str, float]]) -> list[dict]:
    """Table 3.3's analogue from :func:`effcourse.mezo.memory.peak_memory_table`: memory above the libraries,
    its ratio to inference and the saving against FO-SGD."""
    fo, inf = mem["fo-sgd"]["above_libs_mb"], mem["inference"]["above_libs_mb"]
    return [{"method": m, "peak above libraries (MB)": r["above_libs_mb"],
             "vs inference": f"{r['above_libs_mb'] / inf:.2f}x",
             "saving vs FO-SGD": f"{100 * (1 - r['above_libs_mb'] / fo):.0f}%"} for m, r in mem.items()]

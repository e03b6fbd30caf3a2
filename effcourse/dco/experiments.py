"""The experiments of chapter 3 (Gautam 2024, ch. 4), one function each, so that the notebook only narrates.

* :func:`first_order_steps_as_dco`: GD and momentum (4.2)-(4.4) are DCOG and DCOM at constant ``phi``.
* :func:`backend_fidelity`: cvxpylayers against the closed form, in value and meta-gradient, at two tolerances.
* :func:`theorem6_check`: Theorem 6 on the shifted least-squares family (4.17), number by number.
* :func:`dco_rules` and :func:`compare_on_family`: meta-trained DCO rules against tuned baselines (Figs. 4.1-4.3).
* :func:`one_step_horizon_pitfall`: what a T = 1 meta-objective cannot see (the spectral radius of the step).
* :func:`verdict_rows`: the thesis's experimental claims against a run's numbers.

Every function draws its random numbers from the ``generator`` it is given, in the order the chapter documents, and
uses torch's default dtype (the chapter sets float64).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .baselines import BASELINES, run_baseline, tune_baseline
from .layers import DCOGeneralDescent, DCOGradient, DCOMomentum, DCOOptimizer, backend_agreement
from .meta import MetaCheckpoint, evaluate_optimizer, load_phi, meta_train, phi
from .tasks import LeastSquaresTasks, Tasks, shifted_least_squares_tasks
from .theory import best_fixed_general_descent, meta_curvature, optimal_general_descent, optimal_value

__all__ = [
    "Comparison",
    "HorizonPitfall",
    "Theorem6",
    "Theorem6Run",
    "backend_fidelity",
    "compare_on_family",
    "dco_rules",
    "final_losses",
    "first_order_steps_as_dco",
    "network_rows",
    "network_summary",
    "one_step_horizon_pitfall",
    "theorem6_check",
    "verdict",
    "verdict_rows",
]


def _positive_int(name: str, v: int) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise ValueError(f"{name} must be a positive int; got {v!r}")
    return v


# ---------------------------------------------------------------------------------------------- Section 1
def first_order_steps_as_dco(generator: torch.Generator, p: int = 8, lam: float = 4.0, beta: float = 0.9,
                             steps: int = 20, n_problems: int = 3) -> dict[str, float]:
    """GD and EMA momentum (4.2)-(4.4) against DCOG and DCOM with ``Lambda = sqrt(lam) 1``, ``M = (1 - beta) 1``.

    Runs ``steps`` steps of each on ``n_problems`` random SPD quadratics ``x'A x / 2 - b'x`` (unnormalized
    gradients, ``S^(1) = grad f(x^(1))``), then solves (4.2) once with cvxpylayers.  Returns the largest absolute
    differences ``"gd"`` and ``"momentum"``, and the relative difference ``"solver"`` of the solver's argmin from the
    GD step.
    """
    _positive_int("p", p), _positive_int("steps", steps), _positive_int("n_problems", n_problems)
    if not lam > 0 or not 0 <= beta < 1:
        raise ValueError(f"need lam > 0 and 0 <= beta < 1; got lam={lam!r}, beta={beta!r}")
    g = generator
    A = torch.randn(n_problems, p, p, generator=g)
    A = A @ A.transpose(1, 2) / p + 0.1 * torch.eye(p)
    b = torch.randn(n_problems, p, generator=g)

    def grad_f(x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("tij,tj->ti", A, x) - b

    x_gd = x_mom = x_dco = x_dcom = torch.randn(n_problems, p, generator=g)
    s_mom = s_dcom = grad_f(x_mom)  # S^(1) = grad f(x^(1)), as in (4.3)
    dcog = DCOGradient(p, lam0=math.sqrt(lam), normalize=False)
    dcom = DCOMomentum(p, lam0=math.sqrt(lam), m0=1 - beta, normalize=False)
    with torch.no_grad():
        for _ in range(steps):
            x_gd = x_gd - grad_f(x_gd) / lam
            x_dco, _ = dcog(x_dco, grad_f(x_dco))
            s_mom = beta * s_mom + (1 - beta) * grad_f(x_mom)
            x_mom = x_mom - s_mom / lam
            x_dcom, s_dcom = dcom(x_dcom, grad_f(x_dcom), s_dcom)
        x0 = torch.randn(n_problems, p, generator=g)
        solver = DCOGradient(p, lam0=math.sqrt(lam), normalize=False, backend="cvxpylayers")
        solved, _ = solver(x0, grad_f(x0))
        gd_step = x0 - grad_f(x0) / lam
    return {"gd": float((x_dco - x_gd).abs().max()), "momentum": float((x_dcom - x_mom).abs().max()),
            "solver": float((solved - gd_step).norm() / gd_step.norm())}


# ---------------------------------------------------------------------------------------------- Section 2
def backend_fidelity(p: int, n_tasks: int, generator: torch.Generator) -> tuple[list[dict[str, object]], float]:
    """DCOG, DCOGD and DCOM at a random ``phi``: closed form against cvxpylayers at SCS's default and tight tolerance.

    Draws ``theta``, ``G``, ``S`` and the weights ``w`` of the meta-gradient's test function from ``generator``.
    Returns one row per rule (relative differences of ``theta^(t+1)`` and of the gradient of ``<w, theta^(t+1)>``,
    see :func:`effcourse.dco.layers.backend_agreement`) and the worst difference at the tight tolerance.
    """
    _positive_int("p", p), _positive_int("n_tasks", n_tasks)
    g = generator
    theta, grad, state, weights = (torch.randn(n_tasks, p, generator=g) for _ in range(4))
    rows, worst = [], 0.0
    for name, opt in (("DCOG", DCOGradient(p, lam0=1.5)), ("DCOGD", DCOGeneralDescent(p, b0=0.7)),
                      ("DCOM", DCOMomentum(p, lam0=1.5, m0=0.4))):
        with torch.no_grad():  # a generic phi, not the constant initialization
            for q in opt.parameters():
                q.add_(0.3 * torch.rand(q.shape, generator=g))
        st = state if name == "DCOM" else None
        loose = backend_agreement(opt, theta, grad, st, solver_args={}, weights=weights)
        tight = backend_agreement(opt, theta, grad, st, weights=weights)
        worst = max(worst, *tight)
        rows.append({"rule": name, "value, default tol.": loose[0], "gradient, default tol.": loose[1],
                     "value, eps=1e-9": tight[0], "gradient, eps=1e-9": tight[1]})
    return rows, worst


# ---------------------------------------------------------------------------------------------- Section 4
@dataclass
class Theorem6Run:
    """Meta-gradient descent on B for one set of training tasks: ``trace[k-1] = ||B_k - B*||_F^2`` and its bound.

    The bound is compared only where it lies above ``floor``, the squared distance that float64 gradient descent
    can resolve (see :func:`theorem6_check`); below it ``floor_ok`` says whether the distance stayed at the floor.
    """

    mu_over_L: float
    trace: np.ndarray
    bound: np.ndarray
    floor: float         # float64 floor of ||B_k - B*||^2: (64 eps ||B*||_F L/mu)^2
    n_compared: int      # meta-steps whose bound lies above the floor (the only ones compared)
    n_exceeded: int      # compared meta-steps with trace > bound (1 + 1e-9): the theorem says none
    n_off_floor: int     # meta-steps with the bound below the floor but trace above the floor
    dist0: float         # ||B_0 - B*||_F before meta-training
    dist: float          # ||B_K - B*||_F after the last meta-step
    train_gap: float     # l_total on the training tasks minus l*, at the last meta-step
    target_gap: float    # the one-step loss on new tasks minus l*
    train_gap0: float    # the same two gaps at B_0 = I, before meta-training
    target_gap0: float

    @property
    def bound_ok(self) -> bool:
        """The linear-convergence bound at every step float64 can resolve, and no step off the floor below it."""
        return self.n_compared > 0 and self.n_exceeded == 0 and self.n_off_floor == 0


@dataclass
class Theorem6:
    """What :func:`theorem6_check` measured: (i) ``exact_gap``, (ii)-(iii) ``runs``, (iv) ``norm_gap``."""

    l_star: float
    exact_gap: float     # l_total(B*) - l* on the N = 10p training tasks
    norm_gap: float      # new-task gap of the best fixed B for normalized gradients
    runs: dict[str, Theorem6Run] = field(default_factory=dict)


def theorem6_check(n: int, p: int, n_tasks: int, few_tasks: int, target_tasks: int, steps: int,
                   generator: torch.Generator) -> Theorem6:
    """Theorem 6 on (4.17) with a fixed design ``X (n, p)``, checked against exact references.

    Draws X and y, then ``target_tasks`` new tasks, then the training sets ``"N = 10p"`` (``n_tasks``) and
    ``"N < p"`` (``few_tasks``), each with its fixed ``theta^(1)``.  On each it runs ``steps`` meta-steps of
    gradient descent on B at step ``1/L`` from ``B_0 = I`` (unnormalized gradients), recording ``||B_k - B*||^2``
    against the bound ``(1 - mu/L)^k ||B_0 - B*||^2``.  The bound is compared only while it lies above the float64
    floor of the iteration, ``(64 eps ||B*||_F L/mu)^2``; past it, the check is that the distance stays at the floor.
    Finally (iv): the exact best fixed B for normalized gradients
    (:func:`effcourse.dco.theory.best_fixed_general_descent`) and its gap on the new tasks.
    """
    for name, v in (("n", n), ("p", p), ("n_tasks", n_tasks), ("few_tasks", few_tasks),
                    ("target_tasks", target_tasks), ("steps", steps)):
        _positive_int(name, v)
    g = generator
    X, y = torch.randn(n, p, generator=g), torch.randn(n, generator=g)
    B_star, l_star = optimal_general_descent(X), optimal_value(X, y)

    def family(count: int) -> tuple[LeastSquaresTasks, torch.Tensor]:
        tasks = shifted_least_squares_tasks(X, y, torch.randn(count, p, generator=g))
        return tasks, torch.randn(count, p, generator=g)  # the tasks and their fixed theta^(1)

    def one_step_gap(opt: DCOOptimizer, tasks: Tasks, theta1: torch.Tensor) -> float:
        with torch.no_grad():
            return float(tasks.val_loss(opt(theta1, tasks.grad(theta1))[0]).mean() - l_star)

    target, th_target = family(target_tasks)
    out = Theorem6(l_star=float(l_star), exact_gap=math.nan, norm_gap=math.nan)
    sets = {}
    for label, count in (("N = 10p", n_tasks), ("N < p", few_tasks)):
        tasks, th1 = family(count)
        sets[label] = tasks, th1
        mu, L = meta_curvature(tasks.grad(th1), X)
        opt = DCOGeneralDescent(p, b0=1.0, normalize=False)
        d0 = float((opt.B.detach() - B_star).norm() ** 2)
        target_gap0 = one_step_gap(opt, target, th_target)
        dists: list[float] = []
        res = meta_train(opt, tasks, epochs=steps, theta0=th1,
                         meta_optimizer=lambda ps, L=L: torch.optim.SGD(ps, lr=1 / L),
                         callback=lambda k, o, d=dists: d.append(float((o.B.detach() - B_star).norm() ** 2)))
        trace = np.array(dists)
        bound = (1 - mu / L) ** np.arange(1, len(trace) + 1) * d0
        # rounding injects ~eps ||B*|| per step and the flattest direction forgets it at rate mu/L, so the iterates
        # settle within ~eps ||B*|| L/mu of B* (0.1-0.3 of that at development seeds); 64x leaves a wide margin
        # N < p: mu is zero up to rounding, the bound says nothing and nothing is compared
        floor = math.inf if mu / L <= 1e-10 else (64 * np.finfo(float).eps * float(B_star.norm()) * L / mu) ** 2
        above = bound > floor
        out.runs[label] = Theorem6Run(
            mu_over_L=mu / L, trace=trace, bound=bound, floor=floor, n_compared=int(above.sum()),
            n_exceeded=int(np.sum(trace[above] > bound[above] * (1 + 1e-9))),
            n_off_floor=int(np.sum(trace[~above] > floor)), dist0=math.sqrt(d0), dist=math.sqrt(trace[-1]),
            train_gap=res.losses[-1] - float(l_star), target_gap=one_step_gap(opt, target, th_target),
            train_gap0=res.losses[0] - float(l_star), target_gap0=target_gap0)
    tasks, th1 = sets["N = 10p"]
    opt_star = DCOGeneralDescent(p, normalize=False)
    with torch.no_grad():
        opt_star.B.copy_(B_star)
    out.exact_gap = one_step_gap(opt_star, tasks, th1)
    G = tasks.grad(th1)
    opt_norm = DCOGeneralDescent(p, normalize=True)
    with torch.no_grad():
        opt_norm.B.copy_(best_fixed_general_descent(tasks, th1, G / G.norm(dim=1, keepdim=True)))
    out.norm_gap = one_step_gap(opt_norm, target, th_target)
    return out


# ---------------------------------------------------------------------------------------------- Section 5
RuleFactory = Callable[[int], DCOOptimizer]


def dco_rules(*, lam0: float, b0: float, m0: float, backend: str = "closed_form") -> dict[str, RuleFactory]:
    """The three DCO rules (4.13)-(4.16) as factories ``p -> optimizer``, from gradient-descent-like constants."""
    return {
        "DCOG": lambda p: DCOGradient(p, lam0=lam0, backend=backend),
        "DCOGD": lambda p: DCOGeneralDescent(p, b0=b0, backend=backend),
        "DCOM": lambda p: DCOMomentum(p, lam0=lam0, m0=m0, backend=backend),
    }


@dataclass
class Comparison:
    """Held-out curves (mean validation loss after 0..T steps) of every method on one task family.

    ``curves`` keys: ``"<rule> (reset)"``, ``"<rule> (persistent)"`` for the meta-trained DCO rules, then
    ``"<baseline> (lr <tuned lr>)"``; ``phi0``: each rule at its initial ``phi``; ``train_losses[(rule,
    persistent)]``: ``l_total`` per meta-step.
    """

    curves: dict[str, torch.Tensor] = field(default_factory=dict)
    phi0: dict[str, torch.Tensor] = field(default_factory=dict)
    best_lr: dict[str, float] = field(default_factory=dict)
    train_losses: dict[tuple[str, bool], list[float]] = field(default_factory=dict)


def compare_on_family(draw: Callable[[int], Tasks], counts: Sequence[int], rules: Mapping[str, RuleFactory],
                      lrs: Sequence[float], epochs: int, eval_steps: int,
                      init_generator: torch.Generator | None = None,
                      checkpoint: MetaCheckpoint | None = None) -> Comparison:
    """The protocol of Section 5 on one task family: meta-train, tune, report on held-out tasks.

    ``draw(n)`` draws n tasks; it is called for ``counts = (meta-training, tuning, held-out)`` in that order.  With
    ``init_generator`` each set then starts from ``init_params(init_generator)`` (networks), else from its default
    start (least squares: zero).  Every rule is meta-trained for ``epochs`` (M, T = 1) with reset and with
    persistent inner state; every baseline's learning rate is the best of ``lrs`` on the tuning tasks after
    ``eval_steps`` steps; all are then run ``eval_steps`` steps on the held-out tasks.

    With ``checkpoint`` (a sweep's, :class:`effcourse.dco.meta.MetaCheckpoint`) the comparison resumes where a
    killed run stopped: the tasks are drawn again (the same draws: nothing random follows them), every finished
    phase (a rule at ``phi0``, a meta-training, an evaluation, a baseline) is read back, and a meta-training that
    was cut short continues from its last meta-step (saved every ``checkpoint.every``).
    """
    if len(counts) != 3:
        raise ValueError(f"counts must be (meta-training, tuning, held-out) task counts; got {counts!r}")
    if not rules:
        raise ValueError("rules must name at least one DCO rule")
    train, tune, held = sets = [draw(_positive_int("counts", n)) for n in counts]
    th = (tuple(t.init_params(init_generator) for t in sets) if init_generator is not None
          else (None, None, None))
    phases = _Phases(checkpoint)
    out = Comparison()
    for name, make in rules.items():
        out.phi0[name] = phases.run(f"{name}/phi0",
                                    lambda make=make: evaluate_optimizer(make(train.p), held, eval_steps, th[2]))
        for persistent in (False, True):
            opt = make(train.p)
            key = f"{name} ({'persistent' if persistent else 'reset'})"

            def fit(opt: DCOOptimizer = opt, persistent: bool = persistent, key: str = key) -> dict[str, object]:
                res = meta_train(opt, train, epochs=epochs, persistent=persistent, theta0=th[0],
                                 checkpoint=phases.inner(f"{key}/meta-train"))
                return {"phi": phi(opt), "losses": res.losses}

            trained = phases.run(f"{key}/meta-train", fit)
            load_phi(opt, trained["phi"])  # a no-op unless the meta-training was read back
            out.train_losses[(name, persistent)] = list(trained["losses"])
            out.curves[key] = phases.run(f"{key}/eval",
                                         lambda opt=opt: evaluate_optimizer(opt, held, eval_steps, th[2]))
    for b in BASELINES:
        def baseline(b: str = b) -> tuple[float, torch.Tensor]:
            lr, _ = tune_baseline(tune, b, lrs, eval_steps, th[1])
            return lr, run_baseline(held, b, lr, eval_steps, th[2])

        out.best_lr[b], curve = phases.run(f"{b}/tune-run", baseline)
        out.curves[f"{b} (lr {out.best_lr[b]:.2g})"] = curve
    return out


class _Phases:
    """The finished phases of :func:`compare_on_family` (name -> result), saved to ``checkpoint`` after each one,
    and the state of the meta-training in progress, so that a resumed comparison skips what was done."""

    def __init__(self, checkpoint: MetaCheckpoint | None):
        self.checkpoint = checkpoint
        saved = checkpoint.load() if checkpoint is not None else None
        self.done: dict[str, object] = dict(saved["done"]) if saved is not None else {}
        self.running: tuple[str, Mapping[str, object]] | None = (
            (saved["running"], saved["inner"]) if saved is not None and saved["running"] is not None else None)

    def run(self, name: str, work: Callable[[], object]) -> object:
        if name not in self.done:
            self.done[name] = work()
            if self.checkpoint is not None:
                self.checkpoint.save(len(self.done), {"done": self.done, "running": None, "inner": None})
        return self.done[name]

    def inner(self, name: str) -> MetaCheckpoint | None:
        """A checkpoint for the loop inside phase ``name`` (saved alongside the finished phases)."""
        return None if self.checkpoint is None else _InnerCheckpoint(self, name, self.checkpoint.every)


@dataclass
class _InnerCheckpoint:
    phases: _Phases
    name: str
    every: int

    def load(self) -> Mapping[str, object] | None:
        got = self.phases.running
        return got[1] if got is not None and got[0] == self.name else None

    def save(self, step: int, state: Mapping[str, object]) -> None:
        ckpt = self.phases.checkpoint
        assert ckpt is not None  # built by _Phases.inner only when there is one
        ckpt.save(len(self.phases.done), {"done": self.phases.done, "running": self.name, "inner": state})


def final_losses(results: Sequence[Comparison]) -> dict[str, list[float]]:
    """Held-out loss at the last step, per method (baselines without their lr), one value per comparison (seed)."""
    if not results:
        raise ValueError("results must hold at least one Comparison")
    names = [k.split(" (lr")[0] for k in results[0].curves]
    return {n: [float(list(r.curves.values())[j][-1]) for r in results] for j, n in enumerate(names)}


def network_rows(results: Mapping[str, Comparison]) -> list[dict[str, object]]:
    """Rows of the network-task table: every method's last held-out loss per family, then every rule at ``phi0``."""
    finals = {label: final_losses([res]) for label, res in results.items()}
    cols = {label: f"{label}: step-30 val. MSE" for label in results}
    rows = [{"method": name, **{cols[lab]: finals[lab][name][0] for lab in results}}
            for name in finals[next(iter(finals))]]
    rules = next(iter(results.values())).phi0
    rows += [{"method": f"{name} at its initial $\\phi_0$",
              **{cols[lab]: float(results[lab].phi0[name][-1]) for lab in results}} for name in rules]
    return rows


def network_summary(results: Mapping[str, Comparison], baselines: Sequence[str] = BASELINES) -> list[dict[str, str]]:
    """One row per network family: its best DCO rule against the best tuned baseline (as :func:`verdict`), and each
    persistent rule's last held-out loss over the same rule at its initial ``phi0`` (below 1: meta-training helped)."""
    rows = []
    for label, res in results.items():
        fin = final_losses([res])
        base = min(baselines, key=lambda b: fin[b][0])
        best = min((k for k in fin if k.startswith("DCO")), key=lambda k: fin[k][0])
        row = {"task": label, "best DCO rule": best, "best baseline": base,
               "verdict": verdict(fin[best][0], fin[base][0])}
        for rule in res.phi0:
            ratio = fin[f"{rule} (persistent)"][0] / float(res.phi0[rule][-1])
            row[f"{rule} (persistent) / {rule} at phi0"] = f"{ratio:.2f}"
        rows.append(row)
    return rows


def verdict(dco: float, base: float) -> str:
    """``dco / base`` in words: below 0.8 wins, below 1.1 about even, else loses."""
    r = dco / base
    return f"{r:.2f}x the best baseline" + (" (wins)" if r < 0.8 else " (about even)" if r < 1.1 else " (loses)")


def verdict_rows(ls_final: Mapping[str, Sequence[float]], net_final: Mapping[str, Mapping[str, Sequence[float]]],
                 baselines: Sequence[str] = BASELINES) -> list[dict[str, str]]:
    """The thesis's three experimental claims against a run: every DCO rule on least squares (mean over seeds),
    the persistent rules on each network family (first seed), each against the best tuned baseline."""
    ls_best = float(np.mean([min(ls_final[b][i] for b in baselines) for i in range(len(ls_final[baselines[0]]))]))
    rows = []
    for rule in ls_final:
        if rule.startswith("DCO"):
            v = float(np.mean(ls_final[rule]))
            rows.append({"task": "least squares", "thesis": "DCO faster (Fig. 4.1)", "DCO rule": rule,
                         "held-out loss at step 30": f"{v:.3g} vs {ls_best:.3g}", "verdict": verdict(v, ls_best)})
    for lab, fin in net_final.items():
        nb = min(fin[b][0] for b in baselines)
        for rule in ("DCOG (persistent)", "DCOGD (persistent)", "DCOM (persistent)"):
            v = fin[rule][0]
            rows.append({"task": lab, "thesis": "DCO better (Figs. 4.2-4.3)", "DCO rule": rule,
                         "held-out loss at step 30": f"{v:.4f} vs {nb:.4f}", "verdict": verdict(v, nb)})
    return rows


# ---------------------------------------------------------------------------------------------- Section 6
@dataclass
class HorizonPitfall:
    """Per meta-step k = 0..K: the held-out loss after ONE step of the rule and the spectral radius of the step."""

    one_step: np.ndarray
    radius: np.ndarray
    l_star: float        # the held-out tasks' mean optimal loss

    def unstable(self, threshold: float) -> np.ndarray:
        """Meta-steps that the T = 1 objective rates better than the start but whose repeated step blows up."""
        return (self.radius > threshold) & (self.one_step < self.one_step[0])


def one_step_horizon_pitfall(n: int, p: int, kappa: float, n_tasks: int, meta_lr: float, steps: int,
                             generator: torch.Generator) -> HorizonPitfall:
    """DCOGD meta-trained with T = 1 on a fixed rotated design with ``kappa(XᵀX) = kappa`` and random targets.

    Unnormalized gradients, RMSProp (lr ``meta_lr``) on B from the safe step ``B_0 = I / (2 lambda_max)``.  After
    every meta-step: the held-out loss after one step of the current rule, and the spectral radius of the
    iteration matrix ``I - 2 B XᵀX`` (below 1 means that the step, repeated, converges).
    """
    for name, v in (("n", n), ("p", p), ("n_tasks", n_tasks)):
        _positive_int(name, v)
    if not (kappa >= 1 and meta_lr > 0 and isinstance(steps, int) and steps >= 0):
        raise ValueError(f"need kappa >= 1, meta_lr > 0 and steps a non-negative int; got {kappa!r}, "
                         f"{meta_lr!r}, {steps!r}")
    g = generator
    U, _ = torch.linalg.qr(torch.randn(n, p, generator=g))
    V, _ = torch.linalg.qr(torch.randn(p, p, generator=g))
    sv = torch.logspace(0, 0.5 * math.log10(kappa), p)
    X = U @ torch.diag(sv) @ V.T
    H = X.T @ X
    train, held = (LeastSquaresTasks(X, torch.randn(n_tasks, n, generator=g)) for _ in range(2))
    opt = DCOGeneralDescent(p, b0=float(0.5 / sv.max() ** 2), normalize=False)
    theta = held.init_params()
    G = held.grad(theta)
    log: list[tuple[float, float]] = []

    def track(k: int, o: DCOGeneralDescent) -> None:
        with torch.no_grad():
            radius = float(torch.linalg.eigvals(torch.eye(p) - 2 * o.B @ H).abs().max())
            log.append((float(held.val_loss(o(theta, G)[0]).mean()), radius))

    track(0, opt)  # the starting point, then one row per meta-step
    meta_train(opt, train, epochs=steps, callback=track,
               meta_optimizer=lambda ps: torch.optim.RMSprop(ps, lr=meta_lr))
    one_step, radius = np.array(log).T
    l_star = float(((X @ torch.linalg.lstsq(X, held.y.T).solution - held.y.T) ** 2).sum(0).mean())
    return HorizonPitfall(one_step=one_step, radius=radius, l_star=l_star)

"""Chapter 3 (Gautam 2024, ch. 4) at ``full`` scale as a sweep: ``python -m effcourse.sweep run 03-dco --out DIR``.

The heavy part of the chapter is Section 5, the comparisons of Section 4.6 (Figures 4.1-4.3): six meta-trainings
of the DCO rules through cvxpylayers, their evaluations and the tuned baselines, on one task family and one draw of
tasks.  Each comparison is one run of :func:`effcourse.dco.experiments.compare_on_family`:

* ``least-squares``: (4.22), p = 100, one run per experiment seed (``ls_n_seeds``, offset 100 as in the notebook);
* ``system-id``: Beverton-Holt (4.23) with a 1-5-5-1 network, 100 held-out tasks (offset 200);
* ``interpolation``: (4.24) with a 1-10-10-1 network, 10 held-out tasks as in Fig. 4.3 (offset 300).

Everything else (the identities of Section 1, the solver check of Section 2, Theorem 6, the pitfalls, the timing
of Section 7) takes seconds and stays in the notebook at every scale.  A run checkpoints after every phase of the
comparison and every :data:`CHECKPOINT_EVERY` meta-steps inside a meta-training, so a killed run resumes where it
stopped.  The notebook reads the runs back with :func:`collect`, which returns the
:class:`~effcourse.dco.experiments.Comparison` objects that the inline code would have computed.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import nn

from ..core.config import Config
from ..core.harness import experiment_seeds
from ..sweep.context import RunContext
from ..sweep.spec import RunSpec, training_flops
from ..sweep.store import Results
from .baselines import BASELINES
from .experiments import Comparison, compare_on_family, dco_rules
from .tasks import Tasks, beverton_holt_tasks, interpolation_tasks, least_squares_tasks

__all__ = ["CHECKPOINT_EVERY", "DATA", "DRY_RUN", "FAMILIES", "NETWORKS", "collect", "comparison_from_json",
           "comparison_to_json", "execute", "flops", "plan", "qp_solves"]

# A meta-step through cvxpylayers solves one QP per task (100 at full, ~2 ms each): five of them are seconds of
# work, so a killed run loses little, and a checkpoint (a few kB) is not written needlessly often.
CHECKPOINT_EVERY = 5

# cvxpylayers solves and differentiates on the CPU: the runs never hold a GPU (see effcourse.sweep.spec)
DEVICE = "cpu"
# what `sweep plan` prints beside its FLOP-based estimate (see effcourse.sweep.spec)
COST_NOTE = "about 249,000 convex programs solved by cvxpylayers on the CPU: roughly 0.1 CPU-hours"
DATA: tuple[str, ...] = ()  # every task is generated from the run's seed

_LR_LS, _LR_NET = (1e-4, 1e-3), (1e-2, 1e-1)  # two points of each quarter-decade grid, safe for two steps

DRY_RUN: dict[str, Any] = dict(
    fidelity_p=8, fidelity_tasks=2,
    thm_tasks=50, thm_few_tasks=3, thm_target_tasks=20, thm_steps=200,
    ls_train_tasks=2, ls_tune_tasks=2, ls_eval_tasks=2, ls_n_seeds=1, ls_epochs=2, eval_steps=2, ls_lrs=list(_LR_LS),
    net_train_tasks=2, net_tune_tasks=2, net_eval_tasks=2, interp_eval_tasks=2, net_train_points=32,
    net_val_points=16, net_epochs=2, net_lrs=list(_LR_NET),
    pit_tasks=10, pit_steps=20,
    cost_tasks=2, cost_repeats=1,
)
"""``--dry-run``: two meta-epochs, two evaluation steps, two tasks per set and two grid points, the thesis's task
sizes (p = 100 least squares, the 1-5-5-1 and 1-10-10-1 networks) and the cvxpylayers backend unchanged."""


@dataclass(frozen=True)
class Family:
    """One task family of Section 4.6: its sweep experiment, the notebook's label and seed offset, and its sizes."""

    experiment: str
    label: str
    offset: int
    network: bool

    def counts(self, cfg: Config) -> list[int]:
        """(meta-training, tuning, held-out) task counts."""
        if not self.network:
            return [cfg.ls_train_tasks, cfg.ls_tune_tasks, cfg.ls_eval_tasks]
        held = cfg.interp_eval_tasks if self.experiment == "interpolation" else cfg.net_eval_tasks
        return [cfg.net_train_tasks, cfg.net_tune_tasks, held]

    def epochs(self, cfg: Config) -> int:
        return cfg.net_epochs if self.network else cfg.ls_epochs

    def n_seeds(self, cfg: Config) -> int:
        return 1 if self.network else cfg.ls_n_seeds

    def draw(self, cfg: Config, generator: torch.Generator) -> Callable[[int], Tasks]:
        if not self.network:
            return partial(least_squares_tasks, p=cfg.ls_p, n=cfg.ls_n, generator=generator)
        family = interpolation_tasks if self.experiment == "interpolation" else beverton_holt_tasks
        return partial(family, n_train=cfg.net_train_points, n_val=cfg.net_val_points, generator=generator)

    def model(self, cfg: Config) -> tuple[Callable[[], nn.Module], tuple[int, ...], int, int]:
        """The inner model as a module (for FLOP counting), its input shape, training and validation points."""
        if not self.network:
            # one task's loss ||X theta - y||^2 is a bias-free linear layer applied to the n rows of X
            return (lambda: nn.Linear(cfg.ls_p, 1, bias=False)), (cfg.ls_p,), cfg.ls_n, cfg.ls_n
        hidden = 10 if self.experiment == "interpolation" else 5  # 1-10-10-1 (4.24), 1-5-5-1 (4.23)
        return ((lambda: nn.Sequential(nn.Linear(1, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                                       nn.Linear(hidden, 1))), (1,), cfg.net_train_points, cfg.net_val_points)


FAMILIES: dict[str, Family] = {f.experiment: f for f in (
    Family("least-squares", "least squares", 100, network=False),
    Family("system-id", "system identification (Beverton-Holt)", 200, network=True),
    Family("interpolation", "smooth interpolation", 300, network=True),
)}
NETWORKS: tuple[Family, ...] = (FAMILIES["system-id"], FAMILIES["interpolation"])


def _family(experiment: str) -> Family:
    if experiment not in FAMILIES:
        raise ValueError(f"experiment must be one of {sorted(FAMILIES)}; got {experiment!r}")
    return FAMILIES[experiment]


# ---------------------------------------------------------------------------------------------- plan
def plan(cfg: Config, seed: int) -> list[RunSpec]:
    """One run per comparison of Section 4.6, with the notebook's experiment seeds (offsets 100, 200, 300)."""
    return [RunSpec(f.experiment, {"counts": f.counts(cfg), "epochs": f.epochs(cfg)}, s)
            for f in FAMILIES.values() for s in experiment_seeds(seed, f.n_seeds(cfg), f.offset)]


def _evaluations(spec: RunSpec, cfg: Config) -> dict[str, float]:
    """How often one run evaluates a task: gradients on the training points (``grad``), validation losses
    (``val``), and DCO steps, each one QP solve in the forward and one adjoint solve in the backward (``qp``)."""
    f = _family(spec.experiment)
    n_train, n_tune, n_held = spec.params["counts"]
    epochs, steps = spec.params["epochs"], cfg.eval_steps
    rules = 3  # DCOG, DCOGD, DCOM, each meta-trained reset and persistent, then scored with phi0 and both phi
    lrs = len(cfg.net_lrs if f.network else cfg.ls_lrs)
    meta = 2 * rules * epochs * n_train          # one gradient and one validation loss (with backward) per task
    dco_eval = 3 * rules * steps * n_held        # phi0, reset, persistent
    base = len(BASELINES) * steps * (lrs * n_tune + n_held)
    return {"grad": meta + dco_eval + base, "val": meta + 3 * rules * (steps + 1) * n_held
            + len(BASELINES) * (steps + 1) * (lrs * n_tune + n_held), "qp": meta + dco_eval}


def flops(spec: RunSpec, cfg: Config) -> float:
    """FLOPs of one run's inner problems: a forward and backward pass per training gradient, a forward (and, in
    meta-training, a backward) pass per validation loss.  The QPs are not counted: cvxpylayers solves them on the
    CPU (see :func:`qp_solves` and Section 7 of the notebook), which is what a run's wall time actually follows."""
    make, shape, n_tr, n_val = _family(spec.experiment).model(cfg)
    ev = _evaluations(spec, cfg)
    return (training_flops(make, shape, ev["grad"] * n_tr)
            + training_flops(make, shape, ev["val"] * n_val, backward=False))


def qp_solves(spec: RunSpec, cfg: Config) -> int:
    """Convex programs that one run solves with cvxpylayers (one per task and DCO step, forward only)."""
    return int(_evaluations(spec, cfg)["qp"])


# ---------------------------------------------------------------------------------------------- execute
@dataclass
class _Checkpoint:
    """:class:`effcourse.dco.meta.MetaCheckpoint` on a sweep's :class:`~effcourse.sweep.RunContext`."""

    ctx: RunContext
    name: str
    every: int

    def load(self) -> Mapping[str, Any] | None:
        got = self.ctx.load(self.name)
        return None if got is None else got[1]

    def save(self, step: int, state: Mapping[str, Any]) -> None:
        self.ctx.save(self.name, step, **state)


def execute(spec: RunSpec, ctx: RunContext) -> dict[str, Any]:
    """One comparison of Section 4.6 (:func:`~effcourse.dco.experiments.compare_on_family`), as the notebook's
    inline code runs it at the same seed; returns :func:`comparison_to_json` of it.

    Runs on the CPU whatever ``ctx.device`` is: the conic solver behind cvxpylayers is CPU-only, and the tasks
    (100 x 100 matrices, networks of 46 and 141 weights) are too small for a GPU to pay for the transfers.
    """
    f = _family(spec.experiment)
    cfg = ctx.cfg
    counts, epochs = spec.params["counts"], spec.params["epochs"]
    lam0, b0 = (cfg.net_lam0, cfg.net_b0) if f.network else (cfg.lam0, cfg.b0)
    rules = dco_rules(lam0=lam0, b0=b0, m0=cfg.m0, backend=cfg.backend)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # the chapter runs in float64 (the notebook sets it once)
    try:
        with warnings.catch_warnings():
            # diffcp's backward pass emits a NumPy-2 DeprecationWarning per solved problem
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            g = ctx.generator("tasks")  # seeded with spec.seed: the notebook's run.generator_for(offset + i)
            res = compare_on_family(f.draw(cfg, g), counts, rules, cfg.net_lrs if f.network else cfg.ls_lrs,
                                    epochs, cfg.eval_steps, init_generator=g if f.network else None,
                                    checkpoint=_Checkpoint(ctx, "compare", CHECKPOINT_EVERY))
    finally:
        torch.set_default_dtype(old)
    return comparison_to_json(res)


# ---------------------------------------------------------------------------------------------- results
def _floats(t: torch.Tensor | Sequence[float]) -> list[float]:
    return [float(v) for v in (t.tolist() if isinstance(t, torch.Tensor) else t)]


def comparison_to_json(res: Comparison) -> dict[str, Any]:
    """A :class:`Comparison` as JSON values; every mapping as a list of pairs, because the order of its keys is
    the order of the methods in tables and plots (a results folder writes objects with sorted keys)."""
    return {
        "curves": [[k, _floats(v)] for k, v in res.curves.items()],
        "phi0": [[k, _floats(v)] for k, v in res.phi0.items()],
        "best_lr": [[k, float(v)] for k, v in res.best_lr.items()],
        "train_losses": [[rule, bool(persistent), _floats(v)] for (rule, persistent), v in res.train_losses.items()],
        # for a reader of result.json: every method's held-out loss after the last step
        "final": {k: float(v[-1]) for k, v in res.curves.items()},
    }


def comparison_from_json(d: Mapping[str, Any]) -> Comparison:
    """The inverse of :func:`comparison_to_json`: curves as float64 tensors, as the inline code returns them."""
    for key in ("curves", "phi0", "best_lr", "train_losses"):
        if key not in d:
            raise KeyError(f"a comparison result needs {key!r}; this one holds {sorted(d)}")

    def tensor(values: Sequence[float]) -> torch.Tensor:
        return torch.tensor([float(x) for x in values], dtype=torch.float64)

    return Comparison(curves={k: tensor(v) for k, v in d["curves"]}, phi0={k: tensor(v) for k, v in d["phi0"]},
                      best_lr={k: float(v) for k, v in d["best_lr"]},
                      train_losses={(r, bool(p)): [float(x) for x in v] for r, p, v in d["train_losses"]})


def collect(results: Results, experiment: str, seeds: Sequence[int]) -> list[Comparison]:
    """The comparisons of ``experiment`` at experiment ``seeds`` (in that order) from a sweep's ``results``
    (:meth:`effcourse.Run.sweep_results`): what ``compare_on_family`` returns at each seed in the notebook."""
    _family(experiment)
    by_seed = {spec.seed: res for spec, res in results.where(experiment)}
    missing = [s for s in seeds if s not in by_seed]
    if missing:
        raise KeyError(f"the sweep holds no {experiment!r} run at seeds {missing}; it has seeds {sorted(by_seed)} "
                       "(another base seed or configuration?)")
    return [comparison_from_json(by_seed[s]) for s in seeds]

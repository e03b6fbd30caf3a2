"""Chapter 1 at the thesis's scale as a sweep (``python -m effcourse.sweep run 01-implicit-models``).

The thesis's chapter (Gautam 2024, ch. 2) has no experiment section and no table: its conclusion names 1-D function
interpolation and MNIST / Fashion-MNIST classification, with no settings and no numbers.  The sweep runs the book's
protocol (:mod:`effcourse.implicit.config`, ``FULL``) as two experiments of independent runs:

- ``interp``: one run per target and seed of :func:`~effcourse.implicit.experiments.interpolation_sweep`:
  Algorithm 1 with local search (Remark 2) and with Algorithm 2, and end-to-end projected-gradient training of
  (2.4), on the same data;
- ``digits``: one run per seed of :func:`~effcourse.implicit.experiments.digits_sweep` on MNIST: Algorithm 2 on
  one-hot targets (2.8), local search with the cross-entropy (2.9), end to end with both losses.

Seeds follow the notebook's ``run.seeds``: interpolation ``offset=0`` (initializations) and ``offset=500`` (test
points), digits ``offset=100``.  Each training checkpoints through the run's context (sequential ones after every
block, end-to-end ones every :data:`~effcourse.implicit.experiments.CHECKPOINT_STEPS` steps), so a killed run
resumes where it stopped.  A run's result holds its learning curves and block records; its trained models are in
``models.pt`` next to ``result.json``.  :func:`interpolation` and :func:`digits` rebuild from them exactly what the
two sweeps return inline.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..core.data import dataset
from ..core.harness import experiment_seeds
from ..sweep import Results, RunContext, RunSpec, training_flops
from . import experiments as ex
from .blockwise import BlockRecord, BlockTriangularModel, SequentialResult, least_squares_flops, partition
from .config import FULL
from .model import E2EHistory, ImplicitModel

__all__ = ["DATA", "DRY_RUN", "MNIST_SIZES", "digits", "execute", "flops", "interpolation", "plan"]

# what `sweep plan` prints beside its FLOP-based estimate (see effcourse.sweep.spec)
COST_NOTE = ("float64 least squares and thousands of small steps: bound by per-step overhead, not FLOPs (the "
             "chapter estimates ~0.4 GPU-hours at the float64 rate)")
DATA = (FULL["dataset"],)  # the one data set the digits runs read ("mnist"; "fashion-mnist" if FULL says so)
# Full-size models (n = 100 in 5 blocks, n = 500 in 10 blocks on 785 inputs) and data (1,000 interpolation points;
# the 32 synthetic MNIST images), every training cut to two steps, one seed each, both targets; the exact checks
# of Theorems 2-3 that the notebook runs inline cut to 2 random instances.  Each sequential training writes one
# checkpoint per block, so a run writes at least 10, enough for the kill-and-resume test.
DRY_RUN = dict(thm_instances=2, interp_n_seeds=1, interp_local_steps=2, interp_alternations=1, interp_steps=2,
               interp_e2e_steps=2, interp_eval_every=1, cls_n_seeds=1, cls_alternations=1, cls_steps=2,
               cls_local_steps=2, cls_e2e_steps=2, cls_eval_every=1)
#: (training images, test images, pixels) of MNIST and Fashion-MNIST, for :func:`flops` (which reads no data).
MNIST_SIZES = (60_000, 10_000, 784)
_MODELS = "models.pt"


def _seeds(cfg: Mapping[str, Any], seed: int) -> dict[str, list[int]]:
    """The notebook's ``run.seeds`` calls, in the same order and with the same offsets."""
    return {"interp": experiment_seeds(seed, cfg["interp_n_seeds"]),
            "interp_test": experiment_seeds(seed, cfg["interp_n_seeds"], 500),
            "digits": experiment_seeds(seed, cfg["cls_n_seeds"], 100)}


def plan(cfg: Mapping[str, Any], seed: int) -> list[RunSpec]:
    """Every (target, seed) of the interpolation comparison and every seed of the MNIST one (Section 7)."""
    s = _seeds(cfg, seed)
    specs = [RunSpec("interp", {"target": t, "test_seed": ts}, si)
             for t in cfg["interp_targets"] for si, ts in zip(s["interp"], s["interp_test"])]
    specs += [RunSpec("digits", {"dataset": cfg["dataset"]}, sd) for sd in s["digits"]]
    return specs


# ------------------------------------------------------------------------------------------------ execute
def _sequential_record(r: SequentialResult) -> dict[str, Any]:
    return {"blocks": [asdict(b) for b in r.blocks]}


def _sequential_weights(r: SequentialResult) -> dict[str, Any]:
    m = r.model
    return {"p": m.p, "q": m.q, "activation": m.activation, "blocks": [b.detach().cpu() for b in m.blocks],
            "C": m.C.detach().cpu()}


def _implicit_weights(m: ImplicitModel) -> dict[str, Any]:
    return {"activation": m.activation,
            **{k: (None if v is None else v.detach().cpu()) for k, v in (("A", m.A), ("B", m.B), ("C", m.C),
                                                                         ("D", m.D))}}


def execute(spec: RunSpec, ctx: RunContext) -> dict[str, Any]:
    """Train one run with the library's own functions (:func:`~effcourse.implicit.experiments.interpolation_run`,
    :func:`~effcourse.implicit.experiments.digits_run`), checkpointing through ``ctx``; the result is the run's
    scores, learning curves and block records, the trained models go to ``models.pt`` in the run's folder."""
    cfg, dt = ctx.cfg, getattr(torch, ctx.cfg.dtype)
    if spec.experiment == "interp":
        r = ex.interpolation_run(cfg, spec.params["target"], spec.seed, spec.params["test_seed"], dt, ctx.device,
                                 ctx=ctx)
        torch.save({"seq": _sequential_weights(r.seq), "alt": _sequential_weights(r.alt),
                    "e2e": _implicit_weights(r.e2e_model)}, ctx.dir / _MODELS)
        return {"seq": _sequential_record(r.seq), "seq_test": r.seq_test, "alt": _sequential_record(r.alt),
                "alt_test": r.alt_test, "hist": asdict(r.hist), "flop_factor": r.flop_factor}
    if spec.experiment == "digits":
        data = dataset(spec.params["dataset"], flat=True, dtype=dt, device=ctx.device)
        d = ex.digits_run(cfg, data, spec.seed, ctx=ctx)
        torch.save({"seq": _sequential_weights(d.seq), "seq_ce": _sequential_weights(d.seq_ce)}, ctx.dir / _MODELS)
        return {"seq": _sequential_record(d.seq), "seq_acc": d.seq_acc, "seq_ce": _sequential_record(d.seq_ce),
                "seq_ce_acc": d.seq_ce_acc, "hists": {k: asdict(h) for k, h in d.hists.items()}}
    raise ValueError(f"spec.experiment must be 'interp' or 'digits'; got {spec.experiment!r}")


# ------------------------------------------------------------------------------------------------ collect
def _load_models(results: Results, spec: RunSpec, device: str | torch.device) -> dict[str, Any]:
    path = results.run_dir(spec.run_id) / _MODELS
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: the run {spec.run_id} finished without its models; remove its "
                                f"result.json and run the sweep again")
    return torch.load(path, map_location=device)  # tensors, numbers and strings only


def _sequential(record: Mapping[str, Any], weights: Mapping[str, Any]) -> SequentialResult:
    first = weights["blocks"][0] if weights["blocks"] else weights["C"]
    model = BlockTriangularModel(weights["p"], weights["q"], weights["activation"], device=first.device,
                                 dtype=first.dtype)
    for at in weights["blocks"]:
        model.add_block(at, at.new_zeros(weights["q"], model.n + at.shape[0]))
    model.C = nn.Parameter(weights["C"].clone())
    return SequentialResult(model, [BlockRecord(**b) for b in record["blocks"]])


def _pick(results: Results, experiment: str, seeds: Sequence[int], **params: Any) -> dict[int, tuple[RunSpec, Any]]:
    got = {s.seed: (s, r) for s, r in results.where(experiment, **params)}
    missing = [x for x in seeds if x not in got]
    if missing:
        raise KeyError(f"the sweep holds no {experiment!r} run with {params} for seeds {missing} (it has "
                       f"{sorted(got)}): the notebook's SEED and the sweep's --seed must agree")
    return {x: got[x] for x in seeds}


def interpolation(results: Results, cfg: Mapping[str, Any], seeds: Sequence[int], test_seeds: Sequence[int],
                  device: str | torch.device = "cpu") -> dict[tuple[str, int], ex.InterpolationRun]:
    """What :func:`~effcourse.implicit.experiments.interpolation_sweep` returns for ``seeds`` (and their
    ``test_seeds``), read from the sweep's ``interp`` runs, models on ``device``."""
    if len(seeds) != len(test_seeds):
        raise ValueError(f"seeds and test_seeds must have the same length; got {len(seeds)} and {len(test_seeds)}")
    out = {}
    for target in cfg["interp_targets"]:
        runs = _pick(results, "interp", seeds, target=target)
        for seed, test_seed in zip(seeds, test_seeds):
            spec, r = runs[seed]
            if spec.params["test_seed"] != test_seed:
                raise ValueError(f"run {spec.run_id} drew its test points from seed {spec.params['test_seed']}; the "
                                 f"notebook expects {test_seed}")
            w = _load_models(results, spec, device)
            e2e = ImplicitModel.from_matrices(w["e2e"]["A"], w["e2e"]["B"], w["e2e"]["C"], w["e2e"]["D"],
                                              activation=w["e2e"]["activation"])
            out[target, seed] = ex.InterpolationRun(_sequential(r["seq"], w["seq"]), r["seq_test"],
                                                    _sequential(r["alt"], w["alt"]), r["alt_test"], e2e,
                                                    E2EHistory(**r["hist"]), r["flop_factor"])
    return out


def digits(results: Results, cfg: Mapping[str, Any], seeds: Sequence[int],
           device: str | torch.device = "cpu") -> dict[int, ex.DigitsRun]:
    """What :func:`~effcourse.implicit.experiments.digits_sweep` returns for ``seeds``, read from the sweep's
    ``digits`` runs on ``cfg.dataset``, models on ``device``."""
    out = {}
    for seed, (spec, r) in _pick(results, "digits", seeds, dataset=cfg["dataset"]).items():
        w = _load_models(results, spec, device)
        out[seed] = ex.DigitsRun(_sequential(r["seq"], w["seq"]), r["seq_acc"], _sequential(r["seq_ce"], w["seq_ce"]),
                                 r["seq_ce_acc"], {k: E2EHistory(**h) for k, h in r["hists"].items()})
    return out


# ------------------------------------------------------------------------------------------------ FLOPs
class _Subproblem(nn.Module):
    """One step of a sequential subproblem (2.7) of block ``ni`` after ``before`` units: the shallow net
    ``[X_prev, phi(Utilde Atilde^T)] C^T`` on ``Utilde = [X_prev, U]``.  ``shallow``: only ``C_i`` is used, and
    frozen (Algorithm 2's step on (2.12)); else all of ``C_1..C_i`` train with ``Atilde`` (local search, Remark 2)."""

    def __init__(self, before: int, p: int, ni: int, q: int, shallow: bool):
        super().__init__()
        self.before, self.shallow = before, shallow
        self.a = nn.Linear(before + p, ni, bias=False)
        self.c = nn.Linear(ni if shallow else before + ni, q, bias=False)
        self.c.weight.requires_grad_(not shallow)

    def forward(self, ut: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.a(ut))
        return self.c(x if self.shallow else torch.cat([ut[:, : self.before], x], dim=1))


def _sequential_flops(m: int, p: int, q: int, n: int, L: int, solver: str, steps: int, alternations: int = 1) -> float:
    """Training FLOPs of Algorithm 1 (``solver`` ``"local"`` or ``"altmin"``): Adam steps on the subproblems,
    counted on the meta device, plus :func:`~effcourse.implicit.blockwise.least_squares_flops` for (2.11)."""
    total, before = 0.0, 0
    for ni in partition(n, L):
        def make(before=before, ni=ni):
            return _Subproblem(before, p, ni, q, shallow=solver == "altmin")

        step = training_flops(make, (before + p,), m)
        if solver == "altmin":
            ls = least_squares_flops(m, before + ni) + 2 * m * (before + ni) * q
            total += alternations * (ls + 2 * m * before * q + steps * step) + ls
        else:
            total += steps * step
        before += ni
    return total


def _e2e_flops(m: int, m_test: int, p: int, q: int, n: int, kappa: float, steps: int, batch: int | None,
               eval_every: int, budget: float | None) -> float:
    """FLOPs of end-to-end training (2.4) by projected gradient.  A fixed point costs ``K`` products with ``A``;
    ``K`` is taken as the Picard bound for tolerance 1e-6 at contraction ``kappa`` (an upper bound: ReLU units at
    zero contract faster).  The adjoint solve of the backward pass costs as much, plus the weight gradients.  The
    run stops at ``budget`` FLOPs; evaluation (test set, and the training loss on all rows for minibatches) every
    ``eval_every`` steps."""
    K = math.ceil(math.log(1e-6) / math.log(kappa))
    per_row = 2 * K * n * n + 2 * n * (p + q) + 2 * p * q       # one forward: K Picard products, B u, C x, D u
    bs = m if batch is None else min(batch, m)
    per_step = bs * (2 * per_row + 2 * n * n + 4 * n * (p + q))  # forward, adjoint solve, gradients
    run = steps if budget is None else min(steps, math.ceil(budget / per_step))
    evals = run // eval_every + 1
    return run * per_step + evals * per_row * (m_test + (0 if bs == m else m))


def flops(spec: RunSpec, cfg: Mapping[str, Any]) -> float:
    """Training and evaluation FLOPs of one run (for ``sweep plan``'s GPU-hours).  The runs are float64, whose peak
    on an H100 is about 1/15 of the bfloat16 one that the plan's throughput assumes (the notebook's closing
    section gives both figures)."""
    factor = cfg["e2e_flop_factor"]
    if spec.experiment == "interp":
        m, mt, n, L = cfg["interp_train"], cfg["interp_test"], cfg["interp_n"], cfg["interp_L"]
        seq = _sequential_flops(m, 2, 1, n, L, "local", cfg["interp_local_steps"])
        alt = _sequential_flops(m, 2, 1, n, L, "altmin", cfg["interp_steps"], cfg["interp_alternations"])
        e2e = _e2e_flops(m, mt, 2, 1, n, cfg["interp_kappa"], cfg["interp_e2e_steps"], None,
                         cfg["interp_eval_every"], None if factor is None else factor * seq)
        return seq + alt + e2e
    if spec.experiment == "digits":
        m, mt, pixels = MNIST_SIZES
        p, q, n, L = pixels + 1, 10, cfg["cls_n"], cfg["cls_L"]
        alt = _sequential_flops(m, p, q, n, L, "altmin", cfg["cls_steps"], cfg["cls_alternations"])
        ce = _sequential_flops(m, p, q, n, L, "local", cfg["cls_local_steps"])
        e2e = _e2e_flops(m, mt, p, q, n, cfg["cls_kappa"], cfg["cls_e2e_steps"], cfg["cls_batch_size"],
                         cfg["cls_eval_every"], None if factor is None else factor * alt)
        return alt + ce + 2 * e2e  # the squared loss and the cross-entropy
    raise ValueError(f"spec.experiment must be 'interp' or 'digits'; got {spec.experiment!r}")

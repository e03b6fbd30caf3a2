"""Chapter 6 at the thesis's scale as a resumable sweep (Savarese 2025, 4.3-4.5; ``python -m effcourse.sweep``).

Every heavy experiment of the notebook at ``full`` is a list of independent runs (:func:`plan`), each trained by
the library's own drivers in :mod:`effcourse.sparsification.experiments` with every training phase checkpointed
(:func:`execute`), and read back by the notebook through the ``collect_*`` functions, which return exactly what the
inline drivers return:

* ``oneshot-mp`` / ``oneshot-gmp`` / ``oneshot-cs``: Table 4.1 (one-shot pruning) on ResNet-20 and VGG-16;
* ``tickets-imp`` / ``tickets-impc`` / ``tickets-cs``: Table 4.2 (ticket search, Figs 4.3-4.4), one run per
  search: IMP's 30 rounds build on each other, so a search is one run whose rounds are named checkpoint phases;
* ``hp``: one CS round per ``beta_final`` and ``lambda`` (Figs 4.5-4.6, ResNet-20);
* ``sm-cs`` / ``sm-ss``: supermasks on a frozen Conv-6 (Figs 4.9-4.10).

Seeds are ``run.seeds(cfg.n_seeds)`` (offset 0), as the notebook's.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ..core.config import Config
from ..core.data import Split, augmentation, dataset
from ..core.harness import experiment_seeds
from ..sweep.spec import RunSpec, training_flops
from . import cs
from . import experiments as ex
from .masks import Masks, Ticket

__all__ = ["DATA", "DRY_RUN", "EXPERIMENTS", "THESIS", "TOLERANCE", "collect_hyperparameters", "collect_oneshot",
           "collect_supermasks", "collect_tickets", "execute", "flops", "plan", "thesis_comparison"]

DATA: tuple[str, ...] = ("cifar10",)

# `sweep run --dry-run`: every experiment and both networks at full size, one seed, one or two values per grid,
# phases of one or two epochs (two where a kill-and-resume test needs two checkpoint writes in one phase), 8
# training and test images, so that the whole chapter runs on one CPU thread in well under a minute.
DRY_RUN: dict[str, Any] = dict(
    n_seeds=1, round_epochs=1, rewind_epoch=1, cs_rounds=1, cs_s_inits=[-0.3, 0.0], imp_rounds=1, impc_rounds=1,
    oneshot_epochs=2, finetune_epochs=1, oneshot_lr_drops=[1], mp_sparsities=[0.9], gmp_sparsities=[0.9],
    cs_oneshot=[(-0.3, 1e-8)], hp_beta_finals=[200.0], hp_lams=[0.0, 1e-8], hp_epochs=2, sm_epochs=1,
    sm_cs_s_inits=[0.0], sm_cs_lams=[1e-8], sm_ss_s_inits=[1.0], max_examples=8,
)

EXPERIMENTS = ("oneshot-mp", "oneshot-gmp", "oneshot-cs", "tickets-imp", "tickets-impc", "tickets-cs", "hp", "sm-cs",
               "sm-ss")

_CIFAR = {"train": 50_000, "test": 10_000, "shape": (3, 32, 32), "classes": 10}


# ---------------------------------------------------------------------------------------------- the plan
def _hp_settings(cfg: Config) -> list[tuple[float, float]]:
    """The distinct ``(lambda, beta_final)`` rounds of the hyperparameter study: each ``beta_final`` at
    ``cfg.lam``, each ``lambda`` at ``cfg.beta_final`` (the setting both sweeps share runs once)."""
    pairs = [(cfg.lam, b) for b in cfg.hp_beta_finals] + [(lam, cfg.beta_final) for lam in cfg.hp_lams]
    return list(dict.fromkeys((float(a), float(b)) for a, b in pairs))


def plan(cfg: Config, seed: int) -> list[RunSpec]:
    """The chapter's ``full`` experiments as independent runs, for seeds ``run.seeds(cfg.n_seeds)``.

    Per network of ``cfg.nets`` and seed: the dense network with MP, one GMP run per ``cfg.gmp_sparsities``, one CS
    run per ``cfg.cs_oneshot`` (Table 4.1); IMP, IMP-C and one CS search per ``cfg.cs_s_inits`` (Table 4.2).  Per
    seed: the hyperparameter rounds (ResNet-20, Figs 4.5-4.6) and the supermasks (``cfg.sm_model``, Figs 4.9-4.10).
    """
    seeds = experiment_seeds(seed, cfg.n_seeds, 0)
    specs: list[RunSpec] = []
    for net in cfg.nets:
        for s in seeds:
            specs.append(RunSpec("oneshot-mp", {"net": net}, s))
            specs += [RunSpec("oneshot-gmp", {"net": net, "sparsity": float(q)}, s) for q in cfg.gmp_sparsities]
            specs += [RunSpec("oneshot-cs", {"net": net, "s_init": float(s0), "lam": float(lam)}, s)
                      for s0, lam in cfg.cs_oneshot]
            specs += [RunSpec("tickets-imp", {"net": net}, s), RunSpec("tickets-impc", {"net": net}, s)]
            specs += [RunSpec("tickets-cs", {"net": net, "s_init": float(s0)}, s) for s0 in cfg.cs_s_inits]
    for s in seeds:
        specs += [RunSpec("hp", {"lam": lam, "beta_final": b}, s) for lam, b in _hp_settings(cfg)]
        specs += [RunSpec("sm-cs", {"s_init": float(s0), "lam": float(lam)}, s)
                  for s0 in cfg.sm_cs_s_inits for lam in cfg.sm_cs_lams]
        specs += [RunSpec("sm-ss", {"s_init": float(s0)}, s) for s0 in cfg.sm_ss_s_inits]
    return specs


# ---------------------------------------------------------------------------------------------- one run
def net_config(cfg: Config, net: str | None) -> Config:
    """``cfg`` for network ``net``: VGG-16 trains at ``cfg.vgg_batch_size`` (64 in the thesis, 4.3.3)."""
    if net is None or net == cfg.model:
        return cfg
    if net not in cfg.nets:
        raise ValueError(f"net must be one of cfg.nets {cfg.nets}; got {net!r}")
    return cfg.replace(model=net, batch_size=cfg.vgg_batch_size if net == "vgg16" else cfg.batch_size)


def _subsample(data: Split, n: int) -> Split:
    return Split(data.x_train[:n], data.y_train[:n], data.x_test[:n], data.y_test[:n], data.num_classes)


def protocol(cfg: Config, seed: int, device: str | torch.device = "cpu", net: str | None = None) -> ex.Protocol:
    """The :class:`~effcourse.sparsification.experiments.Protocol` of one run: ``cfg.dataset`` from
    ``$EFFCOURSE_DATA`` (the first ``cfg.max_examples`` images in a dry run), the run's seed, crops and flips."""
    cfg = net_config(cfg, net)
    data = dataset(cfg.dataset, flat=cfg.model == "mlp", device=device)
    if cfg.max_examples:
        data = _subsample(data, int(cfg.max_examples))
    return ex.Protocol(cfg, data, [seed], augment=augmentation(cfg.dataset), device=device)


def _revived(before: Masks, after: Masks) -> float:
    """The fraction of the weights kept by ``after`` that ``before`` had pruned (0 for nested masks)."""
    back = sum(int((after[n] * (1 - before[n])).sum()) for n in before)
    return back / max(1, sum(int(m.sum()) for m in after.values()))


def _tickets(tickets: Sequence[Ticket]) -> list[dict[str, Any]]:
    """Tickets as JSON: round, remaining, accuracy, the trained round's accuracy, and the fraction revived from the
    previous ticket (the masks themselves stay out: VGG-16's are 15 M entries per round)."""
    out = []
    for i, t in enumerate(tickets):
        out.append({"round": int(t.round), "remaining": float(t.remaining), "accuracy": float(t.accuracy),
                    "trained_acc": float(t.info.get("trained_acc", t.accuracy)),
                    "revived": _revived(tickets[i - 1].masks, t.masks) if i else 0.0})
    return out


def execute(spec: RunSpec, ctx: Any) -> dict[str, Any]:
    """Train one run of :func:`plan` with the library's drivers, every phase checkpointed through
    ``ctx.fit_checkpoint`` so that a killed run resumes (random streams included); a JSON-able result."""
    if spec.experiment not in EXPERIMENTS:
        raise ValueError(f"spec.experiment must be one of {EXPERIMENTS}; got {spec.experiment!r}")
    q = dict(spec.params)
    p = protocol(ctx.cfg, spec.seed, ctx.device, q.get("net"))
    ck = ctx.fit_checkpoint
    e = spec.experiment
    if e == "oneshot-mp":
        dense, mp = ex.oneshot_dense_mp(p, spec.seed, ck)
        return {"dense": float(dense), "MP": [[float(a), float(b)] for a, b in mp]}
    if e in ("oneshot-gmp", "oneshot-cs", "hp", "sm-cs", "sm-ss"):
        if e == "oneshot-gmp":
            sparsity, acc = ex.oneshot_gmp(p, spec.seed, q["sparsity"], ck)
        elif e == "oneshot-cs":
            sparsity, acc = ex.oneshot_cs(p, spec.seed, q["s_init"], q["lam"], ck)
        elif e == "hp":
            remaining, acc = ex.hyperparameter_round(p, spec.seed, q["lam"], q["beta_final"], ck)
            return {"remaining": float(remaining), "accuracy": float(acc)}
        elif e == "sm-cs":
            sparsity, acc = ex.supermask_cs(p, spec.seed, q["s_init"], q["lam"], ck)
        else:
            sparsity, acc = ex.supermask_ss(p, spec.seed, q["s_init"], ck)
        return {"sparsity": float(sparsity), "accuracy": float(acc)}
    if e in ("tickets-imp", "tickets-impc"):
        return {"tickets": _tickets(ex.ticket_imp(p, spec.seed, rewind=e == "tickets-imp", checkpoints=ck))}
    res = ex.ticket_cs(p, spec.seed, q["s_init"], ck)
    return {"tickets": _tickets(res.tickets), "round_accuracy": [float(a) for a in res.round_accuracy],
            "soft_fraction": [float(f) for f in res.soft_fraction]}


# ---------------------------------------------------------------------------------------------- cost
_MODELS = {"resnet20": ("effcourse.core.models", "ResNet20"), "vgg16": ("effcourse.sparsification.models", "VGG16"),
           "conv6": ("effcourse.sparsification.models", "Conv6")}


@functools.cache
def _per_sample(net: str, backward: bool = True) -> float:
    """FLOPs of one CIFAR-10 image through ``net``: forward and backward (training) or forward only (testing)."""
    module, name = _MODELS[net]
    cls = getattr(importlib.import_module(module), name)
    c, h, w = _CIFAR["shape"]
    return training_flops(lambda: cls(num_classes=_CIFAR["classes"], in_channels=c), (c, h, w), 1, backward=backward)


def flops(spec: RunSpec, cfg: Config) -> float:
    """FLOPs of one run: its training epochs x CIFAR-10's 50,000 images (forward and backward) plus one pass over
    the 10,000 test images per accuracy it reports (:func:`effcourse.sweep.training_flops`, on the meta device)."""
    net = spec.params.get("net", cfg.sm_model if spec.experiment.startswith("sm-") else cfg.model)
    if net not in _MODELS:
        raise ValueError(f"no FLOP count for network {net!r}; known: {sorted(_MODELS)}")
    n_train = min(_CIFAR["train"], cfg.max_examples or _CIFAR["train"])
    n_test = min(_CIFAR["test"], cfg.max_examples or _CIFAR["test"])
    e = spec.experiment
    oneshot = cfg.oneshot_epochs + cfg.finetune_epochs
    epochs, evals = {
        "oneshot-mp": (cfg.oneshot_epochs + len(cfg.mp_sparsities) * cfg.finetune_epochs, 1 + len(cfg.mp_sparsities)),
        "oneshot-gmp": (oneshot, 1), "oneshot-cs": (oneshot, 2),
        "tickets-imp": ((cfg.imp_rounds + 1) * cfg.round_epochs, cfg.imp_rounds + 1),
        "tickets-impc": (2 * cfg.impc_rounds * cfg.round_epochs, 2 * cfg.impc_rounds),
        "tickets-cs": (2 * cfg.cs_rounds * cfg.round_epochs, 2 * cfg.cs_rounds),
        "hp": (cfg.hp_epochs, 1), "sm-cs": (cfg.sm_epochs, 1), "sm-ss": (cfg.sm_epochs, 1),
    }[e]
    return _per_sample(net) * epochs * n_train + _per_sample(net, False) * evals * n_test


# ---------------------------------------------------------------------------------------------- the notebook's view
def _by_seed(results: Any, experiment: str, seed: int, **params: Any) -> list[Mapping[str, Any]]:
    return [r for s, r in results.where(experiment, **params) if s.seed == seed]


def _one(results: Any, experiment: str, seed: int, **params: Any) -> Mapping[str, Any]:
    got = _by_seed(results, experiment, seed, **params)
    if len(got) != 1:
        raise KeyError(f"{len(got)} runs of {experiment!r} with seed {seed} and {params} in the sweep; expected one")
    return got[0]


def _as_tickets(method: str, rows: Sequence[Mapping[str, Any]], **info: Any) -> list[Ticket]:
    return [Ticket(method, int(t["round"]), {}, float(t["remaining"]), float(t["accuracy"]),
                   info={"trained_acc": float(t["trained_acc"]), "revived": float(t["revived"]), **info})
            for t in rows]


def collect_oneshot(results: Any, cfg: Config, seeds: Sequence[int], net: str | None = None
                    ) -> dict[int, dict[str, Any]]:
    """What :func:`~effcourse.sparsification.experiments.oneshot_pruning` returns, from the sweep (``net``:
    ``cfg.model`` by default)."""
    net = cfg.model if net is None else net
    out = {}
    for seed in seeds:
        mp = _one(results, "oneshot-mp", seed, net=net)
        gmp = [_one(results, "oneshot-gmp", seed, net=net, sparsity=float(q)) for q in cfg.gmp_sparsities]
        csp = [_one(results, "oneshot-cs", seed, net=net, s_init=float(s0), lam=float(lam))
               for s0, lam in cfg.cs_oneshot]
        out[seed] = {"dense": float(mp["dense"]), "MP": [(float(a), float(b)) for a, b in mp["MP"]],
                     "GMP": [(float(r["sparsity"]), float(r["accuracy"])) for r in gmp],
                     "CS": [(float(r["sparsity"]), float(r["accuracy"])) for r in csp]}
    return out


def collect_tickets(results: Any, cfg: Config, seeds: Sequence[int], net: str | None = None
                    ) -> dict[int, dict[str, Any]]:
    """What :func:`~effcourse.sparsification.experiments.ticket_search` returns, from the sweep.  The tickets carry
    no masks (``masks == {}``); ``info["revived"]`` holds the fraction of each ticket's weights that the previous
    ticket of its search had pruned, computed from the masks during the run."""
    net = cfg.model if net is None else net
    out = {}
    for seed in seeds:
        imp = _one(results, "tickets-imp", seed, net=net)
        impc = _one(results, "tickets-impc", seed, net=net)
        runs = {}
        for s0 in cfg.cs_s_inits:
            r = _one(results, "tickets-cs", seed, net=net, s_init=float(s0))
            runs[s0] = cs.CSResult(tickets=_as_tickets("CS", r["tickets"], s_init=s0),
                                   round_accuracy=[float(a) for a in r["round_accuracy"]],
                                   soft_fraction=[float(f) for f in r["soft_fraction"]])
        out[seed] = {"IMP": _as_tickets("IMP", imp["tickets"]), "IMP-C": _as_tickets("IMP-C", impc["tickets"]),
                     "CS": runs}
    return out


def collect_hyperparameters(results: Any, cfg: Config, seeds: Sequence[int]
                            ) -> dict[str, dict[float, list[tuple[float, float]]]]:
    """What :func:`~effcourse.sparsification.experiments.hyperparameter_sweep` returns, from the sweep."""
    hp: dict[str, dict[float, list[tuple[float, float]]]] = {"beta": {}, "lam": {}}

    def pt(seed: int, lam: float, beta_final: float) -> tuple[float, float]:
        r = _one(results, "hp", seed, lam=float(lam), beta_final=float(beta_final))
        return float(r["remaining"]), float(r["accuracy"])

    for seed in seeds:
        for bfin in cfg.hp_beta_finals:
            hp["beta"].setdefault(bfin, []).append(pt(seed, cfg.lam, bfin))
        for lam in cfg.hp_lams:
            hp["lam"].setdefault(lam, []).append(pt(seed, lam, cfg.beta_final))
    return hp


def collect_supermasks(results: Any, cfg: Config, seeds: Sequence[int]) -> dict[str, list[tuple[float, float, float]]]:
    """What :func:`~effcourse.sparsification.experiments.supermasks` returns, from the sweep."""
    out: dict[str, list[tuple[float, float, float]]] = {"CS": [], "SS": []}
    for seed in seeds:
        for s0 in cfg.sm_cs_s_inits:
            for lam in cfg.sm_cs_lams:
                r = _one(results, "sm-cs", seed, s_init=float(s0), lam=float(lam))
                out["CS"].append((float(r["sparsity"]), float(r["accuracy"]), lam))
        for s0 in cfg.sm_ss_s_inits:
            r = _one(results, "sm-ss", seed, s_init=float(s0))
            out["SS"].append((float(r["sparsity"]), float(r["accuracy"]), s0))
    return out


# ---------------------------------------------------------------------------------------------- against the thesis
# Tables 4.1 and 4.2 (Savarese 2025): dense accuracy, sparsest model within 2 points of dense per method (one-shot
# pruning), and the sparsest matching / best CS and IMP tickets.
THESIS: dict[str, dict[str, float]] = {
    "resnet20": {"dense": 0.9055, "MP": 0.800, "GMP": 0.860, "CS": 0.944, "cs_matching_remaining": 0.123,
                 "imp_matching_remaining": 0.209, "cs_best_acc": 0.9154},
    "vgg16": {"dense": 0.9235, "MP": 0.975, "GMP": 0.980, "CS": 0.996, "cs_matching_remaining": 0.017,
              "imp_matching_remaining": 0.018, "cs_best_acc": 0.9345},
}
# The stated tolerances of the comparison: accuracies within 1 point, sparsities within 2 points, weights
# remaining within a factor 1.5 (seed-to-seed spread of the thesis's error bars, Figs 4.3-4.4).
TOLERANCE = {"accuracy": 0.01, "sparsity": 0.02, "remaining_factor": 1.5}


def thesis_comparison(oneshot: dict[int, dict[str, Any]], tickets: dict[int, dict[str, Any]], net: str
                      ) -> tuple[list[dict[str, str]], bool]:
    """Medians over seeds of this sweep's Table 4.1 and 4.2 numbers for ``net`` next to the thesis's, each with its
    tolerance (:data:`TOLERANCE`); returns the rows and whether every number is within its tolerance."""
    import numpy as np

    if net not in THESIS:
        raise ValueError(f"net must be one of {sorted(THESIS)}; got {net!r}")
    th = THESIS[net]
    sparsest = ex.oneshot_sparsest(oneshot)
    sums = [ex.ticket_summary(t) for t in tickets.values()]

    def med(values: Sequence[float | None]) -> float:
        vals = [v for v in values if v is not None]
        return float(np.median(vals)) if vals else float("nan")

    rows, ok = [], True

    def add(what: str, thesis: float, ours: float, kind: str) -> None:
        nonlocal ok
        if kind == "remaining":
            good = bool(ours == ours and thesis / TOLERANCE["remaining_factor"] <= ours
                        <= thesis * TOLERANCE["remaining_factor"])
            tol = f"within a factor {TOLERANCE['remaining_factor']:g}"
        else:
            good = bool(abs(ours - thesis) <= TOLERANCE[kind])
            tol = f"+- {100 * TOLERANCE[kind]:g} points"
        ok &= good
        rows.append({"quantity": what, "thesis": f"{100 * thesis:.2f} %", "this sweep": f"{100 * ours:.2f} %",
                     "tolerance": tol, "within": "yes" if good else "no"})

    add("dense accuracy (Table 4.1)", th["dense"], med([r["dense"] for r in oneshot.values()]), "accuracy")
    for m in ("MP", "GMP", "CS"):
        add(f"{m}: sparsity within 2 points of dense (Table 4.1)", th[m], med(sparsest[m]), "sparsity")
    add("CS: sparsest matching ticket, weights remaining (Table 4.2)", th["cs_matching_remaining"],
        med([s["CS"][0].remaining if s["CS"][0] else None for s in sums]), "remaining")
    add("IMP: sparsest matching ticket, weights remaining (Table 4.2)", th["imp_matching_remaining"],
        med([s["IMP"][0].remaining if s["IMP"][0] else None for s in sums]), "remaining")
    add("CS: best ticket's accuracy (Table 4.2)", th["cs_best_acc"], med([s["CS"][1].accuracy for s in sums]),
        "accuracy")
    return rows, ok

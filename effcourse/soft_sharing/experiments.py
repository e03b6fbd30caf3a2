"""The chapter's experiment drivers: each section of ``05-soft-sharing`` calls one of these and tabulates the result.

``cfg`` is the chapter's configuration (:mod:`effcourse.soft_sharing.config`, or any mapping with its keys).
Seeds are arguments: the chapter draws them from its base seed (``run.seeds``), so no driver has a seed of its own.

* Sec. 2: :func:`swrn_parameter_rows`, the parameter column of Tables 3.1/3.3 next to our counts.
* Sec. 4-5: :func:`make_classifier` (the model of a scale: digits CNN, or WRN / SWRN on CIFAR-10),
  :func:`train_variant`, :func:`template_sweep`, :func:`regularized_runs`, and the measures :func:`group_lsm`,
  :func:`initial_lsms`, :func:`stack_parameters`.
* Sec. 6: :func:`fold_experiment` and :func:`program_summary`.
* Sec. 7: :func:`path_experiment`, :func:`path_f1_rows`, :func:`fig_3_9_rows`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..core.data import Split
from ..core.models import WideResNet, count_parameters
from ..core.train import evaluate
from .folding import fold_network, group_layers, program_order
from .residual_cnn import FoldedResidualCNN, SharedResidualCNN
from .shortest_path import PathCNN, curriculum
from .similarity import layer_similarity, mean_offdiagonal, weight_similarity
from .swrn import SWRN, swrn_parameter_count
from .templates import sharing_groups, stack_coefficients
from .training import train_classifier, train_curriculum

__all__ = [
    "PRINTED_PARAMETERS",
    "dropout_of",
    "fig_3_9_differences",
    "fig_3_9_rows",
    "fold_experiment",
    "group_lsm",
    "initial_lsms",
    "make_classifier",
    "path_experiment",
    "path_f1_rows",
    "path_variants",
    "program_summary",
    "regularized_runs",
    "stack_parameters",
    "subsample",
    "sweep_rows",
    "swrn_parameter_rows",
    "template_sweep",
    "template_sweep_variants",
    "train_path_variant",
    "train_variant",
    "truncate_like",
]

Models = dict[tuple[int | None, int], nn.Module]
Accuracies = dict[tuple[int | None, int], float]

# (model, depth, widen, templates, parameters in millions as printed in Tables 3.1/3.3); templates None = WRN for
# the "WRN" row, else SWRN with (depth - 10) / 3 templates (no reduction).
PRINTED_PARAMETERS: list[tuple[str, int, int, int | None, str]] = [
    ("WRN 28-10", 28, 10, None, "36"), ("SWRN 28-10-1", 28, 10, 1, "12"), ("SWRN 28-10-2", 28, 10, 2, "17.1"),
    ("SWRN 28-10", 28, 10, None, "36.4"), ("SWRN 28-14-2", 28, 14, 2, "33.5"), ("SWRN 28-14", 28, 14, None, "71.4"),
    ("SWRN 28-18-2", 28, 18, 2, "55"), ("SWRN 28-18", 28, 18, None, "118"), ("SWRN 28-4-2", 28, 4, 2, "2.7"),
    ("SWRN 28-6-2", 28, 6, 2, "6.1"),
]


# ------------------------------------------------------------------------------------------- Sec. 2: counts
def truncate_like(count: int, printed: str) -> float:
    """``count`` in millions, cut (not rounded) after as many decimals as ``printed`` shows."""
    decimals = len(printed.split(".")[1]) if "." in printed else 0
    return float(np.floor(count / 1e6 * 10**decimals) / 10**decimals)


def swrn_parameter_rows() -> list[dict[str, Any]]:
    """One row per model of Tables 3.1/3.3: the printed count, ours, and whether ours truncated equals it."""
    with torch.device("meta"):
        wrn = count_parameters(WideResNet(28, 10))
    rows = []
    for name, depth, widen, k, printed in PRINTED_PARAMETERS:
        n = wrn if name.startswith("WRN") else swrn_parameter_count(depth, widen, k)
        rows.append({"model": name, "thesis (M)": printed, "ours (M)": n,
                     "truncated ours == thesis": truncate_like(n, printed) == float(printed)})
    return rows


# ------------------------------------------------------------------------------- Sec. 4-5: models and runs
def dropout_of(cfg: Mapping[str, Any], templates: int | None) -> float:
    """The dropout of variant ``templates``: ``cfg["dropout"]`` for the variants in ``cfg["dropout_ks"]`` (the
    starred rows of Table 3.1, e.g. SWRN 28-10-2 at p = 0.3), else 0 (the thesis's unstarred rows)."""
    return float(cfg["dropout"]) if templates in cfg.get("dropout_ks", ()) else 0.0


def make_classifier(cfg: Mapping[str, Any], templates: int | None, num_classes: int,
                    device: str | torch.device = "cpu") -> nn.Module:
    """The classifier of ``cfg["dataset"]``: the digits :class:`SharedResidualCNN` (``templates=None``: unshared),
    or on CIFAR-10 the thesis's WRN-depth-widen (``templates=None``) / SWRN-depth-widen-``templates``, with the
    dropout that Table 3.1 gives the variant (:func:`dropout_of`)."""
    name = cfg["dataset"]
    if name == "digits":
        return SharedResidualCNN(cfg["channels"], cfg["depth"], templates, num_classes, device=device)
    if name == "cifar10":
        p = dropout_of(cfg, templates)
        if templates is None:
            if torch.device(device).type == "meta":  # build on meta directly: no init, no memory
                with torch.device("meta"):
                    return WideResNet(cfg["depth"], cfg["swrn_widen"], num_classes, p)
            return WideResNet(cfg["depth"], cfg["swrn_widen"], num_classes, p).to(device)
        return SWRN(cfg["depth"], cfg["swrn_widen"], templates, num_classes, p, device=device)
    raise ValueError(f"cfg['dataset'] must be 'digits' or 'cifar10' for this chapter; got {name!r}")


def group_lsm(model: nn.Module) -> torch.Tensor:
    """LSM of the (middle) sharing group (eq. 3.13); for an unshared model, |cos| between the same layers' weights."""
    groups = sharing_groups(model)
    if groups:
        return layer_similarity(stack_coefficients(groups[len(groups) // 2]).detach()).cpu()
    if isinstance(model, SharedResidualCNN):
        return weight_similarity([c.weight for c in model.convs]).cpu()
    if isinstance(model, WideResNet):  # the convs of stage 2 after its first block
        n = len(model.blocks) // 3
        blocks = list(model.blocks)[n + 1:2 * n]
        return weight_similarity([w for b in blocks for w in (b.conv1.weight, b.conv2.weight)]).cpu()
    raise ValueError(f"model must be a SharedResidualCNN, SWRN or WideResNet; got {type(model).__name__}")


def initial_lsms(cfg: Mapping[str, Any], ks: Sequence[int | None], seed: int,
                 num_classes: int) -> dict[int | None, torch.Tensor]:
    """The LSM of each variant in ``ks`` *before training*, built exactly as :func:`train_variant` builds it (same
    ``seed``): what the construction alone (orthogonal coefficient init, ``k`` templates) puts into the LSM."""
    out = {}
    for k in ks:
        torch.manual_seed(seed)
        out[k] = group_lsm(make_classifier(cfg, k, num_classes, "cpu"))
    return out


def stack_parameters(model: nn.Module) -> int:
    """Parameters of the shared stacks (templates + coefficients), or of the same convolutions when unshared."""
    groups = sharing_groups(model)
    if groups:
        return sum(g[0].bank.templates.numel() + sum(m.coefficients.numel() for m in g) for g in groups)
    if isinstance(model, SharedResidualCNN):
        return model.stack_parameters()
    if isinstance(model, WideResNet):  # every block but the first of each stage
        n = len(model.blocks) // 3
        return sum(b.conv1.weight.numel() + b.conv2.weight.numel() for i, b in enumerate(model.blocks) if i % n)
    raise ValueError(f"model must be a SharedResidualCNN, SWRN or WideResNet; got {type(model).__name__}")


def subsample(data: Split, n: int) -> Split:
    """The first ``n`` training and test examples of ``data`` (``n = 0``: all of them), for dry runs."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n must be a non-negative int (0: all); got {n!r}")
    if n == 0:
        return data
    return Split(data.x_train[:n], data.y_train[:n], data.x_test[:n], data.y_test[:n], data.num_classes)


def train_variant(cfg: Mapping[str, Any], data: Split, templates: int | None, seed: int, lam: float = 0.0,
                  epochs: int | None = None, augment=None, device: str | torch.device = "cpu",
                  checkpoint: Any | None = None) -> tuple[nn.Module, float]:
    """Seed, build (:func:`make_classifier`) and train one classifier with :func:`train_classifier`.

    Returns the model and its test accuracy in percent. ``lam`` weighs the recurrence regularizer (eq. 3.19).
    ``checkpoint`` (a sweep's ``ctx.fit_checkpoint()``) makes the training resumable.
    """
    torch.manual_seed(seed)
    model = make_classifier(cfg, templates, data.num_classes, device)
    hist = train_classifier(model, data, epochs or cfg["epochs"], cfg["lr"], cfg["weight_decay"],
                            cfg["batch_size"], cfg["milestones"], cfg["gamma"], lam=lam,
                            generator=torch.Generator().manual_seed(seed), augment=augment,
                            progress=f"k={templates} seed {seed}", checkpoint=checkpoint)
    return model, 100 * (1 - hist.final_err)


def _check_seeds(seeds: Sequence[int]) -> list[int]:
    seeds = list(seeds)
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise ValueError(f"seeds must be a non-empty sequence of non-negative ints; got {seeds!r}")
    return seeds


def template_sweep(cfg: Mapping[str, Any], data: Split, seeds: Sequence[int], augment=None,
                   device: str | torch.device = "cpu") -> tuple[Models, Accuracies]:
    """Sec. 4: the unshared model and every ``k`` of ``sweep_ks`` on the first of ``seeds``; on the other seeds only
    the variants that a claim, the fold or a table of the thesis needs (``claim_ks``, ``fold_k``, ``table_ks``).
    Keys are ``(k, seed)``."""
    seeds = _check_seeds(seeds)
    models: Models = {}
    acc: Accuracies = {}
    for seed in seeds:
        for k in template_sweep_variants(cfg, first=seed == seeds[0]):
            models[k, seed], acc[k, seed] = train_variant(cfg, data, k, seed, augment=augment, device=device)
    return models, acc


def template_sweep_variants(cfg: Mapping[str, Any], first: bool = False) -> list[int | None]:
    """The variants :func:`template_sweep` trains, in order: on the first seed (``first``) ``None`` and every
    ``sweep_ks``; on the others only those that a claim, the fold or Table 3.1 needs (``claim_ks``, ``fold_k``,
    ``table_ks``)."""
    needed = [None] + list(cfg["claim_ks"]) + [cfg["fold_k"]] + list(cfg.get("table_ks", ()))
    return [k for k in [None] + list(cfg["sweep_ks"]) if first or k in needed]


def sweep_rows(models: Models, acc: Accuracies, seeds: Sequence[int],
               initial: Mapping[int | None, torch.Tensor] | None = None) -> list[dict[str, Any]]:
    """The table of Sec. 4: parameters, stack parameters (share of the unshared stack), accuracies, mean LSM
    (first seed), and with ``initial`` (:func:`initial_lsms`) the mean LSM of the same model before training."""
    s0 = seeds[0]
    ks = [k for k, s in models if s == s0]
    base = stack_parameters(models[None, s0])
    rows = []
    for k in ks:
        m = models[k, s0]
        stack = stack_parameters(m)
        rows.append({"model": "unshared" if k is None else f"k = {k}", "parameters": count_parameters(m),
                     "stack parameters": f"{stack:,} ({stack / base:.0%})",
                     "test accuracy % (seeds)": ", ".join(f"{acc[k, s]:.2f}" for s in seeds if (k, s) in acc),
                     "mean off-diagonal LSM": mean_offdiagonal(group_lsm(m))})
        if initial is not None:
            rows[-1]["at initialization"] = mean_offdiagonal(initial[k])
    return rows


def regularized_runs(cfg: Mapping[str, Any], data: Split, seeds: Sequence[int], augment=None,
                     device: str | torch.device = "cpu") -> tuple[dict[int, nn.Module], dict[int, float]]:
    """Sec. 5: the ``reg_k``-template model trained with ``reg_lam`` times eq. 3.19, once per seed of ``seeds``
    (seed ``s`` starts from the same weights as the unregularized ``(reg_k, s)`` model of :func:`template_sweep`)."""
    models, acc = {}, {}
    for seed in _check_seeds(seeds):
        models[seed], acc[seed] = train_variant(cfg, data, cfg["reg_k"], seed, lam=cfg["reg_lam"],
                                                epochs=cfg["reg_epochs"], augment=augment, device=device)
    return models, acc


# ----------------------------------------------------------------------------------------- Sec. 6: folding
def fold_experiment(models: Models, acc: Accuracies, cfg: Mapping[str, Any], data: Split,
                    seeds: Sequence[int]) -> tuple[list[dict[str, Any]], list[float], list[float]]:
    """Fold the ``fold_k`` model of every seed of ``seeds`` at ``fold_tau``, scaled and naive, with and without BN
    recalibration.

    Returns the table rows (test accuracies in percent) and the per-seed accuracy drops of the recalibrated
    scaled and naive folds.
    """
    rows, drops_scaled, drops_naive = [], [], []
    for seed in _check_seeds(seeds):
        m, ref = models[cfg["fold_k"], seed], acc[cfg["fold_k"], seed]
        res = {}
        for mode in ("scaled", "naive"):
            for recal in (True, False):
                folded, assign = fold_network(m, cfg["fold_tau"], mode, calibrate=data.x_train if recal else None)
                res[mode, recal] = 100 * (1 - evaluate(folded, data.x_test, data.y_test)[1])
        order = assign[len(assign) // 2]
        drops_scaled.append(ref - res["scaled", True])
        drops_naive.append(ref - res["naive", True])
        rows.append({"seed": seed, "soft-shared %": ref,
                     "program": f"{program_order(order)} ({int(order.max()) + 1} unique)",
                     "scaled + BN recal. %": res["scaled", True], "scaled, stale BN %": res["scaled", False],
                     "naive + BN recal. %": res["naive", True], "naive, stale BN %": res["naive", False]})
    return rows, drops_scaled, drops_naive


def program_summary(model: nn.Module, tau: float, x: torch.Tensor) -> dict[str, Any] | None:
    """``model`` as a program (:class:`FoldedResidualCNN`, scaled fold at ``tau``) and its size; checks that the
    program and the in-place :func:`fold_network` agree on ``x[:64]`` (before recalibration). ``None`` for a model
    that is not a soft-shared :class:`SharedResidualCNN` (the program view exists only for it)."""
    if not isinstance(model, SharedResidualCNN) or model.bank is None:
        return None
    groups = group_layers(group_lsm(model), tau)
    prog = FoldedResidualCNN(model, groups, "scaled").eval()
    via_bank, _ = fold_network(model, tau, "scaled")
    with torch.no_grad():
        same = torch.allclose(prog(x[:64]), via_bank.eval()(x[:64]), atol=1e-4)
    channels, depth = model.stem.out_channels, len(model.layers)
    return {"program": str(program_order(groups)), "unique 3x3 layers": prog.unique_layers,
            "conv weights + scales": f"{prog.unique_layers * channels**2 * 9:,} + {depth}",
            "unshared stack": f"{depth * channels**2 * 9:,}", "soft-shared stack": f"{model.stack_parameters():,}",
            "program == in-place fold": bool(same)}


# ----------------------------------------------------------------------------------- Sec. 7: shortest paths
def path_variants(cfg: Mapping[str, Any]) -> dict[str, tuple[int | None, float]]:
    """The three models of Fig. 3.9: name -> (templates, lambda_R)."""
    return {"CNN": (None, 0.0), "SCNN": (cfg["path_depth"], 0.0), "SCNN+R": (cfg["path_depth"], cfg["path_lam"])}


def path_experiment(cfg: Mapping[str, Any], seeds: Sequence[int], generator: torch.Generator | None = None,
                    device: str | torch.device = "cpu"
                    ) -> tuple[dict[tuple[str, int], list[float]], dict[tuple[str, int], torch.Tensor]]:
    """Sec. 7: sample the curriculum (from ``generator``) and train every variant through it once per seed of
    ``seeds`` (seed ``s`` fixes the initial weights and the batch order). Returns the per-phase F1 scores and the
    final LSMs of the shared variants, both keyed by ``(variant, seed)``."""
    seeds = _check_seeds(seeds)
    phases = curriculum(cfg["path_phases"], cfg["path_train"], cfg["path_test"], cfg["path_size"],
                        generator=generator, device=device)
    f1, lsm = {}, {}
    for name in path_variants(cfg):
        for s in seeds:
            f1[name, s], got = train_path_variant(cfg, phases, name, s, device)
            if got is not None:
                lsm[name, s] = got
    return f1, lsm


def train_path_variant(cfg: Mapping[str, Any], phases: Sequence[Any], name: str, seed: int,
                       device: str | torch.device = "cpu", checkpoint: Any | None = None
                       ) -> tuple[list[float], torch.Tensor | None]:
    """One model of Fig. 3.9 (``name`` of :func:`path_variants`) through the curriculum ``phases`` at ``seed``:
    its per-phase F1 (eq. 3.20, corrected) and, for a shared variant, its final LSM (eq. 3.13; else ``None``).
    ``checkpoint(i)`` gives phase ``i``'s checkpoint (see :func:`train_curriculum`)."""
    variants = path_variants(cfg)
    if name not in variants:
        raise ValueError(f"name must be one of {list(variants)}; got {name!r}")
    k, lam = variants[name]
    torch.manual_seed(seed)
    net = PathCNN(cfg["path_channels"], cfg["path_depth"], k, device=device)
    f1 = train_curriculum(net, phases, cfg["path_lr"], cfg["path_epochs"], cfg["path_batch"], lam=lam,
                          generator=torch.Generator().manual_seed(seed), progress=name, checkpoint=checkpoint)
    return f1, (None if k is None else layer_similarity(net.alpha().detach()).cpu())


def _variants(f1: Mapping[tuple[str, int], list[float]]) -> list[str]:
    return list(dict.fromkeys(name for name, _ in f1))


def path_f1_rows(f1: Mapping[tuple[str, int], list[float]], max_distances: Sequence[int],
                 seeds: Sequence[int]) -> list[dict[str, str]]:
    """F1 at the end of each phase: mean over seeds, with the min-max over seeds in parentheses."""
    rows = []
    for name in _variants(f1):
        scores = np.array([f1[name, s] for s in seeds])  # seeds x phases
        row = {"model": name}
        for i, d in enumerate(max_distances):
            row[f"d <= {d}"] = f"{scores[:, i].mean():.3f} ({scores[:, i].min():.3f}-{scores[:, i].max():.3f})"
        rows.append(row)
    return rows


def _per_seed(f1, a: str, b: str, phases: slice, seeds: Sequence[int]) -> np.ndarray:
    """Mean F1 difference ``a - b`` over the given phases, one value per seed."""
    return np.array([np.mean(np.array(f1[a, s])[phases] - np.array(f1[b, s])[phases]) for s in seeds])


def _verdict(d: np.ndarray) -> str:
    if np.all(d > 0):
        return f"yes, on all {len(d)} seeds"
    if np.all(d < 0):
        return f"no: the opposite on all {len(d)} seeds"
    return f"mixed: {int((d > 0).sum())} of {len(d)} seeds"


# (thesis statement, measured difference, minuend, subtrahend, phases): positive differences agree with the thesis
_FIG_3_9 = [("SCNN outperforms the CNN and adapts better at new phases", "SCNN - CNN, phases 2 on",
             "SCNN", "CNN", slice(1, None)),
            ("with the regularizer, faster learning in phase 1", "SCNN+R - SCNN, phase 1", "SCNN+R", "SCNN",
             slice(0, 1)),
            ("with the regularizer, worse adaptation in later phases", "SCNN - SCNN+R, phases 2 on", "SCNN",
             "SCNN+R", slice(1, None))]


def fig_3_9_differences(f1: Mapping[tuple[str, int], list[float]], seeds: Sequence[int]) -> dict[str, np.ndarray]:
    """The per-seed F1 differences behind the three statements of Sec. 3.4.3, keyed by what is measured
    (``"SCNN - CNN, phases 2 on"``, ...); a positive difference agrees with the thesis."""
    return {what: _per_seed(f1, a, b, phases, seeds) for _, what, a, b, phases in _FIG_3_9}


def fig_3_9_rows(f1: Mapping[tuple[str, int], list[float]], seeds: Sequence[int]) -> list[dict[str, str]]:
    """The three statements of Sec. 3.4.3 (Fig. 3.9) against the measured per-seed F1 differences."""
    diffs = fig_3_9_differences(f1, seeds)
    return [{"thesis (Fig. 3.9)": t,
             "this book: F1 difference, mean (per seed)": f"{what}: {diffs[what].mean():+.3f} ("
             + ", ".join(f"{v:+.3f}" for v in diffs[what]) + ")",
             "reproduced here?": _verdict(diffs[what])} for t, what, *_ in _FIG_3_9]

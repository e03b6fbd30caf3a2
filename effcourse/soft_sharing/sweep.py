"""Chapter 5 at ``full`` scale as a resumable sweep (``python -m effcourse.sweep run 05-soft-sharing``).

The chapter's heavy experiments, one independent run each (:mod:`effcourse.sweep.spec`):

* ``sweep``: WRN 28-10 and SWRN 28-10-k on CIFAR-10 (Sec. 4 of the notebook; Table 3.1), the variants that
  :func:`~.experiments.template_sweep` trains, with Table 3.1's dropout (0.3 for SWRN 28-10-2 only). The run of
  ``fold_k`` also folds its model (Sec. 6; Sec. 3.4.2's SWRN 28-10-4). The first seed's runs keep their weights
  (``model.pt``): the notebook reads their layer similarity matrices (eq. 3.13) and stack sizes.
* ``regularized``: SWRN 28-10-``reg_k`` with ``reg_lam`` times eq. 3.19 (Sec. 5), weights kept.
* ``cutout``: Table 3.3, the Table 3.1 recipe plus cutout (:class:`~.augment.CropFlipCutout`).
* ``paths``: one model of Fig. 3.9 through the shortest-path curriculum (Sec. 3.4.3).

Seeds follow the notebook's ``run.seeds``: offset 0 for the CIFAR runs (and for the cutout runs: a cutout run starts
from the same weights as the Table 3.1 run of its seed), 100 for the shortest-path models, 200 for their data.
The ``collect_*`` functions turn a finished sweep's results back into what the notebook's inline code returns.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ..core.data import augmentation, dataset
from ..core.harness import SEED_STRIDE, experiment_seeds
from ..core.models import count_parameters
from ..sweep import Results, RunContext, RunSpec, training_flops
from . import experiments as ex
from .augment import CropFlipCutout
from .shortest_path import PathCNN, curriculum

__all__ = ["DATA", "DRY_RUN", "THESIS_TABLE_3_1", "THESIS_TABLE_3_3", "collect_fold", "collect_paths",
           "collect_regularized", "collect_template_sweep", "execute", "flops", "plan", "table_rows"]

DATA: tuple[str, ...] = ("cifar10",)

# Every WRN-size run keeps the thesis's model and recipe but sees 8 images for 2 epochs (two checkpoints: kill and
# resume are tested); one seed and as few variants as still reach every code path: k = 4 is the fold's and the
# regularizer's model, k = 1 the claimed row, k = 2 with cutout trains with dropout 0.3 too. The shortest-path
# models stay 32 channels x 20 layers on 32x32 grids, with 8 grids for 2 phases of 2 epochs.
DRY_RUN: dict[str, Any] = dict(
    epochs=2, reg_epochs=2, subsample=8, n_seeds=1, reg_n_seeds=1, cutout_n_seeds=1, path_n_seeds=1,
    sweep_ks=[4, 1], claim_ks=[1], asserted_ks=[1], table_ks=[1], reg_k=4, fold_k=4, cutout_ks=[2],
    path_train=8, path_test=8, path_phases=[2, 4], path_epochs=2,
)

# (templates, CIFAR-10 test error % of the thesis, mean of 5 runs); templates None = WRN 28-10
THESIS_TABLE_3_1: dict[int | None, float] = {None: 4.00, 1: 4.01, 2: 3.75, 6: 3.74}
THESIS_TABLE_3_3: dict[int | None, float] = {None: 3.08, 6: 2.70, 2: 2.69}

_PATHS_OFFSET, _PATH_DATA_OFFSET = 100, 200  # the notebook's run.seeds(path_n_seeds, 100), run.generator_for(200)
_CIFAR = (3, 32, 32)
_CIFAR_TRAIN, _CIFAR_TEST = 50_000, 10_000


# ------------------------------------------------------------------------------------------------- the plan
def plan(cfg: Mapping[str, Any], seed: int) -> list[RunSpec]:
    """The runs of ``cfg`` at base seed ``seed``: the Sec. 4 sweep (every ``sweep_ks`` on the first seed, the
    claimed, folded and Table 3.1 variants on all ``n_seeds``), ``reg_n_seeds`` regularized runs, ``cutout_ks`` x
    ``cutout_n_seeds`` cutout runs (Table 3.3) and the three shortest-path models x ``path_n_seeds``."""
    seeds = experiment_seeds(seed, cfg["n_seeds"], 0)
    specs = []
    for s in seeds:
        for k in ex.template_sweep_variants(cfg, first=s == seeds[0]):
            specs.append(RunSpec("sweep", {"templates": k, "dropout": ex.dropout_of(cfg, k)}, s))
    for s in experiment_seeds(seed, cfg["reg_n_seeds"], 0):
        specs.append(RunSpec("regularized", {"templates": cfg["reg_k"], "lam": cfg["reg_lam"]}, s))
    for s in experiment_seeds(seed, cfg["cutout_n_seeds"], 0):
        for k in cfg["cutout_ks"]:
            specs.append(RunSpec("cutout", {"templates": k, "dropout": ex.dropout_of(cfg, k),
                                            "cutout": cfg["cutout_size"]}, s))
    (data_seed,) = experiment_seeds(seed, 1, _PATH_DATA_OFFSET)
    for name in ex.path_variants(cfg):
        for s in experiment_seeds(seed, cfg["path_n_seeds"], _PATHS_OFFSET):
            specs.append(RunSpec("paths", {"variant": name, "data_seed": data_seed}, s))
    return specs


def _first_seed(seed: int) -> bool:
    """Whether ``seed`` is the first experiment seed of its base (``run.seeds(n)[0]``): the notebook's ``s0``."""
    return seed == experiment_seeds(seed // SEED_STRIDE, 1, 0)[0]


# ------------------------------------------------------------------------------------------------- one run
def execute(spec: RunSpec, ctx: RunContext) -> dict[str, Any]:
    """Train the run ``spec`` with the chapter's library functions, checkpointing every epoch through ``ctx``."""
    if spec.experiment == "paths":
        return _execute_paths(spec, ctx)
    if spec.experiment not in ("sweep", "regularized", "cutout"):
        raise ValueError(f"spec.experiment must be 'sweep', 'regularized', 'cutout' or 'paths'; got "
                         f"{spec.experiment!r}")
    cfg, k = ctx.cfg, spec.params["templates"]
    data = ex.subsample(dataset(cfg["dataset"], normalize="standard", device=ctx.device), cfg["subsample"])
    augment = augmentation(cfg["dataset"])
    lam, epochs = 0.0, cfg["epochs"]
    if spec.experiment == "regularized":
        lam, epochs = spec.params["lam"], cfg["reg_epochs"]
    if spec.experiment == "cutout":  # cutout squares from their own stream, saved with every checkpoint
        augment = CropFlipCutout(spec.params["cutout"], ctx.generator("cutout", offset=500))
    model, acc = ex.train_variant(cfg, data, k, spec.seed, lam=lam, epochs=epochs, augment=augment,
                                  device=ctx.device, checkpoint=ctx.fit_checkpoint("train"))
    out: dict[str, Any] = {"templates": k, "test_accuracy": acc, "test_error": 100.0 - acc,
                           "parameters": count_parameters(model), "stack_parameters": ex.stack_parameters(model),
                           "lsm": ex.group_lsm(model).tolist()}
    if spec.experiment == "regularized" or (spec.experiment == "sweep" and _first_seed(spec.seed)):
        # the notebook reads these models' LSMs and stacks; a file beside result.json, not JSON
        torch.save({k_: v.detach().cpu() for k_, v in model.state_dict().items()}, ctx.dir / "model.pt")
        out["model"] = "model.pt"
    if spec.experiment == "sweep" and k == cfg["fold_k"]:
        rows, scaled, naive = ex.fold_experiment({(k, spec.seed): model}, {(k, spec.seed): acc}, cfg, data,
                                                 [spec.seed])
        out["fold"] = {"row": json.loads(json.dumps(rows[0], default=float)), "drop_scaled": scaled[0],
                       "drop_naive": naive[0]}
    return out


def _execute_paths(spec: RunSpec, ctx: RunContext) -> dict[str, Any]:
    cfg = ctx.cfg
    phases = curriculum(cfg["path_phases"], cfg["path_train"], cfg["path_test"], cfg["path_size"],
                        generator=torch.Generator().manual_seed(spec.params["data_seed"]), device=ctx.device)
    f1, lsm = ex.train_path_variant(cfg, phases, spec.params["variant"], spec.seed, ctx.device,
                                    checkpoint=lambda i: ctx.fit_checkpoint(f"phase{i}"))
    return {"variant": spec.params["variant"], "f1": [float(v) for v in f1],
            "lsm": None if lsm is None else lsm.tolist()}


# ------------------------------------------------------------------------------------------------- FLOPs
@functools.lru_cache(maxsize=64)
def _per_sample(cfg_json: str, templates: int | None, backward: bool) -> float:
    cfg = json.loads(cfg_json)
    return training_flops(lambda: ex.make_classifier(cfg, templates, 10, "meta"), _CIFAR, 1, backward=backward)


@functools.lru_cache(maxsize=8)
def _path_per_sample(channels: int, depth: int, size: int, shared: bool, backward: bool) -> float:
    return training_flops(lambda: PathCNN(channels, depth, depth if shared else None), (2, size, size), 1,
                          backward=backward)


def flops(spec: RunSpec, cfg: Mapping[str, Any]) -> float:
    """FLOPs of one run: epochs x training images (forward and backward) plus the test set once; the fold run adds
    four folds' recalibration (a forward pass over the training images) and evaluation; a path run, every phase's
    epochs over its grids plus its test grids."""
    if spec.experiment == "paths":
        shared = ex.path_variants(cfg)[spec.params["variant"]][0] is not None
        args = (cfg["path_channels"], cfg["path_depth"], cfg["path_size"], shared)
        phases = len(cfg["path_phases"])
        return phases * (cfg["path_epochs"] * cfg["path_train"] * _path_per_sample(*args, True)
                         + cfg["path_test"] * _path_per_sample(*args, False))
    key = json.dumps({k: cfg[k] for k in ("dataset", "channels", "depth", "swrn_widen", "dropout", "dropout_ks")})
    n_train = cfg["subsample"] or _CIFAR_TRAIN
    n_test = cfg["subsample"] or _CIFAR_TEST
    k = spec.params["templates"]
    epochs = cfg["reg_epochs"] if spec.experiment == "regularized" else cfg["epochs"]
    fwd = _per_sample(key, k, False)
    total = epochs * n_train * _per_sample(key, k, True) + n_test * fwd
    if spec.experiment == "sweep" and k == cfg["fold_k"]:
        total += 4 * (n_train + n_test) * fwd
    return float(total)


# ------------------------------------------------------------------------------------------------- collect
def _load_model(results: Results, spec: RunSpec, cfg: Mapping[str, Any], num_classes: int) -> nn.Module:
    """The trained model of ``spec`` from its ``model.pt``, built on the meta device and then given the weights
    (no initialization of 36M parameters just to overwrite them)."""
    path = results.run_dir(spec.run_id) / "model.pt"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: the run {spec.run_id} keeps its weights there; rerun it")
    model = ex.make_classifier(cfg, spec.params["templates"], num_classes, "meta")
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), assign=True)
    return model.eval()


def _by_seed(results: Results, experiment: str, **params: Any) -> dict[int, tuple[RunSpec, Mapping[str, Any]]]:
    return {spec.seed: (spec, res) for spec, res in results.where(experiment, **params)}


def collect_template_sweep(results: Results, cfg: Mapping[str, Any], seeds: Sequence[int], num_classes: int
                           ) -> tuple[ex.Models, ex.Accuracies]:
    """What :func:`~.experiments.template_sweep` returns, from the sweep: the test accuracies of every ``(k, seed)``
    and the trained models of the first seed (the ones the notebook reads; the others' folds ran in the sweep)."""
    models: ex.Models = {}
    acc: ex.Accuracies = {}
    for s in seeds:
        for k in ex.template_sweep_variants(cfg, first=s == seeds[0]):
            spec, res = _by_seed(results, "sweep", templates=k)[s]
            acc[k, s] = float(res["test_accuracy"])
            if s == seeds[0]:
                models[k, s] = _load_model(results, spec, cfg, num_classes)
    return models, acc


def collect_regularized(results: Results, cfg: Mapping[str, Any], seeds: Sequence[int], num_classes: int
                        ) -> tuple[dict[int, nn.Module], dict[int, float]]:
    """What :func:`~.experiments.regularized_runs` returns (models and accuracies by seed), from the sweep."""
    runs = _by_seed(results, "regularized", templates=cfg["reg_k"])
    models = {s: _load_model(results, runs[s][0], cfg, num_classes) for s in seeds}
    return models, {s: float(runs[s][1]["test_accuracy"]) for s in seeds}


def collect_fold(results: Results, cfg: Mapping[str, Any], seeds: Sequence[int]
                 ) -> tuple[list[dict[str, Any]], list[float], list[float]]:
    """What :func:`~.experiments.fold_experiment` returns (rows, scaled and naive drops), from the fold runs."""
    runs = _by_seed(results, "sweep", templates=cfg["fold_k"])
    folds = [runs[s][1]["fold"] for s in seeds]
    return ([dict(f["row"]) for f in folds], [float(f["drop_scaled"]) for f in folds],
            [float(f["drop_naive"]) for f in folds])


def collect_paths(results: Results, cfg: Mapping[str, Any], seeds: Sequence[int]
                  ) -> tuple[dict[tuple[str, int], list[float]], dict[tuple[str, int], torch.Tensor]]:
    """What :func:`~.experiments.path_experiment` returns (F1 per phase and final LSMs), from the sweep."""
    f1, lsm = {}, {}
    for name in ex.path_variants(cfg):
        runs = _by_seed(results, "paths", variant=name)
        for s in seeds:
            res = runs[s][1]
            f1[name, s] = [float(v) for v in res["f1"]]
            if res["lsm"] is not None:
                lsm[name, s] = torch.tensor(res["lsm"], dtype=torch.float32)
    return f1, lsm


def _name(k: int | None) -> str:
    return "WRN 28-10" if k is None else ("SWRN 28-10" if k == 6 else f"SWRN 28-10-{k}")


def table_rows(results: Results, cfg: Mapping[str, Any], experiment: str, seeds: Sequence[int],
               thesis: Mapping[int | None, float]) -> list[dict[str, Any]]:
    """Mean CIFAR-10 test error over ``seeds`` of each variant of ``experiment`` (``"sweep"``: Table 3.1's rows,
    ``"cutout"``: Table 3.3's) next to the thesis's number; ``"difference"`` is ours minus the thesis's."""
    if experiment not in ("sweep", "cutout"):
        raise ValueError(f"experiment must be 'sweep' or 'cutout'; got {experiment!r}")
    ks = (cfg["cutout_ks"] if experiment == "cutout"
          else [k for k in ex.template_sweep_variants(cfg) if k is None or k in cfg["table_ks"]])
    rows = []
    for k in dict.fromkeys(ks):
        runs = _by_seed(results, experiment, templates=k)
        errs = [float(runs[s][1]["test_error"]) for s in seeds]
        mean = sum(errs) / len(errs)
        rows.append({"model": _name(k), "dropout": ex.dropout_of(cfg, k), "test error % (mean)": mean,
                     "per seed": ", ".join(f"{e:.2f}" for e in errs), "thesis %": thesis.get(k),
                     "difference": None if k not in thesis else mean - thesis[k]})
    return rows

"""Chapter 7's ``full`` scale as a resumable sweep (``python -m effcourse.sweep run 07-smol --out results``).

The thesis's CIFAR-10 ResNet-20 experiments (Savarese 2025, 5.3.3, Table 5.1 and Fig. 5.7) as independent runs:

- ``smol``: SMOL with ZPA and the shuffle control (:func:`~effcourse.smol.experiments.smol_run`), one run per
  ``lambda * d`` in ``cfg.lam_d`` (the thesis's lambda in {5e-7, 7e-7, 1e-6}) and experiment seed;
- ``uniform``: full precision and uniform k-bit quantization on the same grid and budget
  (:func:`~effcourse.smol.experiments.uniform_run`), one run per seed;
- ``smol-l``: SMOL-L against the sensitivity allocation (:func:`~effcourse.smol.experiments.layerwise_row`), one run
  per ``cfg.layer_lam_d`` on the first seed;
- ``split``: Fig. 5.7's split of 650 epochs between precision training and fine-tuning
  (:func:`~effcourse.smol.experiments.budget_split_row`), one run per split on the first seed.

Every phase of Algorithm 5 (precision training, fine-tuning) checkpoints every epoch through the run's context.
The notebook at ``full`` reads the results back with :func:`compare_with_uniform`, :func:`layerwise_comparison` and
:func:`budget_split`, which return what the inline drivers of :mod:`effcourse.smol.experiments` return.

Each run draws its minibatches from its own generator seeded with its experiment seed (inline, at smoke and book
scale, one generator per seed is continued from the uniform run through every ``lambda``): runs are independent.
"""

from __future__ import annotations

import base64
import functools
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ..core.data import Split, augmentation, dataset
from ..core.harness import experiment_seeds
from ..sweep import Results, RunContext, RunSpec, training_flops
from . import experiments as ex
from .models import make_model, quantized_names
from .parametrization import SMOL

__all__ = ["DATA", "DRY_RUN", "budget_split", "compare_with_uniform", "epochs", "execute", "flops",
           "layerwise_comparison", "pack", "plan", "unpack"]

# what `sweep plan` prints beside its FLOP-based estimate (see effcourse.sweep.spec)
COST_NOTE = "22,600 ResNet-20 epochs: bound by memory and kernel launches, likely tens of GPU-hours"
DATA: tuple[str, ...] = ("cifar10",)

# The runs' augmentation generator: seeded like the notebook's run.generator_for(200) (experiment seed + 200).
AUGMENT_OFFSET = 200

# `--dry-run`: every epoch count cut to 1-2 (two checkpoint writes in a phase, so that kill-and-resume is tested
# inside a phase), two lambdas (the notebook's claims need a step between two), one seed, uniform 1 and 2 bits (the
# notebook reads both), one split point, a few examples for the sensitivity probe, a short quadratic toy.
# The model stays ResNet-20 and the data CIFAR-10's format; lambdas and schedules stay the thesis's.
DRY_RUN: dict[str, Any] = dict(
    precision_epochs=2, finetune_epochs=1, n_seeds=1, lam_d=[0.187835, 0.268336], uniform_bits=[1, 2],
    layer_lam_d=[0.268336], split_total=3, split_fracs=[2 / 3], sens_samples=8, quad_steps=600, quad_samples=4,
)

# CIFAR-10's training and test set sizes: what one epoch and one evaluation of a run cost at full scale.
N_TRAIN, N_TEST = 50_000, 10_000
INPUT_SHAPE = (3, 32, 32)


# ------------------------------------------------------------------------------------------------ the plan
def plan(cfg: Mapping[str, Any], seed: int) -> list[RunSpec]:
    """The runs of ``cfg`` at base seed ``seed``: SMOL per (``lam_d``, seed), uniform per seed (seeds of
    ``run.seeds(cfg.n_seeds)``, offset 0, as the notebook's), SMOL-L per ``layer_lam_d`` and the Fig. 5.7 split per
    point on the first seed."""
    if cfg["split_lam_d"] is None:
        raise ValueError("cfg['split_lam_d'] must be a number at full scale: the lambda * d of Fig. 5.7's split "
                         "(the thesis's lambda = 7e-7)")
    seeds = experiment_seeds(seed, int(cfg["n_seeds"]), 0)
    specs = [RunSpec("smol", {"lam_d": float(ld)}, s) for ld in cfg["lam_d"] for s in seeds]
    specs += [RunSpec("uniform", {}, s) for s in seeds]
    specs += [RunSpec("smol-l", {"lam_d": float(ld)}, seeds[0]) for ld in cfg["layer_lam_d"]]
    specs += [RunSpec("split", {"lam_d": float(cfg["split_lam_d"]), "precision_epochs": t1}, seeds[0])
              for t1 in ex.split_epochs(cfg)]
    return specs


# ------------------------------------------------------------------------------------------------ one run
def pack(t: torch.Tensor) -> dict[str, Any]:
    """A tensor as JSON: dtype, shape and its bytes (zlib, base64); :func:`unpack` restores it exactly."""
    a = t.detach().cpu().contiguous().numpy()
    return {"dtype": a.dtype.str, "shape": list(a.shape),
            "data": base64.b64encode(zlib.compress(a.tobytes(), 6)).decode("ascii")}


def unpack(d: Mapping[str, Any]) -> torch.Tensor:
    """The tensor that :func:`pack` wrote."""
    raw = zlib.decompress(base64.b64decode(d["data"]))
    return torch.from_numpy(np.frombuffer(raw, dtype=np.dtype(d["dtype"])).reshape(d["shape"]).copy())


def _smol_result(r: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: (bool(v) if isinstance(v, bool) else float(v)) for k, v in r.items()
           if k not in ("precisions", "smol")}
    out["precisions"] = {n: pack(p) for n, p in r["precisions"].items()}
    # the network as the run left it (weights, s, precisions): the chapter's exercises read its learned s
    out["state"] = {k: pack(v) for k, v in r["smol"].model.state_dict().items()}
    return out


def execute(spec: RunSpec, ctx: RunContext) -> dict[str, Any]:
    """Train one run of :func:`plan` on ``ctx.device``, checkpointing every phase every epoch through ``ctx``."""
    cfg = ctx.cfg
    data = dataset(cfg["dataset"], flat=cfg["flat"], device=ctx.device)
    augment = ex.with_generator(augmentation(cfg["dataset"]), ctx.generator("augment", offset=AUGMENT_OFFSET))
    p = spec.params
    if spec.experiment == "smol":
        r = ex.smol_run(cfg, data, p["lam_d"], spec.seed, ctx.device, augment, ctx.generator(), ctx.fit_checkpoint)
        return _smol_result(r)
    if spec.experiment == "uniform":
        r = ex.uniform_run(cfg, data, spec.seed, ctx.device, augment, ctx.generator(), ctx.fit_checkpoint)
        return {k: float(v) for k, v in r.items() if k != "smol"}
    if spec.experiment == "smol-l":
        return ex.layerwise_row(cfg, data, p["lam_d"], spec.seed, ctx.device, augment, ctx.fit_checkpoint)
    if spec.experiment == "split":
        return ex.budget_split_row(cfg, data, p["lam_d"], p["precision_epochs"], spec.seed, ctx.device, augment,
                                   ctx.fit_checkpoint)
    raise ValueError(f"spec.experiment must be one of ['smol', 'uniform', 'smol-l', 'split']; got "
                     f"{spec.experiment!r}")


# ------------------------------------------------------------------------------------------------ its cost
_DUMMY = Split(torch.zeros(1, *INPUT_SHAPE), torch.zeros(1), torch.zeros(1), torch.zeros(1), 10)


@functools.lru_cache(maxsize=4)
def _per_sample(model: str) -> tuple[float, float, int]:
    """FLOPs of one training step (forward + backward) and of one forward pass, per example; quantized layers."""
    def make() -> torch.nn.Module:
        return make_model({"model": model}, _DUMMY, 0, "meta")

    with torch.random.fork_rng(devices=[]):  # make_model seeds the global generator: leave the caller's alone
        layers = len(quantized_names(make_model({"model": model}, _DUMMY, 0, "meta")))
        return training_flops(make, INPUT_SHAPE, 1), training_flops(make, INPUT_SHAPE, 1, backward=False), layers


def epochs(spec: RunSpec, cfg: Mapping[str, Any]) -> int:
    """Training epochs of one run over the training set (precision training, every fine-tuning, the baselines)."""
    pe, fe = cfg["precision_epochs"], cfg["finetune_epochs"]
    if spec.experiment == "smol":  # precision training; fine-tuning without and with ZPA
        return pe + 2 * fe
    if spec.experiment == "uniform":  # full precision, then fine-tuning at full precision and at each k
        return pe + (1 + len(cfg["uniform_bits"])) * fe
    if spec.experiment == "smol-l":  # SMOL-L; the full-precision base and its fine-tuning; the allocation's
        return 2 * (pe + fe) + fe
    if spec.experiment == "split":
        return cfg["split_total"]
    raise ValueError(f"spec.experiment must be one of ['smol', 'uniform', 'smol-l', 'split']; got "
                     f"{spec.experiment!r}")


def flops(spec: RunSpec, cfg: Mapping[str, Any]) -> float:
    """FLOPs of one run at CIFAR-10's size: :func:`epochs` x 50,000 examples (precision training's epochs counted
    ``cfg["samples"]`` times, one noisy pass per sample) plus the evaluations (test set 10,000, training-loss passes
    50,000) and the sensitivity probe (a forward of ``sens_samples`` examples per layer and bit width)."""
    n_epochs = epochs(spec, cfg)  # a clear error for an unknown experiment
    train, fwd, layers = _per_sample(cfg["model"])
    noisy = {"smol": cfg["precision_epochs"], "uniform": 0, "smol-l": cfg["precision_epochs"],
             "split": spec.params.get("precision_epochs", 0)}[spec.experiment]  # epochs with K noisy passes
    evals = {"smol": 4 * N_TEST + 2 * N_TRAIN, "uniform": (2 + 2 * len(cfg["uniform_bits"])) * N_TEST,
             "smol-l": 5 * N_TEST + N_TRAIN + 8 * layers * min(cfg["sens_samples"], N_TRAIN),
             "split": 2 * N_TEST + N_TRAIN}[spec.experiment]
    return train * (n_epochs + (cfg["samples"] - 1) * noisy) * N_TRAIN + fwd * evals


# ------------------------------------------------------------------------------------------------ collection
def _smol(cfg: Mapping[str, Any], data: Split, seed: int, r: Mapping[str, Any]) -> dict[str, Any]:
    """A SMOL result as :func:`~effcourse.smol.training.smol_pipeline` returns it: tensors and the :class:`SMOL`
    (on the CPU, at the run's last weights and precisions, in ``"quant"`` mode)."""
    out = {k: v for k, v in r.items() if k not in ("precisions", "state")}
    out["precisions"] = {n: unpack(p) for n, p in r["precisions"].items()}
    model = make_model(cfg, data, seed, "cpu")
    smol = SMOL(model, quantized_names(model), p_init=cfg["p_init"])
    model.load_state_dict({k: unpack(v) for k, v in r["state"].items()})
    out["smol"] = smol.set_mode("quant")
    return out


def compare_with_uniform(results: Results, cfg: Mapping[str, Any], data: Split, seeds: Sequence[int]) -> ex.Sweep:
    """Section 4 from the sweep: what :func:`effcourse.smol.experiments.compare_with_uniform` returns."""
    seeds = [int(s) for s in seeds]
    uniform = [dict(_one(results, "uniform", s)) for s in seeds]
    smol = {ld: [_smol(cfg, data, s, _one(results, "smol", s, lam_d=float(ld))) for s in seeds] for ld in cfg["lam_d"]}
    return ex.Sweep(list(cfg["lam_d"]), seeds, list(cfg["uniform_bits"]), uniform, smol)


def _one(results: Results, experiment: str, seed: int, **params: Any) -> Mapping[str, Any]:
    """The result of the run of ``experiment`` with ``params`` at experiment seed ``seed``."""
    got = [r for spec, r in results.where(experiment, **params) if spec.seed == seed]
    if len(got) != 1:
        raise KeyError(f"{len(got)} runs of {experiment!r} with {params} at seed {seed} in the sweep; expected one "
                       f"(is the sweep of this configuration and base seed?)")
    return got[0]


def layerwise_comparison(results: Results, cfg: Mapping[str, Any], seed: int) -> list[dict]:
    """Section 5's SMOL-L rows from the sweep: what :func:`effcourse.smol.experiments.layerwise_comparison`
    returns."""
    return [dict(_one(results, "smol-l", seed, lam_d=float(ld))) for ld in cfg["layer_lam_d"]]


def budget_split(results: Results, cfg: Mapping[str, Any], lam_d: float, seed: int) -> list[dict]:
    """Fig. 5.7's rows from the sweep: what :func:`effcourse.smol.experiments.budget_split` returns."""
    return [dict(_one(results, "split", seed, lam_d=float(lam_d), precision_epochs=t1))
            for t1 in ex.split_epochs(cfg)]

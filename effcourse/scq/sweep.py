"""Chapter 04-scq at the thesis's scale as a resumable sweep (``python -m effcourse.sweep run 04-scq --out DIR``).

The heavy experiments of the chapter are the CIFAR-10 autoencoders of Table 5.1 (Gautam 2024, section 5.4; their
hyperparameters are Table 5.3's CIFAR-10 column): each ``(quantizer, seed)`` is one independent run of
:func:`effcourse.scq.experiments.train_one`, 19,550 steps of batch 128, checkpointed every epoch (``eval_every``
steps) so that a killed run resumes where it stopped.  Three experiments:

* ``table51``: every method of ``cfg.methods`` on the ``n_seeds`` seeds (the non-quantized AE on the first), U(-1/K,
  1/K) codebooks (the notebook's section 4, Table 5.1);
* ``alg9``: SCQ with Algorithm 9 as printed (``m`` alternating projections), first seed (end of section 4);
* ``init``: the N(0, 1) codebook study and SimVQ on the first ``n_init_seeds`` seeds (sections 5 and 6).

Seeds are the notebook's: ``run.seeds(cfg.n_seeds)`` and ``run.seeds(cfg.n_init_seeds)``, both at offset 0, so the
init study's runs are paired with the first Table 5.1 runs.  The ``collect_*`` functions turn the results back into
exactly what the notebook's inline calls return.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..core.config import Config
from ..core.data import dataset
from ..core.harness import experiment_seeds
from ..sweep import RunContext, RunSpec, training_flops
from .autoencoder import AutoencoderHistory, StepCheckpoint, VQAutoencoder
from .experiments import build_autoencoder, init_runs, method_runs, train_one

__all__ = ["DATA", "DRY_RUN", "MODEL_FILE", "SEED_OFFSET", "collect_alg9", "collect_init_study", "collect_methods",
           "execute", "flops", "plan"]

# what `sweep plan` prints beside its FLOP-based estimate (see effcourse.sweep.spec)
COST_NOTE = ("a 40k-parameter autoencoder for 19,550 steps per run: bound by per-step overhead (minutes per "
             "run, not measured)")
DATA: tuple[str, ...] = ("cifar10",)

# `sweep run --dry-run`: 2 steps (two checkpoint writes, so kill-and-resume is exercised), evaluated after each, in
# batches of 16 so that both steps fall inside one epoch of the 160 synthetic training images (a resume then has
# to restore the epoch's permutation mid-way); 2 seeds for Table 5.1 and 1 for the init study.  The model, the
# codebook (K = 128, F = 16) and the images (3 x 32 x 32) stay the thesis's.
DRY_RUN: dict[str, Any] = dict(steps=2, eval_every=1, batch_size=16, n_seeds=2, n_init_seeds=1)

# Both seed lists start at offset 0, as in the notebook (`run.seeds(cfg.n_seeds)`, `run.seeds(cfg.n_init_seeds)`).
SEED_OFFSET = 0

# The trained weights, next to result.json: the notebook's reconstruction figure needs the models themselves.
MODEL_FILE = "model.pt"

# Images per split of the data sets the sweep can read, for the FLOP count of the evaluations.
_SIZES = {"cifar10": {"image": 32, "train": 50_000, "test": 10_000}}


# ------------------------------------------------------------------------------------------------ plan
def plan(cfg: Config, seed: int) -> list[RunSpec]:
    """The CIFAR-10 autoencoders of Table 5.1, the Algorithm 9 run and the initialization study at ``cfg``, with the
    experiment seeds of base seed ``seed`` (the notebook's ``run.seeds``)."""
    seeds = experiment_seeds(seed, cfg.n_seeds, SEED_OFFSET)
    init_seeds = experiment_seeds(seed, cfg.n_init_seeds, SEED_OFFSET)
    specs = [RunSpec("table51", {"kind": kind, "init": "uniform"}, sd) for kind, sd in method_runs(cfg, seeds)]
    if cfg.alternating_train:
        specs.append(RunSpec("alg9", {"kind": "scq_alg9", "init": "uniform"}, seeds[0]))
    specs += [RunSpec("init", {"kind": kind, "init": "normal"}, sd) for kind, sd in init_runs(cfg, init_seeds)]
    return specs


# ------------------------------------------------------------------------------------------------ execute
def execute(spec: RunSpec, ctx: RunContext) -> dict[str, Any]:
    """Train one autoencoder of the plan (:func:`effcourse.scq.experiments.train_one`), checkpointed every
    ``cfg.eval_every`` steps (one epoch at ``full``); returns its test metrics (``None`` if it diverged) and its
    training history, and writes the trained weights to :data:`MODEL_FILE` in the run's folder."""
    cfg = ctx.cfg
    kind, init = spec.params["kind"], spec.params["init"]
    data = dataset(cfg.dataset, normalize="unit", device=ctx.device)
    model, hist, metrics = train_one(cfg, data, kind, spec.seed, init, ctx.device, progress=False,
                                     checkpoint=StepCheckpoint(ctx, "train", cfg.eval_every))
    path = ctx.dir / MODEL_FILE
    tmp = path.with_suffix(".tmp")
    torch.save({k: v.cpu() for k, v in model.state_dict().items()}, tmp)
    os.replace(tmp, path)  # atomic: a run killed here leaves no half-written model
    return {"metrics": metrics, "history": asdict(hist), "replaced": int(getattr(model.quantizer, "replaced", 0)),
            "model_file": MODEL_FILE}


# ------------------------------------------------------------------------------------------------ FLOPs
class _TrainingLoss(nn.Module):
    """The autoencoder with its training loss (5.5) as output, for the FLOP counter."""

    def __init__(self, model: VQAutoencoder):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        return F.mse_loss(out.x_hat, x) + out.quant_loss


# Stand-ins for the FLOP count on the meta device, where data-dependent code cannot run: VQ for VQ with replacement
# (the reset every 100 steps reads a counter; it costs next to nothing), and Algorithm 9's m = 20 alternating
# projections for SCQ's exact projection (its threshold iteration loops until the active set stops changing; both
# are a few elementwise passes over the n x K weights after the same ridge solve).
_COUNTED_AS = {"vq_rep": "vq", "scq": "scq_alg9"}


# (kind, model sizes) -> FLOPs per image (training step, evaluation); counting takes a fraction of a second, and a
# plan has 27 runs of 4 kinds
_PER_IMAGE: dict[tuple[Any, ...], tuple[float, float]] = {}
_SIZE_KEYS = ("image_channels", "channels", "res_channels", "res_blocks", "downsamples", "num_codes", "code_dim",
              "beta", "lam", "alg9_steps")


def flops(spec: RunSpec, cfg: Config) -> float:
    """FLOPs of one run: ``cfg.steps`` training steps of ``cfg.batch_size`` images (forward and backward), plus a
    forward pass over the test set at every evaluation (every ``eval_every`` steps, at the end, and once more for
    the final metrics)."""
    if cfg.dataset not in _SIZES:
        raise ValueError(f"dataset must be one of {sorted(_SIZES)} for a sweep of 04-scq; got {cfg.dataset!r}")
    size = _SIZES[cfg.dataset]
    kind = _COUNTED_AS.get(spec.params["kind"], spec.params["kind"])
    key = (kind, size["image"], *(cfg[k] for k in _SIZE_KEYS))
    if key not in _PER_IMAGE:
        shape = (cfg.image_channels, size["image"], size["image"])

        def make() -> nn.Module:
            return _TrainingLoss(build_autoencoder(cfg, kind, "uniform", device="meta"))

        _PER_IMAGE[key] = (training_flops(make, shape, 1), training_flops(make, shape, 1, backward=False))
    train, evaluate = _PER_IMAGE[key]
    evals = -(-cfg.steps // cfg.eval_every) + 1
    return train * cfg.steps * cfg.batch_size + evaluate * evals * size["test"]


# ------------------------------------------------------------------------------------------------ collect
def _result(results, experiment: str, kind: str, seed: int) -> tuple[RunSpec, Mapping[str, Any]]:
    """The one run of ``experiment`` with quantizer ``kind`` on ``seed``: ``(spec, result)``."""
    got = [(s, r) for s, r in results.where(experiment, kind=kind) if s.seed == seed]
    if len(got) != 1:
        raise KeyError(f"the sweep holds {len(got)} runs of {experiment!r} with kind={kind!r} and seed {seed}; "
                       "expected one (was it run with the notebook's SEED and configuration?)")
    return got[0]


def _history(r: Mapping[str, Any]) -> AutoencoderHistory:
    return AutoencoderHistory(**r["history"])


def collect_methods(results, cfg: Config, seeds: Sequence[int], device: str | torch.device = "cpu"):
    """What :func:`effcourse.scq.experiments.train_methods` returns, read from the sweep's ``table51`` runs:
    ``(results, models, hists)`` keyed by ``(kind, seed)`` in the same order, the models loaded from the weights
    each run saved."""
    out, models, hists = {}, {}, {}
    for kind, sd in method_runs(cfg, seeds):
        spec, r = _result(results, "table51", kind, sd)
        with torch.random.fork_rng(devices=[]):  # building draws a codebook; the notebook's RNG stays untouched
            model = build_autoencoder(cfg, kind, "uniform", device)
        state = torch.load(results.run_dir(spec.run_id) / r["model_file"], map_location=device, weights_only=True)
        model.load_state_dict(state)
        models[kind, sd], hists[kind, sd] = model, _history(r)
        out[kind, sd] = dict(r["metrics"]) if r["metrics"] is not None else None
    return out, models, hists


def collect_alg9(results, seed: int) -> tuple[AutoencoderHistory, dict[str, float] | None]:
    """``(history, metrics)`` of the Algorithm 9 run on ``seed``, as the notebook's inline ``train_one`` gives."""
    _, r = _result(results, "alg9", "scq_alg9", seed)
    return _history(r), (dict(r["metrics"]) if r["metrics"] is not None else None)


def collect_init_study(results, cfg: Config, seeds: Sequence[int]) -> dict[tuple[str, int], dict[str, float] | None]:
    """What :func:`effcourse.scq.experiments.train_init_study` returns, read from the sweep's ``init`` runs."""
    out = {}
    for kind, sd in init_runs(cfg, seeds):
        _, r = _result(results, "init", kind, sd)
        out[kind, sd] = dict(r["metrics"]) if r["metrics"] is not None else None
    return out

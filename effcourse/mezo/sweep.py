"""Chapter 2 (MeZO-SVRG) at ``full`` scale as a resumable sweep (``python -m effcourse.sweep run 02-mezo-svrg``).

The chapter's heavy experiments, one :class:`~effcourse.sweep.RunSpec` each (see :mod:`effcourse.sweep.spec`):

* ``mnist``: Fig. 3.1b / Table 3.5 -- the 25,818-parameter MLP on MNIST, MeZO at every (batch, lr) of the grid,
  MeZO-SVRG at the smallest batch and FO-SGD at b = 64, ``dg_n_seeds`` seeds (offset 20, as the notebook's ``gen_dg``);
* ``finetune``: Tables 3.1, 3.12 and 3.14 -- every model of ``lm_models`` (DistilBERT, RoBERTa-large) in every
  setting of ``lm_modes`` (partial, full) with MeZO and MeZO-SVRG at ``lm_n_seeds`` seeds and FO-SGD at the first
  (offset 30, as the notebook's ``lm_seeds``), on SST-2 drawn with the notebook's task seed (offset 7);
* ``memory``: Table 3.3 -- each method's peak memory on RoBERTa-large at each batch size of ``mem_batches`` and at
  ``mem_weights_batch`` (batch 1: the weights dominate), in a fresh process (offset 41).  A measurement keeps no
  state: a killed one is measured again.

The step loops checkpoint through the run's context every ``mn_checkpoint_every`` / ``lm_checkpoint_every`` steps
(:func:`effcourse.mezo.finetune` saves the optimizer's anchor, stored ``g`` and seed stream, the minibatch generator
and the trace).  The collect functions turn the results back into what the notebook's inline code returns.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, fields
from typing import Any

import numpy as np
import torch
from torch import nn

from ..core.harness import experiment_seeds
from ..sweep.spec import RunSpec, training_flops
from .batched import Trace
from .finetune import Encoded, FinetuneTrace, finetune

__all__ = ["DATA", "DRY_RUN", "THESIS_MEMORY_GB", "THESIS_SST2", "batch_size_results", "execute", "finetuning_results",
           "finetuning_table", "flops", "memory_results", "memory_table", "mnist_rows", "plan"]

# the data sets the runs read from $EFFCOURSE_DATA (effcourse.sweep.synthetic.LAYOUT)
DATA: tuple[str, ...] = ("mnist", "glue-sst2", "hf-distilbert", "hf-roberta")

# seed offsets: the ones the notebook passes to run.seeds, so that notebook and sweep agree
OFFSET_TASK, OFFSET_MNIST, OFFSET_LM, OFFSET_MEMORY = 7, 20, 30, 41

# --dry-run: one or two steps, one seed, one value per grid, 16 sentences; every model stays the thesis's.  The
# inline sections' keys are cut too, so that the notebook at full on these results runs in seconds.
DRY_RUN: dict[str, Any] = dict(
    mc_draws=2_000, bias_draws=250, mu_grid=[1.0, 0.1, 0.01], cos_dims=[100], cos_q=[1, 4], cos_draws=500,
    ls_n_seeds=1, ls_budget_mezo=20_000, ls_budget_svrg=40_000, ls_fo_steps=200, ls_theory_steps=50,
    dg_n_seeds=1, dg_bs_batches=[32, 128], dg_bs_steps=2, dg_budget=20_000, dg_fo_steps=20, dg_ablation_steps=10,
    dg_mu_grid=[1e-1, 1e-3], dg_q_grid=[1, 2], dg_anchor_sizes=[512, 128],
    mn_lrs=[1e-3], mn_eval_every=1, mn_checkpoint_every=1,
    lm_train=16, lm_test=16, lm_batch=8, lm_mezo_steps=2, lm_svrg_steps=2, lm_fo_steps=2, lm_eval_every=1,
    lm_n_seeds=1, lm_checkpoint_every=1,
    # the synthetic RoBERTa folder has 2 layers: partial fine-tuning trains the last one (4 of 24 for the real one)
    lm_models={"distilbert": {},
               "roberta-large": dict(model="models/roberta-large", last_layers=1, mezo_steps=2, mezo_lr=1e-6,
                                     svrg_steps=2, svrg_lrs=[1e-4, 1e-6], fo_steps=2, fo_lr=1e-4)},
    # one batch for both memory regimes (5 fresh processes, not 10): the dry run checks the path, not the regimes
    mem_batch=4, mem_seq=16, mem_batches=[4], mem_weights_batch=4, mem_steps=1,
)

MNIST_METHODS = ("mezo", "mezo-svrg", "fo-sgd")
LM_METHODS = {"mezo": "MeZO", "mezo-svrg": "MeZO-SVRG", "fo-sgd": "FO-SGD"}
# Table 3.1 / 3.12 / 3.14, SST-2 (FP32): (test accuracy %, fine-tuning loss) by (model, mode, method)
THESIS_SST2: dict[tuple[str, str, str], tuple[float, float]] = {
    ("distilbert", "partial", "MeZO"): (51, 0.6990), ("distilbert", "partial", "MeZO-SVRG"): (74, 0.1034),
    ("distilbert", "partial", "FO-SGD"): (85, 0.0507),
    ("distilbert", "full", "MeZO"): (52, 0.6822), ("distilbert", "full", "MeZO-SVRG"): (72, 0.0203),
    ("distilbert", "full", "FO-SGD"): (88, 0.0121),
    ("roberta-large", "partial", "MeZO"): (54, 0.6837), ("roberta-large", "partial", "MeZO-SVRG"): (72, 0.5896),
    ("roberta-large", "partial", "FO-SGD"): (89, 0.5786),
    ("roberta-large", "full", "MeZO"): (56, 0.69155), ("roberta-large", "full", "MeZO-SVRG"): (84, 0.1336),
    ("roberta-large", "full", "FO-SGD"): (96, 0.1086),
}
# Table 3.3 (RoBERTa-large, FP32, cl 128), GB by method and batch size
THESIS_MEMORY_GB: dict[str, dict[int, float]] = {
    "mezo": {16: 2.07, 32: 2.21, 64: 2.51}, "mezo-svrg": {16: 4.36, 32: 4.51, 64: 4.72},
    "fo-sgd": {16: 6.74, 32: 10.67, 64: 18.55}, "fo-adam": {16: 10.44, 32: 14.33, 64: 22.41},
}
# counting FLOPs needs no data: MNIST's sizes and SST-2's length (a padded batch of 768 sentences is ~64 tokens)
MNIST_TRAIN, MNIST_TEST, SST2_TOKENS = 60_000, 10_000, 64


# ------------------------------------------------------------------------------- the plan
def _first_batch(cfg: Mapping) -> int:
    return min(cfg["dg_bs_batches"])


def plan(cfg: Mapping, seed: int) -> list[RunSpec]:
    """The heavy runs of the chapter's ``full`` configuration ``cfg`` at base seed ``seed`` (module docstring)."""
    specs = []
    for s in experiment_seeds(seed, cfg["dg_n_seeds"], OFFSET_MNIST):
        for b in cfg["dg_bs_batches"]:
            for lr in cfg["mn_lrs"]:
                specs.append(RunSpec("mnist", {"method": "mezo", "batch": b, "lr": lr}, s))
        specs.append(RunSpec("mnist", {"method": "mezo-svrg", "batch": _first_batch(cfg),
                                       "lr": list(cfg["dg_svrg_lrs"])}, s))
        specs.append(RunSpec("mnist", {"method": "fo-sgd", "batch": 64, "lr": cfg["mn_fo_lr"]}, s))
    task_seed = experiment_seeds(seed, 1, OFFSET_TASK)[0]
    for model in cfg["lm_models"]:
        for mode in cfg["lm_modes"]:
            for j, s in enumerate(experiment_seeds(seed, cfg["lm_n_seeds"], OFFSET_LM)):
                for method in ("mezo", "mezo-svrg") + (("fo-sgd",) if j == 0 else ()):  # FO-SGD: a reference
                    specs.append(RunSpec("finetune", {"model": model, "mode": mode, "method": method,
                                                      "task_seed": task_seed}, s))
    from .memory import METHODS

    mem_seed = experiment_seeds(seed, 1, OFFSET_MEMORY)[0]
    for b in _memory_batches(cfg):
        for method in METHODS:
            specs.append(RunSpec("memory", {"method": method, "batch": b, "seq": cfg["mem_seq"]}, mem_seed))
    return specs


def _memory_batches(cfg: Mapping) -> list[int]:
    """Table 3.3's batch sizes, then the weights-dominated regime's batch where it is not one of them."""
    return list(cfg["mem_batches"]) + [b for b in [cfg["mem_weights_batch"]] if b not in cfg["mem_batches"]]


# ------------------------------------------------------------------------------- one run
def _method_kwargs(method: str, lr: Any) -> dict[str, Any]:
    if method == "mezo-svrg":
        return dict(lr_full=float(lr[0]), lr_mini=float(lr[1]), q=2)
    return dict(lr=float(lr))


def _run_mnist(spec: RunSpec, ctx: Any) -> dict[str, Any]:
    from ..core.data import dataset
    from .problems import MLPClassifier

    cfg, p = ctx.cfg, spec.params
    if p["method"] not in MNIST_METHODS:
        raise ValueError(f"method must be one of {MNIST_METHODS}; got {p['method']!r}")
    sp = dataset(cfg.mn_dataset, flat=True, normalize="unit", device=ctx.device)
    model = MLPClassifier((sp.num_features, 32, 16, sp.num_classes),
                          generator=torch.Generator().manual_seed(spec.seed)).to(ctx.device)
    data = Encoded({"x": sp.x_train}, sp.y_train, {"x": sp.x_test}, sp.y_test)
    tr = finetune(model, list(model.parameters()), data, p["method"], steps=cfg.dg_bs_steps, batch_size=p["batch"],
                  mu=1e-3, eval_every=cfg.mn_eval_every, seed=spec.seed,
                  checkpoint=ctx.step_checkpoint("mnist", cfg.mn_checkpoint_every),
                  **_method_kwargs(p["method"], p["lr"]))
    return {**asdict(tr), "n_train": data.n, "params": sum(q.numel() for q in model.parameters())}


def model_settings(cfg: Mapping, model: str) -> tuple[str, int, dict[str, Any]]:
    """``(path, last_layers, overrides)`` of ``model``, a key of ``cfg.lm_models`` (DistilBERT: the ``lm_*`` keys)."""
    if model not in cfg["lm_models"]:
        raise ValueError(f"model must be one of {list(cfg['lm_models'])}; got {model!r}")
    over = dict(cfg["lm_models"][model])
    return over.get("model", cfg["lm_model"]), int(over.get("last_layers", cfg["lm_last_layers"])), over


def _run_finetune(spec: RunSpec, ctx: Any) -> dict[str, Any]:
    from . import experiments as ex
    from .pretrained import load_classifier, trainable_parameters
    from .text import encode, load_task

    cfg, p = ctx.cfg, spec.params
    if p["method"] not in LM_METHODS:
        raise ValueError(f"method must be one of {list(LM_METHODS)}; got {p['method']!r}")
    path, last_layers, over = model_settings(cfg, p["model"])
    task = load_task(cfg.lm_task, cfg.lm_train, cfg.lm_test, seed=p["task_seed"])
    model, tok = load_classifier(path, num_labels=task.num_labels, seed=spec.seed, device=ctx.device)
    dev = ctx.device
    x_train, x_test = encode(tok, task.train_text, dev), encode(tok, task.test_text, dev)
    y_train, y_test = task.train_labels.to(dev), task.test_labels.to(dev)
    tail, data = ex.finetune_inputs(model, x_train, y_train, x_test, y_test, p["mode"], last_layers)
    ex._reseed_head(model, spec.seed)  # as compare_finetuning does for each seed
    params = trainable_parameters(model, p["mode"], last_layers=max(1, last_layers))
    kw = ex.finetune_methods(cfg, len(y_train), over)[LM_METHODS[p["method"]]]
    tr = finetune(tail, params, data, batch_size=cfg.lm_batch, mu=1e-3, eval_every=cfg.lm_eval_every,
                  seed=spec.seed, checkpoint=ctx.step_checkpoint("finetune", cfg.lm_checkpoint_every), **kw)
    return {**asdict(tr), "trainable": sum(q.numel() for q in params),
            "total": sum(q.numel() for q in model.parameters())}


def _run_memory(spec: RunSpec, ctx: Any) -> dict[str, Any]:
    from .memory import peak_memory

    cfg, p = ctx.cfg, spec.params
    device = str(ctx.device) if ctx.device.type == "cuda" else "cpu"
    return peak_memory(p["method"], model=cfg.mem_model, batch_size=p["batch"], seq_len=p["seq"], device=device,
                       steps=cfg.mem_steps, seed=spec.seed)


def execute(spec: RunSpec, ctx: Any) -> dict[str, Any]:
    """Run ``spec`` on ``ctx.device`` (checkpointing through ``ctx``) and return its JSON-able result."""
    runners = {"mnist": _run_mnist, "finetune": _run_finetune, "memory": _run_memory}
    if spec.experiment not in runners:
        raise ValueError(f"experiment must be one of {list(runners)}; got {spec.experiment!r}")
    return runners[spec.experiment](spec, ctx)


# ------------------------------------------------------------------------------- FLOPs
class _LogitsOf(nn.Module):
    """A float input of token ids (what ``training_flops`` feeds) into a classifier; returns its logits."""

    def __init__(self, model: nn.Module, tokens: bool):
        super().__init__()
        self.model, self.tokens = model, tokens

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.model(input_ids=x.long()) if self.tokens else self.model(x)).logits


def _hf_model(arch: str) -> nn.Module:
    import transformers

    if arch == "roberta-large":  # roberta-large's published configuration: 24 layers, 1024 wide, 355M parameters
        cfg = transformers.RobertaConfig(vocab_size=50265, hidden_size=1024, num_hidden_layers=24,
                                         num_attention_heads=16, intermediate_size=4096, max_position_embeddings=514,
                                         type_vocab_size=1, num_labels=2)
        return _LogitsOf(transformers.RobertaForSequenceClassification(cfg), True)
    cfg = transformers.DistilBertConfig(vocab_size=28996, num_labels=2)  # distilbert-base-cased: 6 layers, 768 wide
    return _LogitsOf(transformers.DistilBertForSequenceClassification(cfg), True)


@functools.cache
def _per_sample(kind: str, backward: bool, tokens: int = SST2_TOKENS) -> float:
    """FLOPs of one sample's forward (and backward) pass, counted once on the meta device."""
    if kind == "mlp":
        from .problems import MLPClassifier

        return training_flops(lambda: _LogitsOf(MLPClassifier(), False), (784,), 1, backward)
    return training_flops(lambda: _hf_model(kind), (tokens,), 1, backward)


def _layers(kind: str) -> int:
    return 24 if kind == "roberta-large" else 6


def _zo_forward_samples(method: str, steps: int, b: int, n: int, q: int = 2) -> float:
    """Single-sample forward passes of a run: MeZO 2b a step; MeZO-SVRG 2n an anchor step, 4b the others."""
    if method == "mezo":
        return 2.0 * b * steps
    return (2.0 * n + 4.0 * b * (q - 1)) * math.ceil(steps / q)


def flops(spec: RunSpec, cfg: Mapping) -> float:
    """Floating-point operations of one run (training and evaluation), for ``sweep plan``'s GPU-hours."""
    p = spec.params
    if spec.experiment == "mnist":
        steps, b = cfg["dg_bs_steps"], p["batch"]
        fwd = _per_sample("mlp", False)
        evals = (steps // cfg["mn_eval_every"] + 1) * (MNIST_TRAIN + MNIST_TEST) * fwd
        if p["method"] == "fo-sgd":
            return _per_sample("mlp", True) * b * steps + evals
        return fwd * _zo_forward_samples(p["method"], steps, b, MNIST_TRAIN) + evals
    if spec.experiment == "finetune":
        kind = "roberta-large" if "roberta" in p["model"] else "distilbert"
        _, last_layers, over = model_settings(cfg, p["model"])
        kw = {k: over.get(k, cfg[f"lm_{k}"]) for k in ("mezo_steps", "svrg_steps", "fo_steps")}
        steps = kw[{"mezo": "mezo_steps", "mezo-svrg": "svrg_steps", "fo-sgd": "fo_steps"}[p["method"]]]
        n, b = cfg["lm_train"], cfg["lm_batch"]
        # partial fine-tuning runs the frozen layers once (CachedPrefix) and every query through the tail only
        frac = 1.0 if p["mode"] == "full" else max(1, last_layers) / _layers(kind)
        prefix = 0.0 if p["mode"] == "full" else (n + cfg["lm_test"]) * _per_sample(kind, False)
        evals = (steps // cfg["lm_eval_every"] + 1) * (n + cfg["lm_test"]) * _per_sample(kind, False) * frac
        if p["method"] == "fo-sgd":
            return _per_sample(kind, True) * frac * b * steps + evals + prefix
        return _per_sample(kind, False) * frac * _zo_forward_samples(p["method"], steps, b, n) + evals + prefix
    if spec.experiment == "memory":
        passes = {"inference": 1, "mezo": 2, "mezo-svrg": 3, "fo-sgd": 1, "fo-adam": 1}[p["method"]]
        return (_per_sample("roberta-large", p["method"].startswith("fo"), p["seq"])
                * passes * p["batch"] * cfg["mem_steps"])
    raise ValueError(f"experiment must be 'mnist', 'finetune' or 'memory'; got {spec.experiment!r}")


# ------------------------------------------------------------------------------- collecting for the notebook
def _stack(results: Sequence[Mapping[str, Any]]) -> Trace:
    """Per-seed :class:`FinetuneTrace` results as one batched :class:`Trace` (seeds as columns of the losses)."""
    if not results:
        raise ValueError("no runs to stack")
    first = results[0]
    loss = torch.tensor([r["train_loss"] for r in results], dtype=torch.float64).T
    return Trace(queries=list(first["queries"]), steps=list(first["steps"]), seconds=list(first["seconds"]),
                 loss=list(loss))


def batch_size_results(results: Any, cfg: Mapping, lr: float | None = None) -> tuple[dict[int, Trace], Trace]:
    """What :func:`effcourse.mezo.experiments.batch_size_study` returns, from the sweep's ``mnist`` runs: MeZO's
    trace at each batch size at ``lr`` (default ``cfg.dg_lr``) and MeZO-SVRG's at the smallest batch."""
    lr = cfg["dg_lr"] if lr is None else lr
    runs = {b: _stack([r for _, r in results.where("mnist", method="mezo", batch=b, lr=lr)])
            for b in cfg["dg_bs_batches"]}
    svrg = _stack([r for _, r in results.where("mnist", method="mezo-svrg", batch=_first_batch(cfg))])
    return runs, svrg


def mnist_rows(results: Any) -> list[dict]:
    """Every ``mnist`` setting: the late-run training loss (mean over the second half, median over seeds) and the
    final test accuracy (median), as Table 3.5's grid."""
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for spec, r in results.where("mnist"):
        groups.setdefault((spec.params["method"], spec.params["batch"], str(spec.params["lr"])), []).append(r)
    rows = []
    for (method, b, lr), rs in groups.items():
        late = [float(np.mean(np.nan_to_num(r["train_loss"][len(r["train_loss"]) // 2:], nan=1e6))) for r in rs]
        rows.append({"method": method, "batch": b, "lr": lr, "late-run loss (median)": float(np.median(late)),
                     "test accuracy (median)": float(np.median([r["test_acc"][-1] for r in rs])), "seeds": len(rs)})
    return rows


def _trace(r: Mapping[str, Any]) -> FinetuneTrace:
    return FinetuneTrace(**{f.name: r[f.name] for f in fields(FinetuneTrace)})


def finetuning_results(results: Any, cfg: Mapping, model: str | None = None,
                       mode: str | None = None) -> tuple[list[dict[str, FinetuneTrace]], int]:
    """What :func:`effcourse.mezo.experiments.compare_finetuning` returns, from the sweep's ``finetune`` runs of
    ``model`` (default the first of ``cfg.lm_models``, DistilBERT) in ``mode`` (default the first of ``lm_modes``,
    partial): one dict of traces per seed (FO-SGD at the first) and the number of trainable parameters."""
    model = next(iter(cfg["lm_models"])) if model is None else model
    mode = cfg["lm_modes"][0] if mode is None else mode
    by_seed: dict[int, dict[str, FinetuneTrace]] = {}
    trainable = 0
    for spec, r in results.where("finetune", model=model, mode=mode):
        by_seed.setdefault(spec.seed, {})[LM_METHODS[spec.params["method"]]] = _trace(r)
        trainable = int(r["trainable"])
    if not by_seed:
        raise KeyError(f"no finetune runs of model {model!r} in mode {mode!r}")
    order = ("MeZO", "MeZO-SVRG", "FO-SGD")
    return [{k: d[k] for k in order if k in d} for _, d in sorted(by_seed.items())], trainable


def finetuning_table(results: Any, cfg: Mapping) -> list[dict]:
    """Tables 3.1 / 3.12 / 3.14 on SST-2: each model, setting and method's final test accuracy and fine-tuning loss
    (medians over seeds) next to the thesis's."""
    rows = []
    for model in cfg["lm_models"]:
        for mode in cfg["lm_modes"]:
            runs, trainable = finetuning_results(results, cfg, model, mode)
            for name in ("MeZO", "MeZO-SVRG", "FO-SGD"):
                trs = [r[name] for r in runs if name in r]
                acc, loss = THESIS_SST2.get((model, mode, name), (float("nan"), float("nan")))
                rows.append({"model": model, "setting": mode, "method": name, "trainable (M)": trainable / 1e6,
                             "test accuracy %": 100 * float(np.median([t.test_acc[-1] for t in trs])),
                             "thesis %": acc, "fine-tuning loss": float(np.median([t.train_loss[-1] for t in trs])),
                             "thesis loss": loss, "seeds": len(trs)})
    return rows


def memory_results(results: Any, cfg: Mapping, batch: int | None = None) -> dict[str, dict]:
    """What :func:`effcourse.mezo.memory.peak_memory_table` returns, from the sweep's ``memory`` runs at ``batch``
    (default ``cfg.mem_batch``): one record per method."""
    batch = cfg["mem_batch"] if batch is None else batch
    out = {spec.params["method"]: dict(r) for spec, r in results.where("memory", batch=batch)}
    if not out:
        raise KeyError(f"no memory runs at batch {batch}; batches: {_memory_batches(cfg)}")
    return out


def memory_table(results: Any, cfg: Mapping) -> list[dict]:
    """Table 3.3: peak memory (GB, CUDA allocations) of each method at each batch size, beside the thesis's."""
    rows = []
    for b in cfg["mem_batches"]:
        mem = memory_results(results, cfg, b)
        for method, r in mem.items():
            rows.append({"batch": b, "method": method, "peak GB": r["peak_mb"] / 1024,
                         "thesis GB": THESIS_MEMORY_GB.get(method, {}).get(b, float("nan"))})
    return rows

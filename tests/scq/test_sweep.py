"""Chapter 04-scq's sweep (effcourse.scq.sweep): the plan against the thesis's protocol (Gautam 2024, Tables 5.1 and
5.3), one dry-run run, the collection for the notebook, and kill-and-resume."""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from effcourse.core.config import config
from effcourse.core.data import dataset
from effcourse.core.harness import experiment_seeds
from effcourse.scq import experiments as ex
from effcourse.scq import sweep as scq_sweep
from effcourse.scq.config import FULL
from effcourse.sweep import RunContext, RunSpec, Sweep, synthetic
from effcourse.sweep.spec import sweep_config
from effcourse.sweep.testing import dry_run_cli, resume_and_rerun

ROOT = Path(__file__).resolve().parents[2]
# wall-clock measurements: the only parts of a result that a resumed run cannot repeat
TIMING = {"quant_ms", "seconds"}


def _untimed(d):
    if isinstance(d, dict):
        return {k: _untimed(v) for k, v in d.items() if k not in TIMING}
    return d


def test_full_config_is_table_5_3s_cifar10_column():
    cfg = sweep_config("04-scq")
    # Table 5.3, CIFAR-10: 32x32 -> 16x16 latents, beta 0.25, batch 128, 32 conv / 16 residual channels, 2 residual
    # blocks, K = 128 codes of dimension 16, lambda 0.1, m = 20, 19,550 training steps; Table 5.1: 5 runs
    assert cfg.dataset == "cifar10" and cfg.image_channels == 3 and 32 // 2**cfg.downsamples == 16
    assert (cfg.beta, cfg.batch_size, cfg.channels, cfg.res_channels, cfg.res_blocks) == (0.25, 128, 32, 16, 2)
    assert (cfg.num_codes, cfg.code_dim, cfg.lam, cfg.alg9_steps) == (128, 16, 0.1, 20)
    assert cfg.steps == 19550 == 50 * -(-50_000 // 128)  # "50 epochs" of 391 batches
    assert cfg.eval_every == 391 and cfg.n_seeds == 5  # evaluated (and checkpointed) once per epoch
    assert cfg.methods == ["ae", "vq", "vq_rep", "scq"]


def test_plan_runs_every_quantizer_on_the_notebooks_seeds():
    cfg = sweep_config("04-scq")
    for base in (0, 3):
        specs = scq_sweep.plan(cfg, base)
        by = {e: [(s.params["kind"], s.seed) for s in specs if s.experiment == e] for e in ("table51", "alg9", "init")}
        seeds = experiment_seeds(base, 5, 0)  # the notebook's run.seeds(cfg.n_seeds)
        assert seeds == [1000 * base + i for i in range(5)]
        # Table 5.1: VQ, VQ + replacement and SCQ over 5 runs, the non-quantized reference once
        assert sorted(by["table51"]) == sorted([("ae", seeds[0])] + [(k, s) for k in ("vq", "vq_rep", "scq")
                                                                      for s in seeds])
        assert by["alg9"] == [("scq_alg9", seeds[0])]
        # the N(0, 1) study is paired with the first Table 5.1 seeds; SCQ's run on the first of them only
        assert sorted(by["init"]) == sorted([(k, s) for k in ("vq", "vq_rep", "simvq") for s in seeds[:3]]
                                            + [("scq", seeds[0])])
        assert {s.params["init"] for s in specs if s.experiment == "init"} == {"normal"}
        assert {s.params["init"] for s in specs if s.experiment != "init"} == {"uniform"}
        assert len(specs) == 27 == len({s.run_id for s in specs})
    # the notebook draws exactly these seed lists (offset 0), so notebook and sweep agree
    src = (ROOT / "chapters" / "04-scq" / "scq.py").read_text()
    assert "run.seeds(cfg.n_seeds)" in src and "run.seeds(cfg.n_init_seeds)" in src and scq_sweep.SEED_OFFSET == 0


def test_dry_run_cuts_only_budgets_and_keeps_the_model():
    assert set(scq_sweep.DRY_RUN) <= set(FULL)
    assert scq_sweep.DRY_RUN["steps"] >= 2 and scq_sweep.DRY_RUN["eval_every"] == 1  # >= 2 checkpoint writes
    sizes = {"image_channels", "channels", "res_channels", "res_blocks", "downsamples", "num_codes", "code_dim",
             "lam", "beta", "alg9_steps", "dataset", "methods", "init_methods"}
    assert not sizes & set(scq_sweep.DRY_RUN)
    dry = Sweep("04-scq", dry_run=True)
    assert len(dry.specs) == 12 and {s.experiment for s in dry.specs} == {"table51", "alg9", "init"}
    assert scq_sweep.DATA == ("cifar10",)


def test_flops_count_training_and_evaluation():
    cfg = sweep_config("04-scq")
    spec = {k: RunSpec("table51", {"kind": k, "init": "uniform"}, 0) for k in ("ae", "vq", "vq_rep", "scq")}
    f = {k: scq_sweep.flops(s, cfg) for k, s in spec.items()}
    # ~19 MFLOP per 32x32 image forward, x3 with the backward pass, 19,550 x 128 images, plus 51 test passes
    assert 1e14 < f["ae"] < f["vq"] == f["vq_rep"] < f["scq"] < 3e14, f
    double = scq_sweep.flops(spec["scq"], cfg.replace(steps=2 * cfg.steps))
    assert 1.9 < double / f["scq"] < 2.0
    with pytest.raises(ValueError, match="dataset"):
        scq_sweep.flops(spec["scq"], cfg.replace(dataset="digits"))
    assert 0 < Sweep("04-scq").gpu_hours() < 1  # FLOP-wise tiny; the runs are latency-bound (see the notebook)


@pytest.fixture()
def cifar(tmp_path, monkeypatch):
    monkeypatch.setenv("EFFCOURSE_DATA", str(synthetic.write(tmp_path / "data", ["cifar10"])))
    return tmp_path


def test_execute_one_dry_run_spec(cifar):
    cfg = sweep_config("04-scq", dry_run=True)
    spec = RunSpec("table51", {"kind": "scq", "init": "uniform"}, 1)
    ctx = RunContext(spec, cfg, torch.device("cpu"), cifar / "run")
    ctx.dir.mkdir()
    r = scq_sweep.execute(spec, ctx)
    json.dumps(r, allow_nan=False)  # JSON values only
    assert set(r) == {"metrics", "history", "replaced", "model_file"}
    assert {"recon_mse", "quant_error", "perplexity_hard", "perplexity_soft", "codes_used", "nonzeros",
            "quant_ms"} <= set(r["metrics"])
    assert r["history"]["steps"] == [1, 2] and not r["history"]["diverged"]
    assert ctx.saves == 2 and (ctx.dir / "checkpoint-train.pt").exists()
    state = torch.load(ctx.dir / r["model_file"], weights_only=True)
    assert state["quantizer.codebook"].shape == (128, 16)  # the thesis's codebook, full size


class _FakeResults:
    """The part of effcourse.sweep.Results that the collect functions use, over runs executed here."""

    def __init__(self, runs):
        self.runs = runs  # [(spec, result, folder)]

    def where(self, experiment, **params):
        return [(s, r) for s, r, _ in self.runs
                if s.experiment == experiment and all(s.params.get(k) == v for k, v in params.items())]

    def run_dir(self, run_id):
        return next(d for s, _, d in self.runs if s.run_id == run_id)


def test_collect_returns_what_the_inline_code_returns(cifar):
    cfg = sweep_config("04-scq", dry_run=True).replace(n_seeds=1, methods=["ae", "scq"], init_methods=["vq"])
    specs = scq_sweep.plan(cfg, 0)
    runs = []
    for i, spec in enumerate(specs):
        ctx = RunContext(spec, cfg, torch.device("cpu"), cifar / f"run{i}")
        ctx.dir.mkdir()
        runs.append((spec, json.loads(json.dumps(scq_sweep.execute(spec, ctx))), ctx.dir))
    got, models, hists = scq_sweep.collect_methods(_FakeResults(runs), cfg, [0])
    data = dataset(cfg.dataset, normalize="unit")
    want, want_models, want_hists = ex.train_methods(cfg, data, [0], progress=False)
    assert list(got) == list(want) == [("ae", 0), ("scq", 0)]
    assert _untimed(got) == _untimed(want)
    assert all(_untimed(asdict(hists[k])) == _untimed(asdict(want_hists[k])) for k in want)
    for k in want:
        a, b = models[k].state_dict(), want_models[k].state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[n], b[n]) for n in a)
    h9, r9 = scq_sweep.collect_alg9(_FakeResults(runs), 0)
    assert isinstance(h9, type(want_hists["scq", 0])) and h9.steps == [1, 2] and r9 is not None
    init = scq_sweep.collect_init_study(_FakeResults(runs), cfg, [0])
    assert list(init) == [("vq", 0)] and init["vq", 0]["codes_used"] >= 1
    with pytest.raises(KeyError, match="seed 7"):
        scq_sweep.collect_init_study(_FakeResults(runs), cfg, [7])


class _Killed(Exception):
    pass


class _DiesAfterSaves(RunContext):
    """A run context whose process 'dies' (raises) right after its ``n``-th checkpoint write."""

    def __init__(self, *a, n: int, **kw):
        super().__init__(*a, **kw)
        self.n = n

    def save(self, name, step, **state):
        super().save(name, step, **state)
        if self.saves >= self.n:
            raise _Killed


def test_training_resumes_mid_epoch_exactly(tmp_path):
    # digits: 1,257 images, 9 batches of 128 per epoch, so the kill at step 150 falls mid-epoch; dead-code
    # replacement at steps 100 and 200 draws from torch's global RNG, which the checkpoint must restore
    cfg = config("04-scq", "smoke").replace(steps=220, eval_every=50)
    data = dataset("digits", normalize="unit")
    spec = RunSpec("table51", {"kind": "vq_rep", "init": "normal"}, 5)

    def train(ctx):
        from effcourse.scq.autoencoder import StepCheckpoint

        return ex.train_one(cfg, data, "vq_rep", 5, "normal", progress=False,
                            checkpoint=StepCheckpoint(ctx, "train", every=75))

    died = _DiesAfterSaves(spec, cfg, torch.device("cpu"), tmp_path / "a", n=2)
    died.dir.mkdir()
    with pytest.raises(_Killed):
        train(died)
    torch.manual_seed(123)  # a fresh process: other RNG states
    model, hist, res = train(RunContext(spec, cfg, torch.device("cpu"), died.dir))
    ctx = RunContext(spec, cfg, torch.device("cpu"), tmp_path / "b")
    ctx.dir.mkdir()
    model2, hist2, res2 = train(ctx)
    assert model.quantizer.replaced == model2.quantizer.replaced > 0
    assert _untimed(asdict(hist)) == _untimed(asdict(hist2)) and hist.steps == [50, 100, 150, 200, 220]
    assert _untimed(res) == _untimed(res2)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), model2.state_dict().values()))


def _sweep(out: Path, run_id: str, kill: bool) -> subprocess.CompletedProcess:
    return dry_run_cli("04-scq", out, run_id, kill_after=1 if kill else None, timeout=300)


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    run_id = "table51/kind=scq_init=uniform_s=0"
    assert run_id in {s.run_id for s in Sweep("04-scq", dry_run=True).specs}
    folder = tmp_path / "killed" / "04-scq" / run_id
    p = _sweep(tmp_path / "killed", run_id, kill=True)
    assert p.returncode == -9, p.stderr[-2000:]  # SIGKILL after its first checkpoint write
    assert (folder / "checkpoint-train.pt").exists() and not (folder / "result.json").exists()
    resumed, whole = resume_and_rerun("04-scq", tmp_path / "killed", tmp_path / "whole", run_id)
    assert resumed["result"]["history"]["steps"] == [1, 2]
    assert _untimed(resumed["result"]) == _untimed(whole["result"])
    a = torch.load(folder / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "whole" / "04-scq" / run_id / "model.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in b)


def test_thesis_comparison_against_table_5_1():
    cfg = sweep_config("04-scq")
    seeds = [0, 1]
    at = {k: {m: v for m, v in ex.THESIS_CIFAR10[k].items()} for k in cfg.methods}
    res = {(k, sd): {**at[k], "recon_mse": at[k]["recon_mse"] * (1.5 if sd else 0.5)} for k in cfg.methods
           for sd in seeds}  # mean over the seeds: the thesis's MSE exactly
    rows = ex.thesis_comparison(cfg, res, seeds)
    assert len(rows) == 1 + 3 * 3 and all(r["within"] for r in rows)
    assert all(r["ratio"] == pytest.approx(1.0) for r in rows)
    asserted = {(r["kind"], r["metric"]) for r in rows if r["assert"]}
    assert asserted == {("ae", "recon_mse"), ("vq_rep", "recon_mse"), ("scq", "recon_mse")}
    res["scq", 0] = {**res["scq", 0], "recon_mse": 4 * 1.53e-3}  # mean 2.75x the thesis's
    scq = next(r for r in ex.thesis_comparison(cfg, res, seeds) if (r["kind"], r["metric"]) == ("scq", "recon_mse"))
    assert not scq["within"] and scq["ratio"] == pytest.approx(2.75)
    assert ex.thesis_comparison(cfg, res, seeds, factor=3.0)[-3]["within"]
    with pytest.raises(ValueError, match="factor"):
        ex.thesis_comparison(cfg, res, seeds, factor=1.0)

"""Chapter 2's sweep: the plan follows the thesis's protocol, a dry-run spec executes, and a killed run resumes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from effcourse.core.config import config
from effcourse.core.harness import experiment_seeds
from effcourse.mezo import sweep as msweep
from effcourse.sweep import Sweep
from effcourse.sweep.testing import dry_run_cli, resume_and_rerun

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def full():
    return config("02-mezo-svrg", "full")


def test_full_config_fixes_follow_the_thesis(full):
    # Fig. 3.1b on MNIST at Table 3.5's grid; both fine-tuning settings; RoBERTa-large fine-tuned (Table 3.13)
    assert full.mn_dataset == "mnist" and full.dg_bs_batches == [32, 64, 128] and full.mn_lrs == [1e-3, 1e-4]
    assert full.lm_modes == ["partial", "full"]
    rob = full.lm_models["roberta-large"]
    assert rob["model"] == "models/roberta-large" and rob["last_layers"] == 4  # layers 20-23 + classifier
    assert (rob["mezo_steps"], rob["svrg_steps"], rob["fo_steps"]) == (96_000, 24_000, 1_000)
    assert (full.lm_mezo_steps, full.lm_svrg_steps, full.lm_fo_steps, full.lm_batch) == (200_000, 50_000, 1_000, 64)
    assert (full.lm_train, full.lm_test, full.lm_last_layers) == (512, 256, 1)
    assert full.mem_batches == [16, 32, 64] and full.mem_seq == 128 and full.mem_model == "models/roberta-large"
    assert full.mem_weights_batch == 1


def test_plan_matches_the_protocol_and_the_notebooks_seeds(full):
    specs = msweep.plan(full, seed=3)
    by = {e: [s for s in specs if s.experiment == e] for e in ("mnist", "finetune", "memory")}
    # MNIST: 3 batches x 2 rates of MeZO + MeZO-SVRG + FO-SGD, per seed; seeds at the notebook's offset 20
    assert len(by["mnist"]) == full.dg_n_seeds * (3 * 2 + 2)
    assert sorted({s.seed for s in by["mnist"]}) == experiment_seeds(3, full.dg_n_seeds, 20)
    assert {s.params["batch"] for s in by["mnist"] if s.params["method"] == "fo-sgd"} == {64}
    # fine-tuning: 2 models x 2 settings x (2 ZO methods x 3 seeds + FO-SGD at the first)
    assert len(by["finetune"]) == 2 * 2 * (2 * full.lm_n_seeds + 1)
    lm_seeds = experiment_seeds(3, full.lm_n_seeds, 30)
    assert sorted({s.seed for s in by["finetune"]}) == lm_seeds
    assert {s.seed for s in by["finetune"] if s.params["method"] == "fo-sgd"} == {lm_seeds[0]}
    assert {(s.params["model"], s.params["mode"]) for s in by["finetune"]} == {
        (m, k) for m in ("distilbert", "roberta-large") for k in ("partial", "full")}
    assert {s.params["task_seed"] for s in by["finetune"]} == {experiment_seeds(3, 1, 7)[0]}
    # Table 3.3's three batch sizes and batch 1 (the weights dominate), five methods each
    assert len(by["memory"]) == 4 * 5 and {s.seed for s in by["memory"]} == {experiment_seeds(3, 1, 41)[0]}
    assert sorted({s.params["batch"] for s in by["memory"]}) == [1, 16, 32, 64]


def test_flops_rank_the_runs_sensibly(full):
    specs = {(s.experiment, tuple(sorted((k, str(v)) for k, v in s.params.items() if k != "task_seed"))): s
             for s in msweep.plan(full, 0)}

    def f(exp, **p):
        key = (exp, tuple(sorted((k, str(v)) for k, v in p.items())))
        return msweep.flops(specs[key], full)

    # RoBERTa-large costs more than DistilBERT, full fine-tuning more than partial
    assert f("finetune", model="roberta-large", mode="full", method="mezo") > \
        f("finetune", model="distilbert", mode="full", method="mezo") > \
        f("finetune", model="distilbert", mode="partial", method="mezo") > 0
    assert 1 < Sweep("02-mezo-svrg").gpu_hours() < 1_000


def _run(out, run_id, kill_after=None):
    return dry_run_cli("02-mezo-svrg", out, run_id, kill_after=kill_after)


@pytest.mark.slow
@pytest.mark.parametrize("pattern", ["finetune/model=distilbert_mode=partial_method=mezo-svrg*", "mnist/method=mezo_*"])
def test_a_killed_run_resumes_to_the_uninterrupted_result(tmp_path, pattern):
    sw = Sweep("02-mezo-svrg", dry_run=True)
    import fnmatch

    run_id = next(s.run_id for s in sw.specs if fnmatch.fnmatchcase(s.run_id, pattern))
    a, b = tmp_path / "a", tmp_path / "b"
    killed = _run(a, run_id, kill_after=1)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert not (a / "02-mezo-svrg" / run_id / "result.json").exists()
    assert list((a / "02-mezo-svrg" / run_id).glob("checkpoint-*.pt"))  # it died after its first checkpoint
    ra, rb = resume_and_rerun("02-mezo-svrg", a, b, run_id)
    res_a, res_b = ra["result"], rb["result"]
    assert res_a.pop("seconds") and res_b.pop("seconds")  # wall time is the one thing that differs
    assert res_a == res_b and len(res_a["steps"]) >= 3  # steps 0, 1, 2: it trained past the checkpoint


def test_execute_returns_the_traces_the_notebook_collects(tmp_path):
    import torch

    from effcourse.sweep import RunContext
    from effcourse.sweep.synthetic import write

    sw = Sweep("02-mezo-svrg", dry_run=True)
    data = write(tmp_path / "data", ["glue-sst2", "hf-distilbert", "mnist"])
    os.environ["EFFCOURSE_DATA"] = str(data)
    try:
        for exp in ("finetune", "mnist"):
            spec = next(s for s in sw.specs if s.experiment == exp and s.params["method"] == "mezo"
                        and s.params.get("mode", "full") == "full")
            ctx = RunContext(spec, sw.cfg, torch.device("cpu"), tmp_path / exp)
            ctx.dir.mkdir()
            r = msweep.execute(spec, ctx)
            assert {"steps", "queries", "passes", "seconds", "train_loss", "test_acc"} <= set(r), sorted(r)
            assert r["steps"] == [0, 1, 2] and r["queries"][-1] == 2 * 2 * spec.params.get("batch", sw.cfg.lm_batch)
            json.dumps(r)  # JSON-able
        assert r["params"] == 784 * 32 + 32 + 32 * 16 + 16 + 16 * 10 + 10  # Fig. 3.1b's 25,818-parameter MLP
    finally:
        del os.environ["EFFCOURSE_DATA"]

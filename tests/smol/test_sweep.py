"""Chapter 7's sweep (effcourse/smol/sweep.py): the plan is the thesis's protocol (Savarese 2025, 5.3.3, Table 5.1,
Fig. 5.7), one run executes and returns what the notebook reads, and a run killed mid-phase resumes exactly."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

import pytest
import torch

from effcourse.core.harness import experiment_seeds
from effcourse.core.models import ResNet20
from effcourse.smol import sweep as smol_sweep
from effcourse.smol.config import D_RESNET20, FULL, TABLE_5_1_SMOL, THESIS_LAMBDAS
from effcourse.smol.models import count_quantized, quantized_names
from effcourse.sweep import RunContext, RunSpec, Sweep, synthetic
from effcourse.sweep.spec import config_hash
from effcourse.sweep.testing import dry_run_cli, resume_and_rerun

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def full() -> Sweep:
    return Sweep("07-smol")


@pytest.fixture(scope="module")
def dry() -> Sweep:
    return Sweep("07-smol", dry_run=True)


def test_full_config_is_the_thesis_protocol():
    # 5.3.3: 350 + 300 epochs, SGD 0.9 from lr 0.1 decayed at epochs 250, 500 and 600, batch 128, wd 1e-4,
    # Adam 1e-3 on s, p_init 8, lambda in {5e-7, 7e-7, 1e-6}
    assert (FULL["precision_epochs"], FULL["finetune_epochs"]) == (350, 300)
    decays = FULL["milestones"] + [FULL["precision_epochs"] + m for m in FULL["ft_milestones"]]
    assert decays == [250, 500, 600]
    assert (FULL["lr_w"], FULL["momentum"], FULL["batch_size"], FULL["weight_decay"]) == (0.1, 0.9, 128, 1e-4)
    assert FULL["lr_ft"] == pytest.approx(FULL["lr_w"] / 10)  # fine-tuning continues after the decay at 250
    assert (FULL["lr_s"], FULL["p_init"], FULL["model"], FULL["dataset"]) == (1e-3, 8.0, "resnet20", "cifar10")
    # lambda * d with d ResNet-20's quantized weights (19 convolutions + the linear layer; 1x1 shortcuts excluded)
    model = ResNet20(num_classes=10)
    assert count_quantized(model) == D_RESNET20 and len(quantized_names(model)) == 20
    assert [ld / D_RESNET20 for ld in FULL["lam_d"]] == pytest.approx(list(THESIS_LAMBDAS), rel=1e-6)
    assert THESIS_LAMBDAS == (5e-7, 7e-7, 1e-6) and [t[0] for t in TABLE_5_1_SMOL] == list(THESIS_LAMBDAS)
    assert [t[1] for t in TABLE_5_1_SMOL] == [2.8, 2.5, 2.1]  # more lambda, fewer bits (5.3.3)
    # Fig. 5.7: lambda = 7e-7, 650 epochs split in steps of 50
    assert FULL["split_lam_d"] / D_RESNET20 == pytest.approx(7e-7, rel=1e-6) and FULL["split_total"] == 650
    assert FULL["layer_lam_d"][0] / D_RESNET20 == pytest.approx(1e-6, rel=1e-6)


def test_plan_runs_every_table_entry_on_the_notebooks_seeds(full):
    specs = full.specs
    assert Counter(s.experiment for s in specs) == {"smol": 9, "uniform": 3, "smol-l": 1, "split": 12}
    seeds = experiment_seeds(0, FULL["n_seeds"], 0)  # the notebook's run.seeds(cfg.n_seeds)
    smol = {(s.params["lam_d"], s.seed) for s in specs if s.experiment == "smol"}
    assert smol == {(ld, sd) for ld in FULL["lam_d"] for sd in seeds}
    assert sorted(s.seed for s in specs if s.experiment == "uniform") == seeds
    split = [s for s in specs if s.experiment == "split"]
    assert [s.params["precision_epochs"] for s in split] == list(range(50, 650, 50))
    assert {s.seed for s in split} == {seeds[0]} and {s.params["lam_d"] for s in split} == {FULL["split_lam_d"]}
    # another base seed is an independent replicate: the same runs on other seeds
    other = Sweep("07-smol", seed=1).specs
    assert [s.experiment for s in other] == [s.experiment for s in specs]
    assert {s.seed for s in other} == set(experiment_seeds(1, FULL["n_seeds"], 0))


def test_epochs_and_flops_follow_the_protocol(full):
    by = {s.experiment: s for s in full.specs}
    ep = {k: smol_sweep.epochs(s, full.cfg) for k, s in by.items()}
    assert ep["smol"] == 350 + 2 * 300  # precision training, fine-tuning without and with ZPA
    assert ep["uniform"] == 350 + 4 * 300  # full precision, then FP, 1-, 2- and 3-bit fine-tuning
    assert ep["smol-l"] == 2 * 650 + 300 and ep["split"] == 650
    f = {k: full.flops(s) for k, s in by.items()}
    # evaluations are a small part of a run: FLOPs grow like its training epochs
    assert f["uniform"] / f["smol"] == pytest.approx(ep["uniform"] / ep["smol"], rel=0.02)
    assert 0 < full.gpu_hours() < 1e3
    with pytest.raises(ValueError, match="spec.experiment"):
        smol_sweep.flops(RunSpec("nope", {}, 0), full.cfg)


def test_dry_run_cuts_epochs_and_grids_only(full, dry):
    assert set(smol_sweep.DRY_RUN) <= set(FULL)
    assert dry.cfg["model"] == "resnet20" and dry.cfg["dataset"] == "cifar10"
    assert dry.cfg["precision_epochs"] == 2 and dry.cfg["finetune_epochs"] == 1  # two checkpoints in a phase
    assert set(dry.cfg["lam_d"]) <= set(FULL["lam_d"]) and len(dry.cfg["lam_d"]) == 2
    assert dry.cfg["split_lam_d"] in dry.cfg["lam_d"]  # the notebook plots the split at a lambda of section 4
    assert {s.experiment for s in dry.specs} == {s.experiment for s in full.specs} and len(dry.specs) == 5
    assert smol_sweep.DATA == ("cifar10",) and dry.hash != full.hash


def test_plan_needs_the_splits_lambda(full):
    with pytest.raises(ValueError, match="split_lam_d"):
        smol_sweep.plan(full.cfg.replace(split_lam_d=None), 0)


def test_pack_restores_a_tensor_exactly():
    for t in (torch.randn(3, 4, 5), torch.randint(0, 9, (7, 2)), torch.tensor(3)):
        u = smol_sweep.unpack(json.loads(json.dumps(smol_sweep.pack(t))))
        assert u.dtype == t.dtype and torch.equal(u, t)


def test_execute_one_dry_run_spec_returns_what_the_notebook_reads(dry, tmp_path, monkeypatch):
    monkeypatch.setenv("EFFCOURSE_DATA", str(synthetic.write(tmp_path / "data", ["cifar10"], seed=0)))
    spec = next(s for s in dry.specs if s.experiment == "smol")
    ctx = RunContext(spec, dry.cfg.replace(precision_epochs=1), torch.device("cpu"), tmp_path / "run", True)
    ctx.dir.mkdir()
    r = smol_sweep.execute(spec, ctx)
    json.dumps(r, allow_nan=False)  # JSON-able
    assert {"bpp", "bpp_zpa", "err_before", "err_after", "err_zpa_after", "err_shuffled_before",
            "train_loss_shuffled_before", "zpa_error_never_up", "precisions", "state"} <= set(r)
    assert len(r["precisions"]) == 20 and 1 <= r["bpp"] <= 8 and r["bpp_zpa"] <= r["bpp"]
    assert sorted(p.name for p in ctx.dir.glob("checkpoint-*.pt")) == [
        "checkpoint-finetune-zpa.pt", "checkpoint-finetune.pt", "checkpoint-precision.pt"]
    # the notebook's view: the SMOL at the run's weights, whose s gives back the run's precisions
    back = smol_sweep._smol(dry.cfg, smol_sweep._DUMMY, spec.seed, r)
    name = back["smol"].names[0]
    s = back["smol"].parametrization(name).s.detach()
    from effcourse.smol.precision import integer_precision

    assert torch.equal(integer_precision(s).expand_as(back["precisions"][name]), back["precisions"][name])
    with pytest.raises(ValueError, match="spec.experiment"):
        smol_sweep.execute(RunSpec("nope", {}, 0), ctx)


def _sweep_run(out: Path, run_id: str, kill: bool) -> subprocess.CompletedProcess:
    return dry_run_cli("07-smol", out, run_id, kill_after=1 if kill else None)


@pytest.mark.slow
def test_a_run_killed_mid_phase_resumes_to_the_uninterrupted_result(dry, tmp_path):
    # the split run: 2 epochs of precision training, 1 of fine-tuning; killed after its first epoch
    spec = next(s for s in dry.specs if s.experiment == "split")
    assert spec.params["precision_epochs"] == 2
    killed = _sweep_run(tmp_path / "a", spec.run_id, kill=True)
    assert killed.returncode == -9, killed.stderr[-2000:]
    run_dir = tmp_path / "a" / "07-smol" / spec.run_id
    assert (run_dir / "checkpoint-precision.pt").exists() and not (run_dir / "result.json").exists()
    assert torch.load(run_dir / "checkpoint-precision.pt", weights_only=False)["state"]["epoch"] == 1
    a, b = resume_and_rerun("07-smol", tmp_path / "a", tmp_path / "b", spec.run_id)
    assert a["result"] == b["result"] and set(a["result"]) == {"precision_epochs", "bpp", "err_after"}
    assert json.loads((tmp_path / "a" / "07-smol" / "manifest.json").read_text())["config_hash"] == config_hash(
        "07-smol", dry.cfg, 0, True)


def test_a_run_resumed_between_phases_replays_the_finished_ones(dry, tmp_path, monkeypatch):
    # the uniform run: full precision, then four fine-tunings (FP, 1-bit, 2-bit); drop the last two phases'
    # checkpoints and run again: the finished phases are restored, the rest re-trained to the same numbers
    from effcourse.core.harness import seed_everything

    monkeypatch.setenv("EFFCOURSE_DATA", str(synthetic.write(tmp_path / "data", ["cifar10"], seed=0)))
    spec = next(s for s in dry.specs if s.experiment == "uniform")
    cfg = dry.cfg.replace(precision_epochs=1)

    def run() -> dict:
        seed_everything(spec.seed)
        return smol_sweep.execute(spec, RunContext(spec, cfg, torch.device("cpu"), tmp_path / "run", True))

    (tmp_path / "run").mkdir()
    first = run()
    assert set(first) == {"err_fp_before", "err_fp", "err_u1_before", "err_u1_after", "err_u2_before",
                          "err_u2_after"}
    names = sorted(p.name for p in (tmp_path / "run").glob("checkpoint-*.pt"))
    assert names == ["checkpoint-fp-finetune.pt", "checkpoint-fp.pt", "checkpoint-u1-finetune.pt",
                     "checkpoint-u2-finetune.pt"]
    before = torch.load(tmp_path / "run" / "checkpoint-u2-finetune.pt", weights_only=False)["state"]["model"]
    for name in ("checkpoint-u1-finetune.pt", "checkpoint-u2-finetune.pt"):
        (tmp_path / "run" / name).unlink()
    assert run() == first
    after = torch.load(tmp_path / "run" / "checkpoint-u2-finetune.pt", weights_only=False)["state"]["model"]
    assert all(torch.equal(before[k], after[k]) for k in before)  # the same weights, bit for bit

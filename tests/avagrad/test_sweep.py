"""Chapter 8's full scale as a sweep: the plan is Table 6.1's protocol, and a killed run resumes exactly."""

from __future__ import annotations

import json

import pytest

from effcourse.avagrad import sweep as ava_sweep
from effcourse.avagrad.zoo import OPTIMIZERS
from effcourse.sweep import Sweep
from effcourse.sweep.cli import main as sweep_main
from effcourse.sweep.testing import dry_run_cli, dry_run_here


def test_full_plan_is_the_thesis_protocol():
    sw = Sweep("08-avagrad")
    cfg = sw.cfg
    by = {e: [s for s in sw.specs if s.experiment == e] for e in ("grid", "tune-sgd", "final")}
    # every adaptive method over the 21 x 21 grid (Savarese 2025, appendix: "441 hyperparameter settings")
    assert set(cfg.grid_methods) == set(OPTIMIZERS) - {"sgd"}
    assert len(cfg.grid_eps) == len(cfg.grid_lrs) == 21 and len(by["grid"]) == 9 * 441
    assert min(cfg.grid_eps) == 1e-8 and max(cfg.grid_eps) == 100 and cfg.grid_lrs[0] == 5e-7
    assert cfg.grid_lrs[-1] == 5000
    assert len(by["tune-sgd"]) == 21
    # then a WRN-28-10 per method, 3 runs, 200 epochs, lr / 5 at 60, 120, 160, wd 5e-4, batch 128
    assert len(by["final"]) == 10 * 3 and all(s.after == ("grid", "tune-sgd") for s in by["final"])
    assert (cfg.widen, cfg.compare_epochs, cfg.grid_epochs, cfg.lr_milestones, cfg.weight_decay,
            cfg.batch_size) == (10, 200, 200, [60, 120, 160], 5e-4, 128)
    assert round(cfg.val_fraction * 50_000) == 5_000
    # seeds as the notebook draws them: grid offset 100, final offset 200 (base seed 0)
    assert {s.seed for s in by["grid"]} == {100} and {s.seed for s in by["final"]} == {200, 201, 202}
    assert {s.seed for s in Sweep("08-avagrad", seed=3).specs if s.experiment == "final"} == {3200, 3201, 3202}


def test_gpu_hours_grow_with_the_model():
    sw = Sweep("08-avagrad")
    grid, final = (next(s for s in sw.specs if s.experiment == e) for e in ("grid", "final"))
    # WRN-28-10 costs ~6x a WRN-28-4 per image; a final run trains on 10/9 of the images
    assert 5 < sw.flops(final) / sw.flops(grid) < 9


def _run(out, only, kill_after=None):
    return dry_run_cli("08-avagrad", out, only, kill_after=kill_after)


@pytest.mark.slow
def test_a_killed_run_resumes_where_it_stopped_and_ends_as_if_never_killed(tmp_path, capsys):
    sw = Sweep("08-avagrad", dry_run=True)
    spec = next(s for s in sw.specs if s.experiment == "tune-sgd")  # two epochs in the dry run: two checkpoints
    killed = _run(tmp_path / "a", spec.run_id, kill_after=1)
    assert killed.returncode == -9, killed.stderr[-2000:]
    run_dir = tmp_path / "a" / "08-avagrad" / spec.run_id
    assert (run_dir / "checkpoint-train.pt").exists() and not (run_dir / "result.json").exists()
    capsys.readouterr()
    assert sweep_main(["status", "08-avagrad", "--dry-run", "--out", str(tmp_path / "a")]) == 0
    assert "1 interrupted" in capsys.readouterr().out
    # resumed and run whole in this process: the kill above is the one that needs a process of its own
    assert dry_run_here("08-avagrad", tmp_path / "a", spec.run_id) == 0
    assert dry_run_here("08-avagrad", tmp_path / "b", spec.run_id) == 0
    resumed, fresh = (json.loads((tmp_path / d / "08-avagrad" / spec.run_id / "result.json").read_text())
                      for d in ("a", "b"))
    assert resumed["resumed"] and not fresh["resumed"]
    assert resumed["result"] == fresh["result"] and len(fresh["result"]["train_loss"]) == 2


def test_collectors_need_the_grid_methods():
    sw = Sweep("08-avagrad", dry_run=True)
    with pytest.raises(ValueError, match="one of the grid's methods"):
        ava_sweep.grid(None, sw.cfg, "sgd")

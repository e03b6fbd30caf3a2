"""Chapter 5's ``full`` sweep: the plan against the thesis's protocol (Sec. 3.3.3, Tables 3.1 and 3.3), the config
fixes (dropout 0.3 on the "-2" row, cutout), cutout itself, one dry-run run, and kill-and-resume."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

import pytest
import torch

from effcourse.core.config import config
from effcourse.core.harness import experiment_seeds
from effcourse.soft_sharing import experiments as ex
from effcourse.soft_sharing import sweep
from effcourse.soft_sharing.augment import CropFlipCutout, cutout
from effcourse.sweep import RunContext, Sweep, synthetic
from effcourse.sweep.testing import dry_run_cli, resume_and_rerun

FULL = config("05-soft-sharing", "full")


def _by(specs, experiment):
    return [s for s in specs if s.experiment == experiment]


def test_plan_has_the_thesis_runs_and_seeds_of_the_notebook():
    specs = Sweep("05-soft-sharing").specs
    assert Counter(s.experiment for s in specs) == {"sweep": 25, "regularized": 5, "cutout": 15, "paths": 9}
    five = experiment_seeds(0, 5, 0)  # the notebook's run.seeds(cfg.n_seeds)
    # Table 3.1's WRN 28-10 family (k = 6, 4, 2, 1 and the unshared net) on each of the 5 runs it averages
    assert Counter((s.params["templates"], s.seed) for s in _by(specs, "sweep")) == {
        (k, s): 1 for k in (None, 6, 4, 2, 1) for s in five}
    assert {(s.params["templates"], s.params["lam"]) for s in _by(specs, "regularized")} == {(6, 0.01)}
    assert sorted(s.seed for s in _by(specs, "regularized")) == five
    paths = _by(specs, "paths")
    assert {s.params["variant"] for s in paths} == {"CNN", "SCNN", "SCNN+R"}
    assert {s.seed for s in paths} == set(experiment_seeds(0, 3, 100))  # run.seeds(cfg.path_n_seeds, 100)
    assert {s.params["data_seed"] for s in paths} == set(experiment_seeds(0, 1, 200))  # run.generator_for(200)
    assert {s.seed for s in Sweep("05-soft-sharing", seed=3).specs} == {
        s + 3000 for s in {s.seed for s in specs}}  # another base seed: an independent replicate


def test_full_recipe_is_sec_3_3_3():
    assert (FULL.epochs, FULL.batch_size, FULL.lr, FULL.weight_decay, FULL.depth, FULL.swrn_widen) == (
        200, 128, 0.1, 5e-4, 28, 10)
    # "reduced by a factor of 5 at epochs 60, 120, and 160", as train_classifier turns the fractions into epochs
    assert sorted({max(1, round(FULL.epochs * f)) for f in FULL.milestones}) == [60, 120, 160]
    assert FULL.gamma == pytest.approx(1 / 5)
    assert (FULL.path_size, FULL.path_train, FULL.path_epochs, FULL.path_phases) == (32, 5000, 50, [2, 4, 6, 8, 10])


def test_dropout_is_03_on_the_starred_row_only():
    """Table 3.1: SWRN 28-10-2 is trained with dropout 0.3 (its '*'); WRN 28-10, SWRN 28-10-1, SWRN 28-10 at 0."""
    specs = Sweep("05-soft-sharing").specs
    got = {(s.experiment, s.params["templates"]): s.params["dropout"] for s in specs if "dropout" in s.params}
    assert got == {("sweep", None): 0.0, ("sweep", 6): 0.0, ("sweep", 4): 0.0, ("sweep", 2): 0.3,
                   ("sweep", 1): 0.0, ("cutout", None): 0.0, ("cutout", 6): 0.0, ("cutout", 2): 0.3}
    with torch.device("meta"):
        two, one = ex.make_classifier(FULL, 2, 10, "meta"), ex.make_classifier(FULL, 1, 10, "meta")
        wrn = ex.make_classifier(FULL, None, 10, "meta")
    assert {b.dropout for b in two.blocks} == {0.3} and {b.dropout for b in one.blocks} == {0.0}
    assert {b.dropout for b in wrn.blocks} == {0.0}


def test_cutout_runs_are_table_3_3():
    cut = _by(Sweep("05-soft-sharing").specs, "cutout")
    assert Counter(s.params["templates"] for s in cut) == {None: 5, 6: 5, 2: 5}  # WRN 28-10, SWRN 28-10, -2
    assert {s.params["cutout"] for s in cut} == {16}  # DeVries and Taylor's CIFAR-10 size
    assert {s.seed for s in cut} == set(experiment_seeds(0, 5, 0))
    assert sweep.THESIS_TABLE_3_3 == {None: 3.08, 6: 2.70, 2: 2.69}
    assert sweep.THESIS_TABLE_3_1 == {None: 4.00, 1: 4.01, 2: 3.75, 6: 3.74}


def test_cutout_zeroes_one_clipped_square_per_image_from_its_generator():
    x = torch.ones(64, 3, 32, 32)
    a = cutout(x, 16, torch.Generator().manual_seed(0))
    b = cutout(x, 16, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and not torch.equal(a, cutout(x, 16, torch.Generator().manual_seed(1)))
    zeros = (a == 0).all(1).flatten(1).sum(1)  # all channels cut together
    assert ((a == 0).any(1) == (a == 0).all(1)).all()
    assert zeros.max() == 256 and zeros.min() >= 8 * 8 and (zeros < 256).any()  # clipped at the border
    with pytest.raises(ValueError, match="size"):
        cutout(x, 0)
    with pytest.raises(ValueError, match="N x C x H x W"):
        cutout(x[0], 16)
    torch.manual_seed(0)  # crops and flips draw from the global stream, the squares from the generator
    first = CropFlipCutout(16, torch.Generator().manual_seed(0))(x)
    torch.manual_seed(0)
    assert torch.equal(first, CropFlipCutout(16, torch.Generator().manual_seed(0))(x)) and first.shape == x.shape
    torch.manual_seed(0)
    assert not torch.equal(first, CropFlipCutout(16, torch.Generator().manual_seed(1))(x))


def test_flops_and_gpu_hours():
    sw = Sweep("05-soft-sharing")
    wrn = next(s for s in sw.specs if s.experiment == "sweep" and s.params["templates"] is None)
    # WRN 28-10: 5.25 G multiply-adds (10.5 GFLOPs) forward per 32x32 image, ~3x for training, 200 x 50,000 images
    assert 2.8e17 < sw.flops(wrn) < 3.5e17
    fold = next(s for s in sw.specs if s.experiment == "sweep" and s.params["templates"] == FULL.fold_k)
    same = next(s for s in sw.specs if s.experiment == "cutout" and s.params["templates"] == 6)
    assert sw.flops(fold) > sw.flops(same) * 0.9  # fold adds its passes to the k = 4 run
    hours = sw.gpu_hours()
    assert 5 < hours < 50, hours


def test_execute_one_dry_run_spec(tmp_path, monkeypatch):
    monkeypatch.setenv("EFFCOURSE_DATA", str(synthetic.write(tmp_path / "data", ["cifar10"])))
    sw = Sweep("05-soft-sharing", dry_run=True)
    spec = next(s for s in sw.specs if s.experiment == "sweep" and s.params["templates"] == 1)
    torch.manual_seed(0)
    ctx = RunContext(spec, sw.cfg, torch.device("cpu"), tmp_path / "run", dry_run=True)
    ctx.dir.mkdir()
    res = sweep.execute(spec, ctx)
    assert set(res) == {"templates", "test_accuracy", "test_error", "parameters", "stack_parameters", "lsm", "model"}
    json.dumps(res)
    assert res["test_accuracy"] + res["test_error"] == pytest.approx(100)
    lsm = torch.tensor(res["lsm"])
    assert lsm.shape == (6, 6) and torch.allclose(lsm, torch.ones(6, 6), atol=1e-5)  # one template: all ones
    assert (ctx.dir / "model.pt").exists() and ctx.saves == 2  # one checkpoint per epoch


def _run(out: Path, run_id: str, kill: bool) -> subprocess.CompletedProcess:
    return dry_run_cli("05-soft-sharing", out, run_id, kill_after=1 if kill else None, timeout=300)


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    sw = Sweep("05-soft-sharing", dry_run=True)
    spec = next(s for s in sw.specs if s.experiment == "paths" and s.params["variant"] == "SCNN+R")
    killed = _run(tmp_path / "a", spec.run_id, kill=True)
    assert killed.returncode == -9, killed.stderr[-2000:]
    run_dir = tmp_path / "a" / "05-soft-sharing" / spec.run_id
    assert not (run_dir / "result.json").exists() and list(run_dir.glob("checkpoint-*.pt"))
    got, ref = resume_and_rerun("05-soft-sharing", tmp_path / "a", tmp_path / "b", spec.run_id)
    assert got["result"] == ref["result"] and len(got["result"]["f1"]) == len(sw.cfg.path_phases)


def test_table_rows_names_a_bad_experiment():
    with pytest.raises(ValueError, match="experiment"):
        sweep.table_rows(None, FULL, "paths", [0], {})

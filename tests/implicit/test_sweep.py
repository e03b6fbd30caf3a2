"""Chapter 1's sweep (``effcourse.implicit.sweep``): the plan against the protocol, one dry-run execution, the
notebook's collect functions against the inline experiments, and kill-and-resume."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch

from effcourse.core.config import config
from effcourse.core.harness import experiment_seeds
from effcourse.implicit import config as icfg
from effcourse.implicit import experiments as ex
from effcourse.implicit import sweep as isw
from effcourse.implicit.model import ImplicitModel, train_projected
from effcourse.sweep import RunContext, RunSpec, Sweep, load_results
from effcourse.sweep.cli import main as sweep_main
from effcourse.sweep.spec import sweep_config
from effcourse.sweep.testing import dry_run_cli, dry_run_here

CHAPTER = "01-implicit-models"
TIMING = ("seconds", "phase_seconds")  # wall time: the one thing a resumed run may not repeat


def _untimed(obj):
    if isinstance(obj, dict):
        return {k: _untimed(v) for k, v in obj.items() if k not in TIMING}
    if isinstance(obj, list):
        return [_untimed(v) for v in obj]
    return obj


def test_full_config_is_the_thesis_protocol():
    # the thesis (ch. 2 conclusion) names smooth and non-smooth 1-D interpolation and MNIST / Fashion-MNIST
    full = config(CHAPTER, "full")
    assert sorted(full.interp_targets) == sorted(ex.TARGETS) == ["nonsmooth", "smooth"]
    assert full.dataset in ("mnist", "fashion-mnist") and isw.DATA == (full.dataset,)
    # Algorithm 1 needs at least two blocks and one unit each; (2.4) needs kappa < 1 for certified well-posedness
    assert full.cls_L >= 2 and full.cls_n >= full.cls_L and full.interp_n >= full.interp_L >= 2
    assert 0 < full.cls_kappa < 1 and 0 < full.interp_kappa < 1
    assert full.e2e_flop_factor == 10.0 and full.cls_batch_size == 1024
    assert icfg.FULL["interp_n_seeds"] == 5 and icfg.FULL["cls_n_seeds"] == 3


def test_plan_matches_the_notebook_seeds_and_counts():
    sw = Sweep(CHAPTER)
    full = sw.cfg
    interp = [s for s in sw.specs if s.experiment == "interp"]
    digits = [s for s in sw.specs if s.experiment == "digits"]
    assert len(sw.specs) == len(interp) + len(digits) == 2 * 5 + 3
    assert [s.seed for s in interp] == experiment_seeds(0, full.interp_n_seeds) * 2
    assert [s.params["test_seed"] for s in interp] == experiment_seeds(0, full.interp_n_seeds, 500) * 2
    assert [s.params["target"] for s in interp] == ["smooth"] * 5 + ["nonsmooth"] * 5
    assert [s.seed for s in digits] == experiment_seeds(0, full.cls_n_seeds, 100) == [100, 101, 102]
    assert {s.params["dataset"] for s in digits} == {"mnist"}
    assert [s.seed for s in Sweep(CHAPTER, seed=2).specs if s.experiment == "digits"] == [2100, 2101, 2102]
    # an MNIST run trains a 500-unit model on 60,000 images: far more work than a 100-unit fit of 1,000 points
    f_interp, f_digits = sw.flops(interp[0]), sw.flops(digits[0])
    assert 1e9 < f_interp < f_digits < 1e17
    assert 0 < sw.gpu_hours() < 10


def test_dry_run_keeps_the_models_and_cuts_the_steps():
    full, dry = config(CHAPTER, "full"), sweep_config(CHAPTER, dry_run=True)
    assert set(isw.DRY_RUN) <= set(full)
    for key in ("interp_n", "interp_L", "interp_train", "cls_n", "cls_L", "cls_batch_size", "dtype"):
        assert dry[key] == full[key], key
    assert max(dry[k] for k in ("interp_local_steps", "interp_steps", "interp_e2e_steps", "cls_steps",
                                "cls_local_steps", "cls_e2e_steps")) <= 2
    assert len(Sweep(CHAPTER, dry_run=True).specs) == 3


def test_execute_one_dry_run_spec(tmp_path):
    cfg = sweep_config(CHAPTER, dry_run=True)
    spec = next(s for s in isw.plan(cfg, 0) if s.experiment == "interp")
    ctx = RunContext(spec, cfg, torch.device("cpu"), tmp_path, dry_run=True)
    out = isw.execute(spec, ctx)
    json.dumps(out, allow_nan=False)  # JSON values only
    assert set(out) == {"seq", "seq_test", "alt", "alt_test", "hist", "flop_factor"}
    assert len(out["seq"]["blocks"]) == len(out["alt"]["blocks"]) == cfg.interp_L
    assert out["hist"]["steps"] == [0, 1, 2] and out["seq_test"] > 0
    saved = torch.load(tmp_path / "models.pt")
    assert saved["e2e"]["A"].shape == (cfg.interp_n, cfg.interp_n) and len(saved["seq"]["blocks"]) == cfg.interp_L
    with pytest.raises(ValueError, match="experiment"):
        isw.execute(RunSpec("other", {}, 0), ctx)


def test_collect_returns_what_the_inline_experiments_return(tmp_path, monkeypatch):
    monkeypatch.delenv("EFFCOURSE_DATA", raising=False)
    out = tmp_path / "results"
    assert sweep_main(["run", CHAPTER, "--out", str(out), "--dry-run", "--threads", "1"]) == 0
    results = load_results(CHAPTER, out, dry_run=True)
    cfg = sweep_config(CHAPTER, dry_run=True)
    seeds, test_seeds = experiment_seeds(0, cfg.interp_n_seeds), experiment_seeds(0, cfg.interp_n_seeds, 500)
    got = isw.interpolation(results, cfg, seeds, test_seeds)
    want = ex.interpolation_sweep(cfg, seeds, test_seeds)
    assert list(got) == list(want)
    for key, r in want.items():
        g = got[key]
        assert g.seq_test == pytest.approx(r.seq_test, rel=1e-12) and g.alt_test == pytest.approx(r.alt_test, rel=1e-12)
        assert g.hist.evals == pytest.approx(r.hist.evals, rel=1e-12) and g.hist.flops == r.hist.flops
        assert g.seq.flops == r.seq.flops and g.seq.objectives == pytest.approx(r.seq.objectives, rel=1e-12)
        u = torch.linspace(-3, 3, 7, dtype=torch.float64)[:, None]
        u = torch.cat([u, torch.ones_like(u)], 1)
        with torch.no_grad():  # the rebuilt models compute the same functions
            assert torch.allclose(g.seq.model(u), r.seq.model(u)) and torch.allclose(g.e2e_model(u), r.e2e_model(u))
    d = isw.digits(results, cfg, experiment_seeds(0, cfg.cls_n_seeds, 100))
    assert list(d) == [100] and set(d[100].hists) == {"mse", "ce"} and len(d[100].seq.blocks) == cfg.cls_L
    assert ex.digits_summary(d).seq_acc.shape == (1,)  # the notebook's summaries accept it
    with pytest.raises(KeyError, match="seeds"):
        isw.digits(results, cfg, [7])


def _run(out: Path, run_id: str, kill: int | None) -> subprocess.CompletedProcess:
    return dry_run_cli(CHAPTER, out, run_id, kill_after=kill or None, timeout=300)


@pytest.mark.slow
def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    spec = next(s for s in Sweep(CHAPTER, dry_run=True).specs if s.experiment == "interp")
    assert dry_run_here(CHAPTER, tmp_path / "whole", spec.run_id) == 0  # in this process: no interpreter to start
    want = json.loads((tmp_path / "whole" / CHAPTER / spec.run_id / "result.json").read_text())
    assert want["resumed"] is False
    # killed after the first block of local search, and after the third of Algorithm 2 (local search finished)
    for kill in (1, 8):
        out = tmp_path / f"kill{kill}"
        killed = _run(out, spec.run_id, kill=kill)
        assert killed.returncode == -9, killed.stderr[-2000:]
        run_dir = out / CHAPTER / spec.run_id
        assert list(run_dir.glob("checkpoint-*.pt")) and not (run_dir / "result.json").exists()
        assert dry_run_here(CHAPTER, out, spec.run_id) == 0
        got = json.loads((run_dir / "result.json").read_text())
        assert got["resumed"] is True
        assert _untimed(got["result"]) == _untimed(want["result"])
        ma, mb = (torch.load(d / CHAPTER / spec.run_id / "models.pt") for d in (out, tmp_path / "whole"))
        assert torch.equal(ma["alt"]["C"], mb["alt"]["C"]) and torch.equal(ma["e2e"]["A"], mb["e2e"]["A"])


class _Dies(RunContext):
    """A run context whose process 'dies' (raises) after ``limit`` checkpoint writes."""

    limit: int = 10**9

    def save(self, name, step, **state):
        super().save(name, step, **state)
        if self.saves >= self.limit:
            raise KeyboardInterrupt


def test_end_to_end_training_resumes_mid_run_with_its_counters(tmp_path):
    u = torch.cat([torch.linspace(-3, 3, 40, dtype=torch.float64)[:, None], torch.ones(40, 1, dtype=torch.float64)], 1)
    y = torch.sin(2 * u[:, :1])

    def train(ctx):
        model = ImplicitModel(12, 2, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
        hist = train_projected(model, u, y, steps=9, batch_size=16, eval_every=2, eval_fn=ex.mse_on(u, y),
                               generator=torch.Generator().manual_seed(4),
                               checkpoint=ctx.fit_checkpoint("e2e", every=1))
        return model, hist

    spec = RunSpec("interp", {}, 0)
    cfg = config(CHAPTER, "smoke")
    dying = _Dies(spec, cfg, torch.device("cpu"), tmp_path / "a")
    dying.dir.mkdir()
    dying.limit = 2  # 3 steps per epoch: dies after step 6 of 9
    with pytest.raises(KeyboardInterrupt):
        train(dying)
    resumed_model, resumed = train(RunContext(spec, cfg, torch.device("cpu"), tmp_path / "a"))
    (tmp_path / "b").mkdir()
    whole_model, whole = train(RunContext(spec, cfg, torch.device("cpu"), tmp_path / "b"))
    assert resumed.steps == whole.steps == [0, 2, 4, 6, 8, 9]
    assert resumed.flops == whole.flops and resumed.flops[-1] > resumed.flops[-2] > 0
    assert resumed.evals == whole.evals and resumed.train_loss == whole.train_loss
    assert torch.equal(resumed_model.A, whole_model.A)

"""The chapter's ``full`` scale as a sweep: the plan against the thesis's protocol (Section 4.6), one dry-run run
against the notebook's inline code, and a run killed with SIGKILL that resumes to the same result."""

from __future__ import annotations

import io
import json
import subprocess
from functools import partial
from pathlib import Path

import pytest
import torch

from effcourse.core.config import config
from effcourse.dco import sweep as dco_sweep
from effcourse.dco.experiments import compare_on_family, dco_rules
from effcourse.dco.layers import DCOMomentum
from effcourse.dco.meta import meta_train
from effcourse.dco.tasks import interpolation_tasks, least_squares_tasks
from effcourse.sweep import RunContext, Sweep
from effcourse.sweep.testing import dry_run_cli, resume_and_rerun

CHAPTER = "03-dco"
ROOT = Path(__file__).resolve().parents[2]


def test_plan_is_the_thesis_protocol():
    sw = Sweep(CHAPTER)
    cfg = sw.cfg
    # Section 4.6: cvxpylayers, M = 20, 30 evaluation epochs, p = 100, 500 training and 100 validation points
    assert cfg.backend == "cvxpylayers" and cfg.ls_epochs == cfg.net_epochs == 20 and cfg.eval_steps == 30
    assert (cfg.ls_p, cfg.ls_n, cfg.net_train_points, cfg.net_val_points) == (100, 100, 500, 100)
    # the erratum: Fig. 4.3 averages interpolation over 10 new tasks, Fig. 4.2 system identification over 100
    assert cfg.interp_eval_tasks == 10 and cfg.net_eval_tasks == 100
    by_exp = {}
    for s in sw.specs:
        by_exp.setdefault(s.experiment, []).append(s)
    assert sorted(by_exp) == ["interpolation", "least-squares", "system-id"]
    assert [s.seed for s in by_exp["least-squares"]] == [100, 101, 102, 103, 104]  # the notebook's offsets
    assert [s.seed for s in by_exp["system-id"]] == [200] and [s.seed for s in by_exp["interpolation"]] == [300]
    assert all(s.params["counts"] == [100, 100, 100] for s in by_exp["least-squares"] + by_exp["system-id"])
    assert by_exp["interpolation"][0].params == {"counts": [100, 100, 10], "epochs": 20}
    # another base seed: the notebook's rule 1000 * SEED + offset
    assert [s.seed for s in dco_sweep.plan(cfg, 2)][:2] == [2100, 2101]


def test_costs_count_the_protocol():
    sw = Sweep(CHAPTER)
    ls = sw.specs[0]
    # 3 rules x (reset, persistent) x 20 meta-steps x 100 tasks, then 3 x 3 curves x 30 steps x 100 held-out tasks
    assert dco_sweep.qp_solves(ls, sw.cfg) == 2 * 3 * 20 * 100 + 9 * 30 * 100
    flops = {s.experiment: sw.flops(s) for s in sw.specs}
    assert 0 < flops["system-id"] < flops["interpolation"]  # 46 against 141 weights, on fewer held-out tasks
    assert 0 < sw.gpu_hours() < 1e-3  # the inner problems are tiny: the CPU's conic solver is the cost


def test_dry_run_cuts_steps_not_sizes():
    full, dry = Sweep(CHAPTER), Sweep(CHAPTER, dry_run=True)
    assert set(dco_sweep.DRY_RUN) <= set(config(CHAPTER, "full"))
    assert len(dry.specs) == 3 and dry.cfg.ls_epochs == dry.cfg.net_epochs == 2
    for key in ("backend", "ls_p", "ls_n", "m0", "lam0", "net_lam0"):
        assert dry.cfg[key] == full.cfg[key], key


def _ctx(tmp_path: Path, spec, cfg) -> RunContext:
    return RunContext(spec, cfg, torch.device("cpu"), tmp_path / "run", dry_run=True)


def test_execute_returns_what_the_notebook_computes(tmp_path):
    sw = Sweep(CHAPTER, dry_run=True)
    spec = next(s for s in sw.specs if s.experiment == "interpolation")
    (tmp_path / "run").mkdir()
    got = dco_sweep.execute(spec, _ctx(tmp_path, spec, sw.cfg))
    assert set(got) == {"curves", "phi0", "best_lr", "train_losses", "final"}
    # through a results folder, which sorts object keys: the order of the methods survives
    back = json.loads(json.dumps(got, sort_keys=True))

    class Results:
        def where(self, experiment):
            return [(spec, back)] if experiment == spec.experiment else []

    (res,) = dco_sweep.collect(Results(), "interpolation", [spec.seed])
    # the notebook's inline cell at the same seed
    cfg = sw.cfg
    g = torch.Generator().manual_seed(spec.seed)
    draw = partial(interpolation_tasks, n_train=cfg.net_train_points, n_val=cfg.net_val_points, generator=g)
    rules = dco_rules(lam0=cfg.net_lam0, b0=cfg.net_b0, m0=cfg.m0, backend=cfg.backend)
    inline = compare_on_family(draw, (cfg.net_train_tasks, cfg.net_tune_tasks, cfg.interp_eval_tasks), rules,
                               cfg.net_lrs, cfg.net_epochs, cfg.eval_steps, init_generator=g)
    assert list(res.curves) == list(inline.curves) and res.best_lr == inline.best_lr
    for k, v in inline.curves.items():
        assert res.curves[k].dtype == torch.float64 and torch.equal(res.curves[k], v), k
    assert res.train_losses == inline.train_losses and list(res.phi0) == ["DCOG", "DCOGD", "DCOM"]
    with pytest.raises(KeyError, match="seeds \\[301\\]"):
        dco_sweep.collect(Results(), "interpolation", [301])
    with pytest.raises(ValueError, match="experiment must be one of"):
        dco_sweep.collect(Results(), "mnist", [300])


class _Killed(Exception):
    pass


class _MemoryCheckpoint:
    """A checkpoint in memory that 'dies' (raises) after ``die_after`` saves, like a killed process."""

    def __init__(self, every: int, die_after: int | None = None):
        self.every, self.die_after, self.saved, self.saves = every, die_after, None, 0

    def load(self):
        if self.saved is None:
            return None
        self.saved.seek(0)
        return torch.load(self.saved, weights_only=False)

    def save(self, step, state):
        buf = io.BytesIO()
        torch.save(dict(state), buf)
        buf.seek(0)
        self.saved, self.saves = buf, self.saves + 1
        if self.die_after is not None and self.saves >= self.die_after:
            raise _Killed


def test_meta_train_resumes_mid_training_exactly():
    tasks = least_squares_tasks(12, p=6, n=8, generator=torch.Generator().manual_seed(5))
    kw = dict(epochs=7, persistent=True, task_batch=4)  # random task minibatches: the generator is resumed too

    def train(ckpt):
        opt = DCOMomentum(6)
        return meta_train(opt, tasks, generator=torch.Generator().manual_seed(1), checkpoint=ckpt, **kw), opt

    ref, ref_opt = train(None)
    ckpt = _MemoryCheckpoint(every=3, die_after=1)
    with pytest.raises(_Killed):
        train(ckpt)
    ckpt.die_after = None
    got, opt = train(ckpt)  # a fresh optimizer and generator, restored from meta-step 3
    assert ckpt.saves == 1 + 2  # epochs 6 and 7 (the last) after the restart
    assert got.losses == ref.losses and len(got.losses) == 7 * 3
    assert torch.equal(got.theta, ref.theta) and torch.equal(got.state, ref.state)
    assert all(torch.equal(a, b) for a, b in zip(opt.parameters(), ref_opt.parameters()))
    with pytest.raises(ValueError, match="checkpoint.every"):
        meta_train(DCOMomentum(6), tasks, epochs=1, checkpoint=_MemoryCheckpoint(every=0))


def _sweep_run(out: Path, run_id: str, kill_after: int | None = None) -> subprocess.CompletedProcess:
    return dry_run_cli(CHAPTER, out, run_id, kill_after=kill_after, timeout=300)


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    spec = next(s for s in Sweep(CHAPTER, dry_run=True).specs if s.experiment == "least-squares")
    run_dir = tmp_path / "a" / CHAPTER / spec.run_id
    # killed twice: after the first phase (DCOG at phi0), then inside the first meta-training, after its save
    for where in (None, "DCOG (reset)/meta-train"):
        killed = _sweep_run(tmp_path / "a", spec.run_id, kill_after=1)
        assert killed.returncode == -9, killed.stderr[-2000:]
        assert not (run_dir / "result.json").exists()
        saved = torch.load(run_dir / "checkpoint-compare.pt", weights_only=False)["state"]
        assert saved["running"] == where and "DCOG/phi0" in saved["done"], (saved["running"], list(saved["done"]))
    resumed, clean = resume_and_rerun(CHAPTER, tmp_path / "a", tmp_path / "b", spec.run_id)
    assert resumed["result"] == clean["result"]

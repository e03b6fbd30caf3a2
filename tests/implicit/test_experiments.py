"""The chapter's experiment drivers: Theorems 2-3 checks, the interpolation and digits sweeps, their summaries."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest
import torch

from effcourse.core.config import config
from effcourse.core.data import Split
from effcourse.implicit import experiments as ex
from effcourse.implicit.model import E2EHistory

matplotlib.use("Agg")
D64 = torch.float64


def _cfg(**kw):
    base = dict(interp_n_seeds=2, interp_train=30, interp_test=40, interp_n=8, interp_L=2, interp_local_steps=20,
                interp_alternations=1, interp_steps=10, interp_e2e_steps=12, interp_eval_every=4,
                cls_n_seeds=1, cls_n=8, cls_L=2, cls_steps=10, cls_local_steps=10, cls_e2e_steps=6,
                cls_eval_every=3, e2e_flop_factor=None)
    return config("01-implicit-models", "smoke").replace(**{**base, **kw})


def test_theorem_errors_are_rounding_level_and_checked():
    t = ex.theorem_errors(3, 4, 0, samples=20, prev=4, inputs=2)
    assert t.held and t.max_error < 1e-10 and t.worst_vs_tol <= 1 and t.instances == 4
    with pytest.raises(ValueError, match="instances"):
        ex.theorem_errors(3, 0, 0, samples=20, prev=4, inputs=2)


def test_interpolation_task_grid_targets_and_errors():
    u, y, ut, yt = ex.interpolation_task("smooth", 3, 11, 7)
    assert u.shape == (11, 2) and ut.shape == (7, 2) and y.shape == (11, 1) and yt.shape == (7, 1)
    assert torch.equal(u[:, 1], torch.ones(11, dtype=D64)) and float(u[0, 0]) == -3 and float(u[-1, 0]) == 3
    assert torch.allclose(y[:, 0], torch.sin(2 * u[:, 0]) + 0.3 * u[:, 0])
    assert float(ut[:, 0].abs().max()) <= 3
    assert torch.equal(ut, ex.interpolation_task("nonsmooth", 3, 11, 7)[2])  # the seed draws the test points
    with pytest.raises(ValueError, match="target"):
        ex.interpolation_task("cubic", 0, 5, 5)


def test_theorem_errors_do_not_crash_on_limit_cycle_instances():
    # base seed 2 at book sizes: an 8-unit converse block with diagonal -0.715 ends in a rounding-level limit
    # cycle (steps ~3e-12) that the old relative stopping test never accepted (issue #16)
    t = ex.theorem_errors(8, 28, 2, samples=200, prev=12, inputs=5)
    assert t.held and t.floored >= 1 and t.max_error < 1e-10


def test_mse_accuracy_and_flops_to_reach():
    u = torch.eye(3, dtype=D64)
    assert ex.mse_on(u, torch.zeros(3, 3, dtype=D64))(torch.nn.Identity()) == pytest.approx(1 / 3)
    assert ex.accuracy_on(u, torch.tensor([0, 1, 0]))(torch.nn.Identity()) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="labels"):
        ex.accuracy_on(u, torch.tensor([0.0, 1.0, 2.0]))
    h = E2EHistory(steps=[0, 1, 2], seconds=[0.0, 1.0, 2.0], flops=[0.0, 10.0, 20.0], evals=[0.5, 0.9, 0.95])
    assert ex.flops_to_reach(h, 0.9) == 10.0 and ex.flops_to_reach(h, 0.99) == math.inf
    assert h.at_flops(15.0) == 0.9 and h.at_flops(-1.0) == 0.5


def test_interpolation_sweep_and_its_summaries():
    cfg = _cfg()
    interp = ex.interpolation_sweep(cfg, [0, 1], [500, 501])
    assert set(interp) == {(t, s) for t in cfg.interp_targets for s in (0, 1)}
    r = interp["smooth", 0]
    assert r.hist.steps[-1] == cfg.interp_e2e_steps and r.e2e_long == r.e2e_final  # no FLOP factor: fixed steps
    assert r.seq.flops > 0 and r.alt.flops > r.seq.flops * 0 and r.hist.flops[0] == 0 and r.hist.flops[-1] > 0
    assert len(r.seq.blocks) == cfg.interp_L and r.alt.is_monotone()
    ratios = ex.interpolation_ratios(interp, "equal")
    assert ratios["smooth"].shape == (2,) and np.isclose(ratios["smooth"][0], r.e2e_equal / r.seq_test)
    assert len(ex.interpolation_rows(interp, "x")) == 4 and len(ex.ratio_rows(interp, "x")) == 2
    spread = ex.seed_spread(interp, "local")
    assert all(v >= 1 for v in spread.values())
    fig = ex.plot_interpolation(interp, seed=0)
    assert len(fig.axes) == 3
    with pytest.raises(ValueError, match="which"):
        ex.interpolation_ratios(interp, "best")
    with pytest.raises(ValueError, match="seed"):
        ex.plot_interpolation(interp, seed=9)
    with pytest.raises(ValueError, match="e2e_flop_factor"):
        ex.interpolation_sweep(_cfg(e2e_flop_factor=-1.0), [0], [1])
    with pytest.raises(ValueError, match="seeds"):
        ex.interpolation_sweep(cfg, [0, 0], [1, 2])
    with pytest.raises(ValueError, match="same length"):
        ex.interpolation_sweep(cfg, [0, 1], [2])


def test_interpolation_sweep_with_a_flop_factor_reads_the_curve_at_those_flops():
    cfg = _cfg(interp_targets=["smooth"], e2e_flop_factor=20.0, interp_e2e_steps=100_000, interp_eval_every=1)
    r = ex.interpolation_sweep(cfg, [3], [4])["smooth", 3]
    assert r.hist.flops[-1] >= 20.0 * r.seq.flops > r.hist.flops[-2]  # stopped by the budget, not by the steps
    assert r.hist.steps[-1] < 100_000
    assert r.e2e_long == r.hist.at_flops(20.0 * r.seq.flops)
    again = ex.interpolation_sweep(cfg, [3], [4])["smooth", 3]
    assert again.hist.flops == r.hist.flops and again.hist.evals == r.hist.evals  # deterministic, unlike time


def _toy_digits():
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(3, 5, generator=g, dtype=D64) * 3

    def draw(n):
        y = torch.randint(0, 3, (n,), generator=g)
        return centers[y] + torch.randn(n, 5, generator=g, dtype=D64), y

    (x, y), (xt, yt) = draw(90), draw(60)
    return Split(x, y, xt, yt, 3)


def test_digits_sweep_and_its_summaries():
    cls = ex.digits_sweep(_cfg(), _toy_digits(), [7])
    r = cls[7]
    assert set(r.hists) == {"mse", "ce"} and r.hists["mse"].steps[-1] == 6
    assert r.seq_acc > 0.8 and r.seq.is_monotone()  # well-separated clusters
    summary = ex.digits_summary(cls)
    assert summary.seq_acc.shape == (1,) and summary.e2e_last[0] == r.hists["mse"].evals[-1]
    assert summary.seq_flops[0] == r.seq.flops > 0
    assert len(ex.digits_rows(cls)) == 1
    shares = ex.phase_shares(h for rr in cls.values() for h in rr.hists.values())
    assert set(shares) == {"forward", "backward", "update", "projection"} and sum(shares.values()) == pytest.approx(1)
    assert len(ex.plot_digits(cls).axes) == 1
    with pytest.raises(ValueError, match="hists"):
        ex.phase_shares([])
    images = Split(torch.zeros(4, 1, 2, 2), torch.zeros(4, dtype=torch.long), torch.zeros(2, 1, 2, 2),
                   torch.zeros(2, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="flat"):
        ex.digits_sweep(_cfg(), images, [0])

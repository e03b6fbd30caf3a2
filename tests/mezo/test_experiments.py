"""The chapter's experiment drivers and figures (effcourse.mezo.experiments, effcourse.mezo.figures)."""

import math

import matplotlib
import pytest
import torch

from effcourse.core.config import config
from effcourse.mezo import experiments as ex
from effcourse.mezo import figures
from effcourse.mezo.batched import Trace
from effcourse.mezo.finetune import FinetuneTrace
from effcourse.mezo.pretrained import load_classifier
from effcourse.mezo.problems import BatchedMLP, LeastSquares
from effcourse.mezo.text import WordTokenizer, encode, sentiment_task

matplotlib.use("Agg")


def _mlp(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.rand(n, 6, generator=g), torch.randint(0, 3, (n,), generator=g)
    prob = BatchedMLP(x, y, sizes=(6, 5, 3))
    return prob, prob.init(2, torch.Generator().manual_seed(seed)), x[:10], y[:10]


def test_lemmas_hold_by_enumeration():
    for seed in (0, 1, 7):
        lem = ex.lemma_residuals(seed=seed)
        assert lem.lemma1 <= lem.tolerance() and lem.lemma2 <= lem.tolerance() and lem.terms == 15 * 2
    lem = ex.lemma_residuals(n=7, d=3, batch_size=3, seed=2)
    assert lem.lemma1 <= lem.tolerance() and lem.lemma2 <= lem.tolerance() < 1e-9
    with pytest.raises(ValueError, match="batch_size"):
        ex.lemma_residuals(n=4, batch_size=5)


def test_finite_difference_bias_falls_with_mu():
    prob, P, _, _ = _mlp()
    prob = BatchedMLP(prob.x.double(), prob.y, prob.sizes)
    theta = P[0].double()
    fd = ex.finite_difference_bias(prob, theta, [1.0, 0.3, 0.1, 1e-3], draws=300, seed=1)
    assert fd.bias[-1] < 1e-2 * fd.bias[0] and fd.slope > 1 and 0 < fd.monte_carlo < 10
    with pytest.raises(ValueError, match="mu_grid"):
        ex.finite_difference_bias(prob, theta, [1.0, 0.1], draws=10, seed=0)


def test_shared_estimator_moments_on_a_quadratic():
    ls = LeastSquares(n=30, d=6, seed=0)
    theta = torch.randn(6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    rel_err, m2 = ex.shared_estimator_moments(ls, theta, 1e-3, draws=20_000, seed=2)
    assert rel_err < 4 * math.sqrt(8 / 20_000) and abs(m2 / 8 - 1) < 0.1


def test_rms_cosine_matches_the_formula():
    assert ex.rms_cosine_deviation([50, 200], [1, 4], draws=1000, seed=0) < 0.05
    with pytest.raises(ValueError, match="draws"):
        ex.rms_cosine_deviation([10], [1], draws=100, seed=0)


def test_zo_svrg_cost_counts_calls_and_tensors():
    c = ex.zo_svrg_cost(seed=0, steps=4, batch_size=8, n=64)
    # ZO-SVRG: two anchors of 64 per-sample estimates (2 calls each) + 4 minibatches at theta and theta_bar
    assert c["naive_calls"] == 2 * 64 * 2 + 4 * 8 * 2 * 2 and c["naive_tensors"] == 5
    assert c["ours_calls"] == 2 * 2 + 2 * 4 and c["ours_tensors"] == 3


def test_least_squares_runs_and_gradient_floor():
    ls = LeastSquares(n=50, d=5, seed=0)
    w0 = ls.init(2)
    gen = torch.Generator().manual_seed(0)
    runs = ex.least_squares_runs(ls, w0, budget_mezo=6_400, budget_svrg=12_000, fo_steps=200, generator=gen)
    assert list(runs) == ["MeZO", "MeZO-SVRG", "FO-SGD"]
    exc = ex.relative_excess(runs, ls.f_star)
    assert all(v.shape == (2,) and (v > -1e-9).all() for v in exc.values())
    floor = ex.gradient_floor(ls, w0, [4, 50], steps=400, generator=gen, lr=1e-2)
    assert set(floor) == {(s, b) for s in (True, False) for b in (4, 50)}
    start = float(ls.grad(w0[:1]).square().sum())
    assert floor[(True, 4)] < 1e-3 * start and floor[(True, 50)] < 1e-3 * start
    rows = ex.floor_rows(floor, [4, 50])
    assert [r["directions"] for r in rows] == ["shared", "independent"] and rows[0]["b = 50"] == floor[(True, 50)]


def test_digits_drivers_and_rows():
    prob, P, xt, yt = _mlp()
    gen = torch.Generator().manual_seed(0)
    runs, svrg = ex.batch_size_study(prob, P, [4, 8], lr=1e-3, steps=10, generator=gen)
    assert list(runs) == [4, 8] and all(tr.steps[-1] == 10 for tr in runs.values()) and svrg.steps[-1] == 10
    assert math.isfinite(ex.late_loss(svrg))
    dg = ex.digits_comparison(prob, P, 1e-3, [1e-2, 1e-3], budget=2_000, fo_steps=5, generator=gen)
    assert list(dg) == ["MeZO lr 0.001", "MeZO lr 0.002", "MeZO-SVRG", "FO-SGD lr 0.1"]
    rows = ex.digits_rows(dg, prob, xt, yt)
    assert 0 <= rows[0]["test accuracy (median)"] <= 1 and rows[-1]["queries"] == 5 * 40
    abl = ex.ablations(prob, P, [1e-2, 1e-3], steps=4, mu_grid=[1e-3, 1e-1], q_grid=[2], anchor_sizes=[40, 20],
                       generator=gen)
    assert set(abl) == {("mu", 1e-3), ("mu", 1e-1), ("q", 2), ("anchor", 40), ("anchor", 20)}
    assert abl[("anchor", 20)].queries[-1] == (2 * 20 + 4 * 40) * 2  # b = 64 is capped at n = 40
    assert [r["value"] for r in ex.ablation_rows(abl)] == ["0.001", "0.1", "2"]
    assert [r["anchor batch"] for r in ex.anchor_rows(abl, prob, xt, yt)] == ["40 (full)", "20"]


def test_late_loss_caps_diverged_runs():
    tr = Trace()
    for t, v in enumerate([1.0, 1.0, float("nan"), 2.0]):
        tr.log(t, t, 0.0, torch.tensor([v, 3.0, 4.0]))
    assert ex.late_loss(tr) == pytest.approx(4.0)  # second half: seed means (1e6 + 2) / 2, 3, 4
    gone = Trace()
    for t in range(4):
        gone.log(t, t, 0.0, torch.tensor([float("inf"), 1e9, float("nan")]))
    assert ex.late_loss(gone) == 1e6


def _tiny_lm():
    tok = WordTokenizer()
    task = sentiment_task(32, 16, seed=0)
    model, _ = load_classifier("tiny-bert", vocab_size=len(tok), seed=0)
    return model, encode(tok, task.train_text), task.train_labels, encode(tok, task.test_text), task.test_labels


def test_trajectory_demo_rebuilds_exactly():
    model, x, y, _, _ = _tiny_lm()
    demo = ex.trajectory_demo(model, x, y, batch_size=8, seed=0, steps=4, anchor_rows=16)
    assert demo["exact"] and demo["ops"] == 2 * 4 + 2 * 5 and demo["nbytes"] == 24 * demo["ops"]
    assert demo["restore_err"] < 1e-5 < demo["moved"]


def test_compare_finetuning_runs_three_methods_from_one_start():
    model, x, y, xt, yt = _tiny_lm()
    cfg = config("02-mezo-svrg", "smoke").replace(lm_mezo_steps=4, lm_svrg_steps=4, lm_fo_steps=2, lm_batch=8,
                                                   lm_eval_every=2)
    runs, n = ex.compare_finetuning(model, x, y, xt, yt, cfg, seeds=[0, 1], progress=False)
    traces = runs[0]
    assert list(traces) == ["MeZO", "MeZO-SVRG", "FO-SGD"] and list(runs[1]) == ["MeZO", "MeZO-SVRG"]
    assert traces["MeZO"].train_loss[0] != runs[1]["MeZO"].train_loss[0]  # each seed draws its own head
    assert traces["MeZO"].passes[-1] == 4 * 2 and traces["MeZO-SVRG"].passes[-1] == 2 * 2 + 2 * 4
    assert len({tr.train_loss[0] for tr in traces.values()}) == 1  # the same start for every method
    assert traces["MeZO"].queries[-1] == 4 * 2 * 8 and traces["FO-SGD"].queries[-1] == 2 * 8
    assert 0 < n < sum(p.numel() for p in model.parameters())
    rows = ex.finetuning_rows(traces)
    assert rows[0]["method"] == "MeZO" and rows[0]["test accuracy (final / best)"].count(" / ") == 1
    reach = ex.reach_mezo(runs, [0, 1])
    assert [r.seed for r in reach] == [0, 1] and reach[0].passes[0] <= 8 and reach[0].pass_ratio > 0
    assert len(ex.reach_rows(reach)) == 2
    with pytest.raises(ValueError, match="seeds"):
        ex.compare_finetuning(model, x, y, xt, yt, cfg, seeds=[], progress=False)


def test_memory_rows():
    mem = {m: {"above_libs_mb": v} for m, v in
           (("inference", 100.0), ("mezo", 110.0), ("mezo-svrg", 300.0), ("fo-sgd", 400.0), ("fo-adam", 600.0))}
    rows = ex.memory_rows(mem)
    assert rows[1] == {"method": "mezo", "peak above libraries (MB)": 110.0, "vs inference": "1.10x",
                       "saving vs FO-SGD": "72%"}


def test_figures_draw_every_panel():
    prob, P, _, _ = _mlp()
    gen = torch.Generator().manual_seed(0)
    runs, svrg = ex.batch_size_study(prob, P, [4, 8], lr=1e-3, steps=6, generator=gen)
    ls = LeastSquares(n=20, d=3, seed=0)
    lsr = ex.least_squares_runs(ls, ls.init(2), 640, 1200, 20, gen)
    abl = ex.ablations(prob, P, [1e-2, 1e-3], 4, [1e-3], [2], [40, 20], gen)
    ft = FinetuneTrace("mezo", steps=[0, 1], queries=[0, 16], passes=[0, 2], seconds=[0.0, 0.1],
                       train_loss=[0.7, 0.6], test_acc=[0.5, 0.6])
    for fig, panels in ((figures.plot_least_squares(lsr, ls.f_star), 3),
                        (figures.plot_batch_sizes(runs, svrg, 1e-3), 1), (figures.plot_digits({"a": svrg}), 2),
                        (figures.plot_ablations(abl), 3), (figures.plot_finetuning({"MeZO": ft}), 3)):
        assert len(fig.axes) == panels and all(ax.lines for ax in fig.axes)
        matplotlib.pyplot.close(fig)

"""Unit tests of effcourse.scq.experiments (chapter 04-scq): the drivers and table rows of the chapter."""

from __future__ import annotations

import pytest
import torch

from effcourse.core.config import config
from effcourse.core.data import Split
from effcourse.core.tables import table
from effcourse.scq import experiments as ex
from effcourse.scq.simplex import project_simplex


def tiny_cfg(**changes):
    small = dict(steps=4, eval_every=2, n_seeds=2, methods=["ae", "vq", "vq_rep", "scq"], num_codes=8, code_dim=4,
                 channels=8, res_channels=4, res_blocks=1, batch_size=16, n_init_seeds=2,
                 init_methods=["vq", "vq_rep", "scq", "simvq"])
    return config("04-scq", "smoke").replace(**{**small, **changes})


def tiny_data(n=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 8, 8, generator=g)
    return Split(x, torch.zeros(n, dtype=torch.long), x[:12], torch.zeros(12, dtype=torch.long), 1)


def test_hull_check_reconstructs_hull_points_as_lambda_vanishes():
    g = torch.Generator().manual_seed(3)
    codes = torch.randn(5, 2, generator=g, dtype=torch.float64)
    z = project_simplex(torch.randn(8, 5, generator=g, dtype=torch.float64) * 3) @ codes
    rows, vq_err = ex.hull_check(codes, z, [1e-5, 0.1])
    assert [r["lambda"] for r in rows] == [1e-5, 0.1] and vq_err.shape == (8,)
    assert rows[0]["max_error"] < 1e-3 < rows[1]["max_error"] <= float(vq_err.max()) + 1e-7
    assert all(r["never_worse"] and r["excess"] <= 1e-7 for r in rows) and rows[0]["max_dev"] > rows[1]["max_dev"]
    assert ex.hull_check(codes, z, [0.1], tol=0.0)[0][0]["never_worse"] == (rows[1]["excess"] <= 0)
    with pytest.raises(ValueError, match="lams"):
        ex.hull_check(codes, z, [])
    with pytest.raises(ValueError, match="tol"):
        ex.hull_check(codes, z, [0.1], tol=-1.0)


def test_compare_solvers_rows_and_ratios():
    rows, ratio = ex.compare_solvers([(2, 6)], columns=10, lam=0.1, alternating_steps=[2, 50],
                                     generator=torch.Generator().manual_seed(0))
    again, _ = ex.compare_solvers([(2, 6)], columns=10, lam=0.1, alternating_steps=[2, 50],
                                  generator=torch.Generator().manual_seed(0))
    assert [r["objective (5.8)"] for r in rows] == [r["objective (5.8)"] for r in again]  # the generator decides
    assert [r["solver"] for r in rows] == ["VQ (one-hot)", "exact (5.8), cvxpylayers", "ridge + exact projection",
                                          "ridge + alternating, m=2", "ridge + alternating, m=50"]
    assert ratio[(6, "exact (5.8), cvxpylayers")] == pytest.approx(1.0)
    assert ratio[(6, "VQ (one-hot)")] >= 1.0 and ratio[(6, "ridge + exact projection")] >= 1.0 - 1e-9
    exact = rows[1]
    assert exact["columns with $p<0$"] == 0.0 and exact["rel. distance to $P^\\star$"] == 0.0
    assert "ms" in str(table(rows, fmt=ex.SOLVER_TABLE_FORMAT))
    with pytest.raises(ValueError, match="sizes"):
        ex.compare_solvers([], 10, 0.1, [2], generator=torch.Generator())
    text = ex.solver_findings(rows, 6, 50)
    assert "m = 50" in text and "m = 2" in text and f"{ratio[(6, 'ridge + alternating, m=50')]:.2f}" in text
    with pytest.raises(ValueError, match="K=7"):
        ex.solver_findings(rows, 7, 50)


def test_train_one_is_reproducible_and_checks_its_kind():
    cfg, data = tiny_cfg(), tiny_data()
    m1, h1, r1 = ex.train_one(cfg, data, "scq", seed=3, progress=False)
    _, _, r2 = ex.train_one(cfg, data, "scq", seed=3, progress=False)
    _, _, r3 = ex.train_one(cfg, data, "scq", seed=4, progress=False)
    assert r1["recon_mse"] == r2["recon_mse"] and r1["recon_mse"] != r3["recon_mse"]
    assert h1.steps == [2, 4] and m1.quantizer.num_codes == 8
    with pytest.raises(ValueError, match="kind"):
        ex.train_one(cfg, data, "rq", seed=0)
    with pytest.raises(ValueError, match="init"):
        ex.build_autoencoder(cfg, "vq", init="orthogonal")


def test_training_drivers_and_rows():
    cfg, data = tiny_cfg(), tiny_data()
    seeds = [0, 1]
    results, models, hists = ex.train_methods(cfg, data, seeds, progress=False)
    assert set(results) == {("ae", 0), ("vq", 0), ("vq_rep", 0), ("scq", 0), ("vq", 1), ("vq_rep", 1), ("scq", 1)}
    assert set(models) == set(hists) == set(results)
    init_res = ex.train_init_study(cfg, data, seeds, progress=False)
    assert set(init_res) == {("vq", 0), ("vq_rep", 0), ("scq", 0), ("simvq", 0), ("vq", 1), ("vq_rep", 1),
                             ("simvq", 1)}
    assert ex.train_init_study(cfg, data, [], progress=False) == {}
    with pytest.raises(ValueError, match="seeds"):
        ex.train_methods(cfg, data, [], progress=False)

    rows = ex.table51_rows(cfg, results, seeds)
    assert [r["method"] for r in rows] == ["AE (no quantizer)", "VQ", "VQ + replacement", "SCQ"]
    assert rows[0]["quant error (1e-3)"] == "—" and "±" in rows[1]["recon MSE (1e-3)"]
    assert rows[3]["thesis, CIFAR-10: MSE (1e-3), quant error, perplexity, ms"].startswith("1.53")
    s = ex.summarize(results, [("vq", 0), ("vq", 1)])
    assert s["recon_mse"][0] == pytest.approx((results["vq", 0]["recon_mse"] + results["vq", 1]["recon_mse"]) / 2)
    assert ex.summarize({("vq", 0): None}, [("vq", 0)]) is None
    assert len(ex.per_seed_rows(cfg, results, seeds)) == 6
    assert [r["codebook init"] for r in ex.init_rows(cfg, results, init_res, 0)][:2] == ["U(-1/K, 1/K)", "N(0, 1)"]
    assert len(ex.init_rows(cfg, results, init_res, 0)) == 7  # SimVQ has no U(-1/K, 1/K) run
    assert [r["seed"] for r in ex.simvq_rows(cfg, init_res, seeds)] == [0, 1]
    repro = ex.reproduction_rows(cfg, results, init_res, None, 0.14, seeds)
    assert len(repro) == 7 and repro[4]["this book"] == "not run" and "0.14" in repro[5]["this book"]
    _, h9, r9 = ex.train_one(cfg, data, "scq_alg9", 0, progress=False)
    assert ex.reproduction_rows(cfg, results, init_res, (h9, r9), 0.1, seeds)[4]["this book"] != "not run"
    for rows_, fmt in ((ex.per_seed_rows(cfg, results, seeds), ex.PER_SEED_FORMAT),
                       (ex.simvq_rows(cfg, init_res, seeds), ex.SIMVQ_FORMAT), (repro, None)):
        assert str(table(rows_, fmt=fmt)).startswith("| ")


def _result(**m):
    base = dict(recon_mse=1e-2, quant_error=1e-2, perplexity_hard=10.0, perplexity_soft=12.0, codes_used=20.0,
                codes_touched=30.0, nonzeros=3.0, quant_ms=1.0)
    return {**base, **m}


def test_ratios_turn_a_diverged_run_into_nan():
    res = {("scq", 0): _result(quant_error=1.0), ("vq", 0): _result(quant_error=4.0), ("scq", 1): None,
           ("vq", 1): _result()}
    r = ex.ratios(res, "scq", "vq", "quant_error", [0, 1])
    assert r[0] == 0.25 and r[1] != r[1]


def test_findings_follow_the_numbers():
    cfg = tiny_cfg()
    res = {("vq", 0): _result(recon_mse=2e-3, quant_error=8e-3, perplexity_hard=50.0, perplexity_soft=52.0),
           ("vq", 1): _result(recon_mse=2e-3, quant_error=8e-3, perplexity_hard=50.0, perplexity_soft=52.0),
           ("vq_rep", 0): _result(codes_used=120.0), ("vq_rep", 1): _result(codes_used=120.0),
           ("scq", 0): _result(recon_mse=1e-3, quant_error=1e-3, perplexity_hard=5.0, perplexity_soft=6.0),
           ("scq", 1): _result(recon_mse=3e-3, quant_error=2e-3, perplexity_hard=5.0, perplexity_soft=6.0)}
    text = ex.table51_findings(cfg, res, [0, 1])
    assert "on 1 of 2 seeds" in text and "seed-dependent" in text and "*below* VQ's" in text
    assert "4 to 8 times smaller" in text
    res["scq", 1] = _result(recon_mse=1e-3, quant_error=1e-3, perplexity_hard=80.0, perplexity_soft=90.0)
    text = ex.table51_findings(cfg, res, [0, 1])
    assert "on 2 of 2 seeds" in text and "seed-dependent" not in text
    assert "8 times" in ex.not_reproduced_findings(res, [0, 1])

    init = {("vq", 0): _result(codes_used=5.0), ("vq_rep", 0): _result(codes_used=128.0, recon_mse=1e-3),
            ("scq", 0): _result(recon_mse=5e-3), ("simvq", 0): _result(codes_used=100.0, recon_mse=1e-3)}
    text = ex.init_findings(cfg, res, init, 0)
    assert "uses 5 of 8" in text and "worse than VQ with replacement" in text
    assert "depends on the initialization" in text
    sim = ex.simvq_findings(cfg, res, init, [0])
    assert "100 to 100" in sim and "better than VQ on 1 of 1" in sim
    assert sim.index("VQ + replacement (") < sim.index("SCQ (")
    assert "diverged" in ex.simvq_findings(cfg, res, {**init, ("simvq", 0): None}, [0])


def test_alg9_findings_reports_divergence_or_result():
    from effcourse.scq.autoencoder import AutoencoderHistory

    cfg = tiny_cfg()
    res = {("scq", 0): _result(recon_mse=2e-3), ("scq", 1): None}
    h = AutoencoderHistory(train_loss=[1e7], diverged=True, diverged_at=42)
    assert "diverged at step 42" in ex.alg9_findings(cfg, (h, None), res, [0, 1])
    assert "on 1 of 2 seeds" in ex.alg9_findings(cfg, (h, None), res, [0, 1])
    text = ex.alg9_findings(cfg, (AutoencoderHistory(), _result(recon_mse=4e-3)), res, [0, 1])
    assert "trained to the end" in text and "4.00e-3" in text and "2.00e-3" in text


def test_alg9_objective_ratios_are_reproducible_and_above_the_optimum():
    r1 = ex.alg9_objective_ratios(2, 6, 10, 0.1, 1000, torch.Generator().manual_seed(0), instances=3)
    r2 = ex.alg9_objective_ratios(2, 6, 10, 0.1, 1000, torch.Generator().manual_seed(0), instances=3)
    assert r1 == r2 and len(r1) == 3
    assert min(r1) >= 1 - 1e-6  # after 1000 rounds the point is (nearly) feasible, so it cannot beat the optimum
    with pytest.raises(ValueError, match="instances"):
        ex.alg9_objective_ratios(2, 6, 10, 0.1, 2, torch.Generator(), instances=0)

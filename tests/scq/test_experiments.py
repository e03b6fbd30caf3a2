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
    small = dict(steps=4, eval_every=2, seeds=[0, 1], methods=["ae", "vq", "vq_rep", "scq"], num_codes=8, code_dim=4,
                 channels=8, res_channels=4, res_blocks=1, batch_size=16, init_seeds=[0, 1],
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
    assert all(r["never_worse"] for r in rows) and rows[0]["max_dev"] > rows[1]["max_dev"]
    with pytest.raises(ValueError, match="lams"):
        ex.hull_check(codes, z, [])


def test_compare_solvers_rows_and_ratios():
    rows, ratio = ex.compare_solvers([(2, 6)], columns=10, lam=0.1, alternating_steps=[2, 50])
    assert [r["solver"] for r in rows] == ["VQ (one-hot)", "exact (5.8), cvxpylayers", "ridge + exact projection",
                                          "ridge + alternating, m=2", "ridge + alternating, m=50"]
    assert ratio[(6, "exact (5.8), cvxpylayers")] == pytest.approx(1.0)
    assert ratio[(6, "VQ (one-hot)")] >= 1.0 and ratio[(6, "ridge + exact projection")] >= 1.0 - 1e-9
    exact = rows[1]
    assert exact["columns with $p<0$"] == 0.0 and exact["rel. distance to $P^\\star$"] == 0.0
    assert "ms" in str(table(rows, fmt=ex.SOLVER_TABLE_FORMAT))
    with pytest.raises(ValueError, match="sizes"):
        ex.compare_solvers([], 10, 0.1, [2])


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
    results, models, hists = ex.train_methods(cfg, data, progress=False)
    assert set(results) == {("ae", 0), ("vq", 0), ("vq_rep", 0), ("scq", 0), ("vq", 1), ("vq_rep", 1), ("scq", 1)}
    assert set(models) == set(hists) == set(results)
    init_res = ex.train_init_study(cfg, data, progress=False)
    assert set(init_res) == {("vq", 0), ("vq_rep", 0), ("scq", 0), ("simvq", 0), ("vq", 1), ("simvq", 1)}

    rows = ex.table51_rows(cfg, results)
    assert [r["method"] for r in rows] == ["AE (no quantizer)", "VQ", "VQ + replacement", "SCQ"]
    assert rows[0]["quant error (1e-3)"] == "—" and "±" in rows[1]["recon MSE (1e-3)"]
    assert rows[3]["thesis, CIFAR-10: MSE (1e-3), quant error, perplexity, ms"].startswith("1.53")
    s = ex.summarize(results, [("vq", 0), ("vq", 1)])
    assert s["recon_mse"][0] == pytest.approx((results["vq", 0]["recon_mse"] + results["vq", 1]["recon_mse"]) / 2)
    assert ex.summarize({("vq", 0): None}, [("vq", 0)]) is None
    assert len(ex.per_seed_rows(cfg, results)) == 6
    assert [r["codebook init"] for r in ex.init_rows(cfg, results, init_res)][:2] == ["U(-1/K, 1/K)", "N(0, 1)"]
    assert len(ex.init_rows(cfg, results, init_res)) == 7  # SimVQ has no U(-1/K, 1/K) run
    assert [r["seed"] for r in ex.simvq_rows(cfg, init_res)] == [0, 1]
    repro = ex.reproduction_rows(cfg, results, init_res, None, 0.14)
    assert len(repro) == 7 and repro[4]["this book"] == "not run" and "0.14" in repro[5]["this book"]
    _, h9, r9 = ex.train_one(cfg, data, "scq_alg9", 0, progress=False)
    assert ex.reproduction_rows(cfg, results, init_res, (h9, r9), 0.1)[4]["this book"] != "not run"
    for rows_, fmt in ((ex.per_seed_rows(cfg, results), ex.PER_SEED_FORMAT),
                       (ex.simvq_rows(cfg, init_res), ex.SIMVQ_FORMAT), (repro, None)):
        assert str(table(rows_, fmt=fmt)).startswith("| ")

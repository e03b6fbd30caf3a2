"""The exact l0 problem by enumeration (effcourse.sparsification.l0)."""

from __future__ import annotations

import pytest
import torch

from effcourse.sparsification import l0


def test_brute_force_l0_formulations_agree_and_find_the_planted_support():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(60, 8, generator=g, dtype=torch.float64)
    w = torch.tensor([3.0, 0, -2.0, 0, 0, 1.5, 0, 0], dtype=torch.float64)
    y = x @ w + 0.05 * torch.randn(60, generator=g, dtype=torch.float64)
    obj, support = l0.brute_force_l0(x, y, 0.05)
    assert support.tolist() == [1, 0, 1, 0, 0, 1, 0, 0]
    for p in (0.5, 1.0, 2.0):
        assert l0.brute_force_l0(x, y, 0.05, "mask", p=p)[0] == pytest.approx(obj, abs=1e-10)
    # a huge lambda prunes everything: the objective is then the loss of predicting 0
    assert l0.brute_force_l0(x, y, 1e3)[0] == pytest.approx(float((y ** 2).sum() / 120), rel=1e-10)
    with pytest.raises(ValueError, match="14"):
        l0.brute_force_l0(torch.randn(10, 15, dtype=torch.float64), torch.randn(10, dtype=torch.float64), 0.1)
    with pytest.raises(ValueError, match="form"):
        l0.brute_force_l0(x, y, 0.1, form="l1")


def test_reframings_agree_on_the_planted_problems_and_recover_their_supports():
    rows, agree = l0.reframings_agree((0.005, 0.1))
    assert agree and [r["lambda"] for r in rows] == [0.005, 0.1]
    assert all(len(r["mask"]) == 3 and r["mask"][1] == pytest.approx(r["weights"], abs=1e-10) for r in rows)
    assert rows[0]["support"][4:] == [0] * 6 and rows[0]["support"][:2] == [1, 1]  # the planted zeros stay out
    assert sum(rows[1]["support"]) <= sum(rows[0]["support"])  # a larger lambda keeps no more weights
    (x, y), (xs, ys) = l0.planted_problems()
    assert x.shape == (40, 10) and ys.shape == (40, 6) and x.dtype == torch.float64
    with pytest.raises(ValueError, match="lams"):
        l0.reframings_agree(())

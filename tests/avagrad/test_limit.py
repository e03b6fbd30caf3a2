"""The eps -> infinity limit of eq. 6.8: Adam(gamma eps) and AvaGrad(gamma) approach EMA-momentum SGD(gamma)."""

import pytest
import torch

from effcourse.avagrad import EMAMomentumSGD, limit


def test_identical_optimizers_stay_together():
    sgd = lambda p: EMAMomentumSGD(p, lr=0.05)  # noqa: E731
    assert limit.limit_distance(sgd, sgd, steps=5) == 0.0
    with pytest.raises(ValueError, match="steps"):
        limit.limit_distance(sgd, sgd, steps=0)


def test_distances_shrink_like_one_over_eps_only_with_the_right_lr():
    rows = limit.limit_distances([1.0, 100.0], gamma=0.05, steps=20)
    assert [r["eps"] for r in rows] == [1.0, 100.0]
    assert rows[1]["avagrad"] < rows[0]["avagrad"] / 20
    assert rows[1]["adam_scaled"] < rows[0]["adam_scaled"] / 20
    assert rows[1]["adam_fixed"] > 100 * rows[1]["adam_scaled"]  # at a fixed lr Adam's steps vanish instead
    with pytest.raises(ValueError, match="epss"):
        limit.limit_distances([], gamma=0.05, steps=5)


def test_the_distance_is_repeatable_for_a_seed():
    adam = lambda p: torch.optim.Adam(p, lr=0.05, eps=1.0)  # noqa: E731
    sgd = lambda p: EMAMomentumSGD(p, lr=0.05, bias_correction=True)  # noqa: E731
    assert limit.limit_distance(adam, sgd, 10, seed=3) == limit.limit_distance(adam, sgd, 10, seed=3)
    assert limit.limit_distance(adam, sgd, 10, seed=3) != limit.limit_distance(adam, sgd, 10, seed=4)


def test_limit_over_seeds_stacks_one_row_per_seed():
    out = limit.limit_over_seeds([1.0, 100.0], gamma=0.05, steps=5, seeds=[7, 8])
    assert set(out) == set(limit.COLUMNS) and all(v.shape == (2, 2) for v in out.values())
    one = limit.limit_distances([1.0, 100.0], gamma=0.05, steps=5, seed=8)
    assert out["avagrad"][1].tolist() == [r["avagrad"] for r in one]
    with pytest.raises(ValueError, match="seeds"):
        limit.limit_over_seeds([1.0], gamma=0.05, steps=5, seeds=[])

"""The tuned SGD, Adam and RMSProp baselines, run on all tasks at once."""

from __future__ import annotations

import pytest
import torch

from effcourse.dco.baselines import run_baseline, tune_baseline
from effcourse.dco.tasks import least_squares_tasks


def test_baseline_tuning_picks_the_best_grid_point_and_runs_are_independent_per_task():
    g = torch.Generator().manual_seed(0)
    ls = least_squares_tasks(4, p=5, n=8, generator=g)
    lrs = [1e-4, 1e-2, 10.0]
    best, finals = tune_baseline(ls, "sgd", lrs, 10)
    assert finals[2] > 1e6 * finals.min()  # lr 10 blows up on these problems
    assert best == lrs[int(finals.argmin())]
    both = run_baseline(ls, "adam", 1e-2, 5)
    one = run_baseline(ls.subset(torch.tensor([0])), "adam", 1e-2, 5)
    two = run_baseline(ls.subset(torch.tensor([1, 2, 3])), "adam", 1e-2, 5)
    assert torch.allclose(both, (one + 3 * two) / 4)


def test_bad_baseline_inputs_raise_clear_errors():
    ls = least_squares_tasks(2, p=3, n=3)
    with pytest.raises(ValueError, match="baseline"):
        run_baseline(ls, "lion", 1e-2, 5)
    with pytest.raises(ValueError, match="lr"):
        run_baseline(ls, "sgd", 0.0, 5)
    with pytest.raises(ValueError, match="lrs"):
        tune_baseline(ls, "sgd", [], 5)

"""(alpha, eps) grids, what they say about separability and tuning cost, and the Table 6.1 protocol."""

import numpy as np
import pytest
import torch

from effcourse.avagrad import make_optimizer, model_factory, optimizer_factory, tuning
from effcourse.core.config import config
from effcourse.core.data import digits, holdout
from effcourse.core.models import MLP


def test_grid_analysis_helpers():
    lrs = [1e-3, 1e-2, 1e-1, 1.0]
    err = np.array([[0.5, 0.1, 0.2, 0.9],    # eps 1: best at 1e-2
                    [0.9, 0.5, 0.1, 0.3]])   # eps 2: best at 1e-1
    assert list(tuning.best_lr_per_eps(err, lrs, smooth=False)) == [1e-2, 1e-1]
    assert tuning.log10_spread([1e-2, 1e-1, 1.0]) == pytest.approx(2.0)
    gaps = tuning.transfer_gaps(err, smooth=False)
    assert gaps.tolist() == pytest.approx([0.4, 0.1])
    assert tuning.expected_random_search_trials(err, 0.0) == pytest.approx(9 / 3)


def test_grid_sweep_runs_and_is_repeatable():
    d = digits()

    def sweep():
        return tuning.grid_sweep(lambda: MLP([d.num_features, 8, 10]),
                                 lambda ps, lr, eps: make_optimizer("avagrad", ps, lr, eps), d,
                                 [0.3, 1e4], [1e-2], epochs=2, batch_size=64)

    a, b = sweep(), sweep()
    assert np.array_equal(a, b) and a.shape == (1, 2)
    assert a[0, 0] < 0.5 and a[0, 1] >= 0.5  # a huge lr diverges or fails


def test_fit_kwargs_follow_the_configuration():
    smoke = config("08-avagrad", "smoke")
    kw = tuning.fit_kwargs(smoke, 3)
    assert kw == dict(epochs=3, batch_size=64, augment=None, scheduler=None)
    full = tuning.fit_kwargs(config("08-avagrad", "full"), 200)
    assert full["augment"] is not None and full["batch_size"] == 128
    sched = full["scheduler"](torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0))
    assert isinstance(sched, torch.optim.lr_scheduler.MultiStepLR) and sched.gamma == 0.2
    with pytest.raises(ValueError, match="epochs"):
        tuning.fit_kwargs(smoke, 0)


def test_best_cell_and_error_at():
    lrs, epss = [1e-2, 1e-1, 1.0], [1e-4, 1.0]
    err = np.array([[0.3, 0.2, 0.5],
                    [0.4, 0.6, 0.1]])
    assert tuning.best_cell(err, lrs, epss) == (1.0, 1.0)
    assert tuning.error_at(err, lrs, [1e-1, 1e-2]).tolist() == [0.2, 0.4]
    with pytest.raises(ValueError, match="chosen"):
        tuning.error_at(err, lrs, [0.5, 1.0])


def test_mean_grid_averages_seeds_and_tune_and_test_keeps_tuned_cells():
    d = holdout(digits(), 0.2)
    make = model_factory(dict(model="mlp", hidden=8), d)
    kw = dict(epochs=1, batch_size=64)
    one = [tuning.grid_sweep(make, optimizer_factory("avagrad"), d, [0.3], [1e-2], seed=s, **kw) for s in (0, 1)]
    mean = tuning.mean_grid(make, optimizer_factory("avagrad"), d, [0.3], [1e-2], [0, 1], **kw)
    assert mean[0, 0] == pytest.approx((one[0][0, 0] + one[1][0, 0]) / 2)
    chosen, err = tuning.tune_and_test(["sgd", "avagrad"], optimizer_factory, make, make, d, d, [1e-3, 0.1], [0, 1],
                                       tuned={"avagrad": (0.3, 1e-2)}, **kw)
    assert chosen["avagrad"] == (0.3, 1e-2) and chosen["sgd"][1] is None and chosen["sgd"][0] in (1e-3, 0.1)
    assert err["avagrad"].shape == (2,) and err["avagrad"][0] == pytest.approx(one[0][0, 0])
    with pytest.raises(ValueError, match="seeds"):
        tuning.mean_grid(make, optimizer_factory("adam"), d, [0.1], [1e-8], [], **kw)

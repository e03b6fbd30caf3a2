import numpy as np
import pytest
import torch

from effcourse.avagrad import counterexample as cx
from effcourse.avagrad import tuning


def test_problem_quantities_match_the_closed_forms():
    p = cx.RareSpikeProblem(999.0, 1.0)
    assert p.p == pytest.approx(2 / 1000)
    assert float(p.grad(torch.tensor(p.w_star, dtype=torch.float64))) == pytest.approx(0.0, abs=1e-12)
    assert float(p.grad(torch.tensor(1.0))) == pytest.approx(1.0)
    assert p.second_moment() == pytest.approx(1997.0)
    with pytest.raises(ValueError, match="C"):
        cx.RareSpikeProblem(C=-1.0)


def test_drift_bound_sign_and_threshold():
    assert cx.adam_drift_bound(999, 1, 0.99, 1e-8) == pytest.approx(0.0024395, abs=1e-6)
    assert cx.adam_drift_bound(10, 1, 0.99, 1e-8) < 0
    with pytest.raises(ValueError, match="beta2"):
        cx.adam_drift_bound(999, 1, 1.0, 1e-8)


def test_adam_drifts_to_the_boundary_and_delayed_adam_does_not():
    out = cx.run_methods(cx.RareSpikeProblem(), steps=5000, w1=1.0, seeds=4, record_every=1000,
                         methods=("adam", "delayed_adam"), generator=torch.Generator().manual_seed(0))
    assert out["adam"].shape == (4, 5)
    assert float(out["adam"][:, -1].min()) > 0.95  # stuck at w = 1, where ||grad f||^2 = 1
    assert float(out["delayed_adam"][:, -1].max()) < 0.8
    assert float(out["delayed_adam/w"].mean()) < float(out["adam/w"].mean()) - 0.05
    with pytest.raises(ValueError, match="unknown method"):
        cx.run_methods(cx.RareSpikeProblem(), steps=10, record_every=5, methods=("sgd",))


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
    from effcourse.avagrad import make_optimizer
    from effcourse.core.data import digits
    from effcourse.core.models import MLP

    d = digits()

    def sweep():
        return tuning.grid_sweep(lambda: MLP([d.num_features, 8, 10]),
                                 lambda ps, lr, eps: make_optimizer("avagrad", ps, lr, eps), d,
                                 [0.3, 1e4], [1e-2], epochs=2, batch_size=64)

    a, b = sweep(), sweep()
    assert np.array_equal(a, b) and a.shape == (1, 2)
    assert a[0, 0] < 0.5 and a[0, 1] >= 0.5  # a huge lr diverges or fails

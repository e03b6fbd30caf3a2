"""The problem of Theorem 6.1 (eqs. 6.13-6.23): closed forms, the drift bound, and Adam against Delayed Adam."""

import pytest
import torch

from effcourse.avagrad import counterexample as cx


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
    out = cx.run_methods(cx.RareSpikeProblem(), steps=5000, w1=1.0, runs=4, record_every=1000,
                         methods=("adam", "delayed_adam"), generator=torch.Generator().manual_seed(0))
    assert out["adam"].shape == (4, 5)
    assert float(out["adam"][:, -1].min()) > 0.95  # stuck at w = 1, where ||grad f||^2 = 1
    assert float(out["delayed_adam"][:, -1].max()) < 0.8
    assert float(out["delayed_adam/w"].mean()) < float(out["adam/w"].mean()) - 0.05
    with pytest.raises(ValueError, match="runs"):
        cx.run_methods(cx.RareSpikeProblem(), steps=10, record_every=5, runs=0)
    with pytest.raises(ValueError, match="unknown method"):
        cx.run_methods(cx.RareSpikeProblem(), steps=10, record_every=5, methods=("sgd",))

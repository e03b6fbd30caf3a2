"""The chapter's experiment drivers: each returns what the notebook reads, drawn in the documented order."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch

from effcourse.dco.baselines import BASELINES, run_baseline
from effcourse.dco.experiments import (
    Comparison,
    HorizonPitfall,
    backend_fidelity,
    compare_on_family,
    dco_rules,
    final_losses,
    first_order_steps_as_dco,
    network_rows,
    network_summary,
    one_step_horizon_pitfall,
    theorem6_check,
    verdict,
    verdict_rows,
)
from effcourse.dco.layers import DCOGeneralDescent, DCOGradient, DCOMomentum
from effcourse.dco.meta import evaluate_optimizer
from effcourse.dco.tasks import least_squares_tasks


def test_gd_and_momentum_are_dco_rules_at_constant_phi():
    err = first_order_steps_as_dco(torch.Generator().manual_seed(0), p=5, steps=10, n_problems=2)
    assert err["gd"] < 1e-12 and err["momentum"] < 1e-12 and err["solver"] < 1e-7
    with pytest.raises(ValueError, match="beta"):
        first_order_steps_as_dco(torch.Generator(), beta=1.0)


def test_backend_fidelity_rows_and_worst():
    rows, worst = backend_fidelity(4, 2, torch.Generator().manual_seed(0))
    assert [r["rule"] for r in rows] == ["DCOG", "DCOGD", "DCOM"]
    tight = [r[k] for r in rows for k in ("value, eps=1e-9", "gradient, eps=1e-9")]
    assert worst == max(tight) and worst < 1e-5
    assert rows[0]["value, default tol."] > rows[0]["value, eps=1e-9"]


def test_theorem6_check_on_a_small_design():
    thm = theorem6_check(12, 3, 30, 2, 40, 300, torch.Generator().manual_seed(0))
    big, few = thm.runs["N = 10p"], thm.runs["N < p"]
    assert abs(thm.exact_gap) < 1e-9 * thm.l_star
    assert big.bound_ok and big.trace[-1] < 1e-3 * big.trace[0] and 0 < big.mu_over_L < 1
    assert big.n_compared == 300 and big.n_exceeded == 0 and big.n_off_floor == 0
    assert few.mu_over_L < 1e-10 and few.target_gap > few.train_gap
    assert few.n_compared == 0 and not few.bound_ok and few.floor == float("inf")  # mu = 0: nothing to compare
    assert few.train_gap < 1e-3 * few.train_gap0 and few.dist > 0.25 * few.dist0
    assert thm.norm_gap > 1e-3
    with pytest.raises(ValueError, match="few_tasks"):
        theorem6_check(12, 3, 30, 0, 40, 10, torch.Generator())


def test_theorem6_compares_the_bound_only_above_the_float64_floor():
    # run long enough for the bound to fall below what float64 resolves: the distance stops at rounding level
    # while the bound keeps falling, so comparing everywhere would fail on arithmetic, not on the theorem
    thm = theorem6_check(12, 3, 30, 2, 10, 6000, torch.Generator().manual_seed(0))
    big = thm.runs["N = 10p"]
    below = big.bound <= big.floor
    assert 0 < big.n_compared < 6000 and below.sum() == 6000 - big.n_compared
    assert np.any(big.trace[below] > big.bound[below])  # the naive comparison would fail here
    assert big.bound_ok and big.n_exceeded == 0 and big.n_off_floor == 0


def test_dco_rules_build_the_three_rules_from_their_constants():
    rules = dco_rules(lam0=2.0, b0=0.5, m0=0.3)
    opts = {name: make(4) for name, make in rules.items()}
    assert isinstance(opts["DCOG"], DCOGradient) and not isinstance(opts["DCOG"], DCOMomentum)
    assert isinstance(opts["DCOGD"], DCOGeneralDescent) and isinstance(opts["DCOM"], DCOMomentum)
    assert torch.allclose(opts["DCOG"].lam, torch.full((4,), 2.0))
    assert torch.allclose(opts["DCOGD"].B, 0.5 * torch.eye(4))
    assert torch.allclose(opts["DCOM"].m, torch.full((4,), 0.3))


def _draw(seed):
    return partial(least_squares_tasks, p=4, n=6, generator=torch.Generator().manual_seed(seed))


def test_compare_on_family_draws_train_tune_held_in_order_and_reports_on_held_out():
    rules = dco_rules(lam0=1.0, b0=1.0, m0=0.1)
    res = compare_on_family(_draw(0), (5, 6, 7), rules, [1e-3, 1e-2], epochs=3, eval_steps=4)
    assert list(res.curves)[:6] == [f"{r} ({m})" for r in rules for m in ("reset", "persistent")]
    assert len(res.curves) == 9 and all(c.shape == (5,) for c in res.curves.values())
    draw = _draw(0)
    held = [draw(n) for n in (5, 6, 7)][2]
    assert held.n_tasks == 7
    assert torch.equal(res.curves[f"sgd (lr {res.best_lr['sgd']:.2g})"],
                       run_baseline(held, "sgd", res.best_lr["sgd"], 4))
    assert torch.equal(res.phi0["DCOG"], evaluate_optimizer(rules["DCOG"](4), held, 4))
    assert len(res.train_losses[("DCOM", True)]) == 3
    with pytest.raises(ValueError, match="counts"):
        compare_on_family(_draw(0), (5, 6), rules, [1e-2], epochs=1, eval_steps=2)


def test_final_losses_and_network_rows():
    c = Comparison(curves={"DCOG (reset)": torch.tensor([3.0, 1.0]), "sgd (lr 0.01)": torch.tensor([3.0, 2.0])},
                   phi0={"DCOG": torch.tensor([3.0, 2.5])})
    d = Comparison(curves={"DCOG (reset)": torch.tensor([3.0, 0.5]), "sgd (lr 0.1)": torch.tensor([3.0, 4.0])},
                   phi0={"DCOG": torch.tensor([3.0, 2.0])})
    assert final_losses([c, d]) == {"DCOG (reset)": [1.0, 0.5], "sgd": [2.0, 4.0]}
    rows = network_rows({"a": c, "b": d})
    assert [r["method"] for r in rows] == ["DCOG (reset)", "sgd", "DCOG at its initial $\\phi_0$"]
    assert rows[2] == {"method": "DCOG at its initial $\\phi_0$", "a: step-30 val. MSE": 2.5,
                       "b: step-30 val. MSE": 2.0}
    with pytest.raises(ValueError, match="results"):
        final_losses([])


def test_network_summary_names_the_best_rule_and_compares_with_phi0():
    c = Comparison(curves={"DCOG (reset)": torch.tensor([3.0, 1.0]), "DCOG (persistent)": torch.tensor([3.0, 0.5]),
                           **{f"{b} (lr 0.1)": torch.tensor([3.0, 2.0 + i]) for i, b in enumerate(BASELINES)}},
                   phi0={"DCOG": torch.tensor([3.0, 2.0])})
    (row,) = network_summary({"sysid": c})
    assert row["best DCO rule"] == "DCOG (persistent)" and row["best baseline"] == BASELINES[0]
    assert row["verdict"] == "0.25x the best baseline (wins)"
    assert row["DCOG (persistent) / DCOG at phi0"] == "0.25"


def test_verdicts():
    assert verdict(0.5, 1.0) == "0.50x the best baseline (wins)"
    assert verdict(1.0, 1.0).endswith("(about even)") and verdict(2.0, 1.0).endswith("(loses)")
    ls_final = {"DCOM (persistent)": [1.0, 3.0], **{b: [4.0, 4.0] for b in BASELINES}}
    net = {"sysid": {"DCOG (persistent)": [2.0], "DCOGD (persistent)": [1.0], "DCOM (persistent)": [0.1],
                     **{b: [1.0] for b in BASELINES}}}
    rows = verdict_rows(ls_final, net)
    assert len(rows) == 4 and rows[0]["held-out loss at step 30"] == "2 vs 4"
    assert rows[0]["verdict"].endswith("(wins)") and rows[1]["verdict"].endswith("(loses)")
    assert rows[3]["task"] == "sysid" and rows[3]["verdict"].endswith("(wins)")


def test_one_step_horizon_pitfall_starts_stable_and_records_every_meta_step():
    pit = one_step_horizon_pitfall(10, 4, 100.0, 5, 1e-3, 6, torch.Generator().manual_seed(0))
    assert pit.one_step.shape == pit.radius.shape == (7,)
    assert pit.radius[0] < 1  # B_0 = I / (2 lambda_max) is a safe gradient step
    assert np.all(pit.one_step >= pit.l_star - 1e-9)  # no rule beats the least-squares optimum
    synthetic = HorizonPitfall(one_step=np.array([5.0, 4.0, 6.0, 3.0]), radius=np.array([0.9, 1.2, 1.5, 1.0]),
                               l_star=1.0)
    assert synthetic.unstable(1.1).tolist() == [False, True, False, False]
    with pytest.raises(ValueError, match="kappa"):
        one_step_horizon_pitfall(10, 4, 0.5, 5, 1e-3, 6, torch.Generator())

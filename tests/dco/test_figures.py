"""The chapter's figure helpers draw what they say on the axes they are given."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure

from effcourse.dco.experiments import HorizonPitfall, Theorem6Run
from effcourse.dco.figures import plot_curves, plot_horizon_pitfall, plot_theorem6


def test_plot_curves_styles_dco_solid_and_baselines_dashed():
    ax = Figure().subplots()
    plot_curves(ax, {"DCOM (persistent)": torch.tensor([3.0, 1.0]), "sgd (lr 0.1)": [3.0, 2.0]}, "t", "loss")
    styles = [line.get_linestyle() for line in ax.get_lines()]
    assert styles == ["-", "--"] and ax.get_yscale() == "log" and ax.get_title() == "t"
    assert np.allclose(ax.get_lines()[0].get_ydata(), [3.0, 1.0])


def _run(mu_over_L, n_compared=3):
    trace = np.array([1.0, 0.5, 0.25])
    return Theorem6Run(mu_over_L=mu_over_L, trace=trace, bound=2 * trace, floor=0.3, n_compared=n_compared,
                       n_exceeded=0, n_off_floor=0, dist0=1.0, dist=0.5, train_gap=0.0, target_gap=0.0, train_gap0=1.0,
                       target_gap0=1.0)


def test_plot_theorem6_draws_the_bound_only_where_mu_is_positive():
    ax = Figure().subplots()
    plot_theorem6(ax, {"N = 10p": _run(0.1), "N < p": _run(0.0)}, "Theorem 6")
    assert len(ax.get_lines()) == 3 and ax.get_yscale() == "log"
    assert ax.get_legend() is not None


def test_plot_theorem6_marks_the_float64_floor_only_when_the_bound_reaches_it():
    ax = Figure().subplots()
    plot_theorem6(ax, {"N = 10p": _run(0.1, n_compared=2)}, "Theorem 6")
    assert len(ax.get_lines()) == 3 and np.allclose(ax.get_lines()[2].get_ydata(), 0.3)


def test_plot_horizon_pitfall_marks_the_stability_limit():
    fig = Figure()
    a, b = fig.subplots(1, 2)
    plot_horizon_pitfall(a, b, HorizonPitfall(one_step=np.array([3.0, 2.0]), radius=np.array([0.9, 1.3]),
                                              l_star=1.0))
    assert np.allclose(a.get_lines()[0].get_ydata(), [3.0, 2.0])
    assert any(np.allclose(line.get_ydata(), 1) for line in b.get_lines())  # the dashed radius-1 line

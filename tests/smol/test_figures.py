"""The chapter's figures draw without error and show what they claim to."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from effcourse.smol import figures
from effcourse.smol.experiments import Sweep
from effcourse.smol.quadratic import QuadraticRun


def test_basin_is_flat_inside_and_rises_outside():
    assert torch.equal(figures.basin(torch.tensor([-0.3, 0.0, 0.29])), torch.zeros(3))
    assert float(figures.basin(torch.tensor(0.5))) > 0


def test_figures_have_their_panels():
    fig = figures.basin_figure()
    assert len(fig.axes) == 2 and len(fig.axes[1].lines) == 2 * 2 + 1  # curve + minimum per lambda, E[loss]
    run = QuadraticRun([1.0, 10.0, 100.0], [0.1, 0.2, 0.3], 1e-3, 100, np.full((3, 3), 5.0), np.array([5., 6., 7.]),
                       np.array([5., 6., 7.]), np.array([0.1, 0.2, 0.3]))
    assert len(figures.quadratic_figure(run).axes) == 2
    res = {"bpp": 2.0, "bpp_zpa": 1.5, "err_before": 0.1, "err_after": 0.05, "err_zpa_before": 0.1,
           "err_zpa_after": 0.05, "err_shuffled_before": 0.2}
    uni = {"err_fp": 0.02, "err_u2_before": 0.3, "err_u2_after": 0.1}
    assert len(figures.sweep_figure(Sweep([0.1], [0], [2], [uni], {0.1: [res]})).axes) == 2
    hist = figures.layer_histograms({"a": torch.tensor([1, 2, 2]), "b": torch.tensor([3, 3])})
    assert [a.get_title() for a in hist.axes] == ["a: mean 1.67 bits", "b: mean 3.00 bits"]
    split = figures.budget_split_figure([{"precision_epochs": 1, "bpp": 3.0, "err_after": 0.1},
                                         {"precision_epochs": 2, "bpp": 2.0, "err_after": 0.2}], 3, 0.1)
    assert len(split.axes) == 2  # bpp and the twin error axis
    plt.close("all")

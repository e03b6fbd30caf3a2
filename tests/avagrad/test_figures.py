"""The chapter's figures draw what they are given."""

import matplotlib
import numpy as np
import pytest
import torch

from effcourse.avagrad import counterexample as cx
from effcourse.avagrad import figures

matplotlib.use("Agg")


def test_running_mean_plot_has_one_line_per_method():
    out = cx.run_methods(cx.RareSpikeProblem(), steps=200, runs=2, record_every=50,
                         methods=("adam", "delayed_adam"), generator=torch.Generator().manual_seed(0))
    fig = figures.plot_running_mean(out, 50, title="t")
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 2 and ax.get_xscale() == "log"
    assert list(ax.get_lines()[0].get_xdata()) == [50, 100, 150, 200]
    with pytest.raises(ValueError, match="methods"):
        figures.plot_running_mean({}, 1)


def test_grid_figure_has_one_heatmap_per_optimizer():
    err = np.full((2, 3), 0.5)
    fig = figures.plot_grids({"adam": err, "avagrad": err}, {"adam": [1.0, 1.0], "avagrad": [0.1, 1.0]},
                             [0.1, 1.0, 10.0], [1e-4, 1.0], titles={"adam": "Adam"})
    heat = [a for a in fig.axes if a.get_title()]
    assert [a.get_title() for a in heat] == ["Adam", "avagrad"]

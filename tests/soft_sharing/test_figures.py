"""The chapter's figures draw what they are given and refuse malformed input."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from effcourse.soft_sharing import figures  # noqa: E402
from effcourse.soft_sharing.shortest_path import sample_paths  # noqa: E402


def test_lsm_row_with_colorbar_and_bad_input():
    fig = figures.plot_lsms({"a": torch.eye(3), "b": torch.ones(3, 3)}, "title", colorbar=True)
    assert len(fig.axes) == 3 and fig.axes[1].get_title() == "b"  # two panels and a colour bar
    plt.close(fig)
    with pytest.raises(ValueError, match="square"):
        figures.plot_lsms({"a": torch.ones(2, 3)})
    with pytest.raises(ValueError, match="at least one"):
        figures.plot_lsms({})


def test_path_figures():
    x, y = sample_paths(3, 8, 3, generator=torch.Generator().manual_seed(0))
    fig = figures.plot_path_grids(x, y)
    assert len(fig.axes) == 3
    plt.close(fig)
    with pytest.raises(ValueError, match="N x 2 x H x W"):
        figures.plot_path_grids(x[:, :1], y)
    f1 = {("CNN", 0): [0.5, 0.6], ("SCNN", 0): [0.4, 0.7]}
    fig = figures.plot_path_results(f1, {"LSM": torch.eye(4)}, [2, 4], [0])
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 2
    plt.close(fig)

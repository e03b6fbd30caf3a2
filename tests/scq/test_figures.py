"""Unit tests of effcourse.scq.figures (chapter 04-scq): the error maps and the plot helpers."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from effcourse.scq.autoencoder import AutoencoderHistory, VQAutoencoder  # noqa: E402
from effcourse.scq.figures import (  # noqa: E402
    plot_quantization_error,
    plot_reconstructions,
    plot_test_curves,
    quantization_error_maps,
)
from effcourse.scq.quantizers import VectorQuantizer  # noqa: E402


def test_error_maps_scq_is_never_worse_than_vq():
    codes = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [0.0, 1.0]], dtype=torch.float64)
    maps = quantization_error_maps(codes, [1e-3], extent=1.0, points=21, iters=300)
    assert list(maps) == ["VQ (nearest code)", "SCQ, $\\lambda$ = 0.001"]
    vq, scq = maps.values()
    assert vq.shape == (21, 21) and (scq <= vq + 1e-6).all()
    assert float(scq[10, 10]) < 1e-2 < float(vq[10, 10])  # the origin lies inside the triangle, far from its corners
    with pytest.raises(ValueError, match="K x 2"):
        quantization_error_maps(torch.zeros(3, 3), [0.1])


def test_plot_helpers_draw_one_panel_per_item():
    codes = torch.randn(4, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    fig = plot_quantization_error(codes, [0.1], points=11)
    assert len(fig.axes) == 3  # VQ, SCQ and the colour bar
    h = AutoencoderHistory(steps=[1, 2], test_mse=[0.2, 0.1])
    fig = plot_test_curves({("vq", 0): h, ("vq", 1): h, ("scq", 0): h}, first_seed=0)
    assert len(fig.axes[0].lines) == 3 and len(fig.axes[0].get_legend().get_texts()) == 2
    torch.manual_seed(0)
    models = {"ae": VQAutoencoder(None, embedding_dim=4), "vq": VQAutoencoder(VectorQuantizer(8, 4), embedding_dim=4)}
    fig = plot_reconstructions(models, torch.rand(3, 1, 8, 8))
    assert len(fig.axes) == 9 and not models["vq"].training
    with pytest.raises(ValueError, match="channels"):
        plot_reconstructions(models, torch.rand(3, 2, 8, 8))
    plt.close("all")

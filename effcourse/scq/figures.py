"""The figures of chapter 04-scq: each function draws one figure and returns it (the notebook calls
``plt.show()``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from .autoencoder import AutoencoderHistory, VQAutoencoder
from .codebook import nearest_code
from .experiments import METHOD_NAMES
from .solvers import scq_projected_gradient

__all__ = ["METHOD_COLORS", "plot_quantization_error", "plot_reconstructions", "plot_test_curves",
           "quantization_error_maps"]

METHOD_COLORS = {"ae": "k", "vq": "tab:blue", "vq_rep": "tab:orange", "scq": "tab:green"}


def quantization_error_maps(codes: torch.Tensor, lams: Sequence[float], extent: float = 2.5, points: int = 121,
                            iters: int = 400) -> dict[str, torch.Tensor]:
    """``||z - z_q||`` on a ``points x points`` grid over ``[-extent, extent]^2`` for 2-d ``codes``: VQ's nearest
    code (5.1), and SCQ (5.8) at every ``lam`` (solved by accelerated projected gradient).  Keys are panel
    titles."""
    if codes.dim() != 2 or codes.shape[1] != 2:
        raise ValueError(f"codes must be K x 2 (a picture in the plane); got {tuple(codes.shape)}")
    if not (isinstance(points, int) and points >= 2):
        raise ValueError(f"points must be an int >= 2; got {points!r}")
    xs = torch.linspace(-extent, extent, points, dtype=codes.dtype)
    grid = torch.stack(torch.meshgrid(xs, xs, indexing="xy"), -1).reshape(-1, 2)
    panels = {"VQ (nearest code)": codes[nearest_code(grid, codes)]}
    with torch.no_grad():
        for lam in lams:
            p, _ = scq_projected_gradient(grid, codes, lam, iters=iters)
            panels[f"SCQ, $\\lambda$ = {lam:g}"] = p @ codes
    return {title: (grid - zq).norm(dim=1).reshape(points, points) for title, zq in panels.items()}


def plot_quantization_error(codes: torch.Tensor, lams: Sequence[float], extent: float = 2.5, points: int = 121):
    """Heat maps of :func:`quantization_error_maps` side by side, the codes as dots."""
    import matplotlib.pyplot as plt

    maps = quantization_error_maps(codes, lams, extent, points)
    fig, axes = plt.subplots(1, len(maps), figsize=(4 * len(maps), 4), sharey=True)
    for ax, (title, err) in zip(axes, maps.items()):
        im = ax.imshow(err.numpy(), origin="lower", extent=(-extent, extent, -extent, extent), vmin=0, vmax=1.5,
                       cmap="magma")
        ax.scatter(codes[:, 0], codes[:, 1], c="cyan", s=25, edgecolors="k", label="codes")
        ax.set_title(title)
        ax.set_xlabel("$z_1$")
        ax.set_ylabel("$z_2$")
    fig.colorbar(im, ax=axes, label="quantization error $\\|z - z_q\\|$", shrink=0.85)
    axes[0].legend(loc="lower left", fontsize=8)
    return fig


def plot_test_curves(hists: Mapping[tuple[str, int], AutoencoderHistory], first_seed: int):
    """Test reconstruction MSE against the training step, one line per ``(kind, seed)``, labelled once."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.8))
    for (kind, seed), h in hists.items():
        ax.plot(h.steps, h.test_mse, color=METHOD_COLORS.get(kind), alpha=0.8,
                label=METHOD_NAMES[kind] if seed == first_seed else None)
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("test reconstruction MSE")
    ax.set_title("digits autoencoders, one line per seed")
    ax.legend(fontsize=8)
    return fig


@torch.no_grad()
def plot_reconstructions(models: Mapping[str, VQAutoencoder], x: torch.Tensor):
    """A grid of images: the inputs ``x`` (first row), then each model's reconstructions (clamped to [0, 1])."""
    import matplotlib.pyplot as plt

    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"x must be N x C x H x W images with 1 or 3 channels; got {tuple(x.shape)}")
    rows = [("input", x)]
    for kind, model in models.items():
        model.eval()
        rows.append((METHOD_NAMES[kind], model(x).x_hat.clamp(0, 1)))
    n = x.shape[0]
    fig, axes = plt.subplots(len(rows), n, figsize=(0.8 * n, 0.9 * len(rows)), squeeze=False)
    for i, (label, imgs) in enumerate(rows):
        for j in range(n):
            axes[i, j].imshow(imgs[j].permute(1, 2, 0).squeeze(-1).cpu().numpy(), cmap="gray", vmin=0, vmax=1)
            axes[i, j].axis("off")
        axes[i, 0].set_title(label, fontsize=8, loc="left")
    return fig

"""The chapter's figures: layer similarity matrices (eq. 3.13, as in Fig. 3.2), shortest-path grids and F1 curves.

Each function draws one figure and returns it; the notebook ends the cell with ``plt.show()``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = ["plot_lsms", "plot_path_grids", "plot_path_results", "show_lsm"]


def show_lsm(ax: plt.Axes, s: torch.Tensor, title: str):
    """One layer similarity matrix in grey (white = 1), layers numbered from 1; returns the image."""
    if s.dim() != 2 or s.shape[0] != s.shape[1]:
        raise ValueError(f"s must be a square LSM; got shape {tuple(s.shape)}")
    im = ax.imshow(s.numpy(), vmin=0, vmax=1, cmap="gray")
    ax.set_title(title, fontsize=10)
    ticks = range(s.shape[0])
    ax.set_xticks(ticks, [str(i + 1) for i in ticks], fontsize=7)
    ax.set_yticks(ticks, [str(i + 1) for i in ticks], fontsize=7)
    ax.set_xlabel("layer")
    ax.set_ylabel("layer")
    return im


def plot_lsms(lsms: Mapping[str, torch.Tensor], suptitle: str | None = None, colorbar: bool = False) -> plt.Figure:
    """A row of LSMs, one panel per ``title -> matrix``, optionally with a shared colour bar."""
    if not lsms:
        raise ValueError("lsms must hold at least one matrix")
    n = len(lsms)
    fig, axes = plt.subplots(1, n, figsize=(2.4 * n + 0.5, 3.3), layout="constrained", squeeze=False)
    for ax, (title, s) in zip(axes[0], lsms.items()):
        im = show_lsm(ax, s, title)
    if colorbar:
        fig.colorbar(im, ax=axes[0], shrink=0.8, label="similarity")
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return fig


def plot_path_grids(x: torch.Tensor, y: torch.Tensor) -> plt.Figure:
    """Shortest-path samples: queries (blue), obstacles (red), cells on a shortest path (yellow)."""
    if x.dim() != 4 or x.shape[1] != 2 or y.shape != (x.shape[0], *x.shape[2:]):
        raise ValueError(f"x must be N x 2 x H x W and y N x H x W; got {tuple(x.shape)} and {tuple(y.shape)}")
    x, y = x.cpu(), y.cpu()
    fig, axes = plt.subplots(1, x.shape[0], figsize=(2.5 * x.shape[0], 2.6), squeeze=False)
    for ax, xi, yi in zip(axes[0], x, y):
        img = np.ones((*yi.shape, 3))
        img[xi[1].bool().numpy()] = (0.85, 0.2, 0.2)
        img[yi.bool().numpy()] = (0.95, 0.85, 0.3)
        img[xi[0].bool().numpy()] = (0.2, 0.3, 0.9)
        ax.imshow(img)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("queries (blue), obstacles (red), cells on a shortest path (yellow)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_path_results(f1: Mapping[tuple[str, int], Sequence[float]], lsms: Mapping[str, torch.Tensor],
                      max_distances: Sequence[int], seeds: Sequence[int]) -> plt.Figure:
    """Left: mean test F1 at the end of each curriculum phase per model; right: one LSM per ``title -> matrix``."""
    names = list(dict.fromkeys(name for name, _ in f1))
    fig, axes = plt.subplots(1, 1 + len(lsms), figsize=(5.5 + 2.75 * len(lsms), 3.4),
                             gridspec_kw={"width_ratios": [2] + [1] * len(lsms)}, squeeze=False)
    axes = axes[0]
    for name in names:
        axes[0].plot(max_distances, np.mean([f1[name, s] for s in seeds], axis=0), marker="o", label=name)
    axes[0].set_xlabel("maximum query distance of the phase")
    axes[0].set_ylabel("test F1 at the end of the phase")
    axes[0].set_xticks(list(max_distances))
    axes[0].legend(fontsize=8)
    axes[0].set_title(f"mean of {len(seeds)} seeds", fontsize=10)
    for ax, (title, s) in zip(axes[1:], lsms.items()):
        show_lsm(ax, s, title)
    fig.tight_layout()
    return fig

"""Matplotlib helpers shared by the chapters (figures stay readable at book width)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["grid_heatmap"]


def grid_heatmap(ax, err: np.ndarray, lrs: Sequence[float], epss: Sequence[float], title: str = "",
                 best_lrs: Sequence[float] | None = None, vmax: float = 0.2):
    """Validation error over an (eps, lr) grid as a heatmap in percent, with each row's best lr marked.

    Errors above ``vmax`` saturate so that the interesting low-error region keeps its contrast.
    """
    import matplotlib.pyplot as plt

    e = np.minimum(np.asarray(err, float), vmax) * 100
    im = ax.imshow(e, origin="lower", aspect="auto", cmap="viridis_r", vmin=e.min(), vmax=vmax * 100)
    ax.set_xticks(range(len(lrs)))
    ax.set_xticklabels([f"{np.log10(v):.1f}" for v in lrs], rotation=90, fontsize=7)
    ax.set_yticks(range(len(epss)))
    ax.set_yticklabels([f"{np.log10(v):.0f}" for v in epss], fontsize=8)
    ax.set_xlabel(r"$\log_{10}\,\alpha$ (learning rate)")
    ax.set_ylabel(r"$\log_{10}\,\epsilon$")
    if best_lrs is not None:
        cols = [int(np.argmin(np.abs(np.log10(np.asarray(lrs)) - np.log10(b)))) for b in best_lrs]
        ax.plot(cols, range(len(epss)), "o", color="red", ms=5, label=r"best $\alpha$ per $\epsilon$")
        ax.legend(loc="upper left", fontsize=7, framealpha=0.8)
    ax.set_title(title)
    plt.colorbar(im, ax=ax, label=f"validation error % (clipped at {vmax * 100:.0f})")
    return im

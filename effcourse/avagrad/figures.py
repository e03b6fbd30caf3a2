"""The chapter's figures: the counterexample's running mean (Fig. 6.7) and the (alpha, eps) grids (Figs. 6.1-6.2)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from ..core.plotting import grid_heatmap

__all__ = ["METHOD_LABELS", "plot_grids", "plot_running_mean"]

METHOD_LABELS = {"adam": "Adam", "amsgrad": "AMSGrad", "delayed_adam": "Delayed Adam",
                 "adam_eps_schedule": r"Adam, $\epsilon_t = t^{3/2}$"}


def plot_running_mean(out: Mapping[str, torch.Tensor], record_every: int, title: str = ""):
    """Mean and min-max band over runs of each method's running mean of ||grad f||^2 (log step axis).

    ``out`` is :func:`effcourse.avagrad.counterexample.run_methods`'s result; returns the figure.
    """
    import matplotlib.pyplot as plt

    methods = [m for m in METHOD_LABELS if m in out]
    if not methods:
        raise ValueError(f"out has none of the methods {tuple(METHOD_LABELS)}")
    steps_axis = np.arange(1, out[methods[0]].shape[1] + 1) * record_every
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for m in methods:
        r = out[m].cpu().numpy()
        ax.plot(steps_axis, r.mean(0), label=METHOD_LABELS[m])
        ax.fill_between(steps_axis, r.min(0), r.max(0), alpha=0.2)
    ax.set_xscale("log")
    ax.set_xlabel("step $t$")
    ax.set_ylabel(r"$\frac{1}{t}\sum_{t' \leq t} \|\nabla f(w_{t'})\|^2$")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_grids(grids: Mapping[str, np.ndarray], best: Mapping[str, Sequence[float]], lrs: Sequence[float],
               epss: Sequence[float], titles: Mapping[str, str] | None = None):
    """One heatmap per optimizer (validation error over lr x eps), each row's best lr marked; returns the figure."""
    import matplotlib.pyplot as plt

    if not grids:
        raise ValueError("grids must name at least one optimizer")
    titles = titles or {}
    fig, axes = plt.subplots(1, len(grids), figsize=(5.5 * len(grids), 4), squeeze=False)
    for ax, name in zip(axes[0], grids):
        grid_heatmap(ax, grids[name], lrs, epss, title=titles.get(name, name), best_lrs=best[name])
        for text in ax.get_legend().get_texts():
            text.set_fontsize(8)
    fig.tight_layout()
    return fig

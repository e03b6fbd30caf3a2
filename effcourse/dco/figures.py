"""The figures of chapter 3: each helper draws on axes the notebook creates, and returns nothing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from .experiments import HorizonPitfall, Theorem6Run

__all__ = ["plot_curves", "plot_horizon_pitfall", "plot_theorem6"]


def plot_curves(ax, curves: Mapping[str, torch.Tensor | Sequence[float]], title: str, ylabel: str) -> None:
    """Held-out loss against the inner step, log scale: DCO rules solid (persistent ones bold), baselines dashed."""
    for k, c in curves.items():
        style = "-" if k.startswith("DCO") else "--"
        y = c.numpy() if isinstance(c, torch.Tensor) else np.asarray(c)
        ax.plot(y, style, label=k, lw=1.4 if "persistent" in k or not k.startswith("DCO") else 0.9)
    ax.set_yscale("log")
    ax.set_xlabel("inner step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)


def plot_theorem6(ax, runs: Mapping[str, Theorem6Run], title: str) -> None:
    """``||B_k - B*||_F^2`` per run, with the bound ``(1 - mu/L)^k ||B_0 - B*||^2`` where ``mu > 0``, and the float64
    floor below which the bound is not compared when the bound reaches it."""
    for label, d in runs.items():
        k = np.arange(1, len(d.trace) + 1)
        ax.semilogy(k, d.trace, label=f"{label}: $\\|B_k - B^*\\|_F^2$")
        if d.mu_over_L > 1e-10:  # N < p: mu is zero up to rounding, and the bound says nothing
            ax.semilogy(k, d.bound, "--", color="gray", label=f"{label}: bound $(1-\\mu/L)^k\\|B_0-B^*\\|^2$")
        if d.n_compared < len(d.trace):  # the bound falls below what float64 resolves: show where comparing stops
            ax.axhline(d.floor, ls=":", color="gray", lw=0.8, label=f"{label}: float64 floor (not compared below)")
    ax.set_xlabel("meta-step k (gradient descent, step 1/L)")
    ax.set_ylabel("squared distance to $B^*$")
    ax.set_title(title)
    ax.legend(fontsize=8)


def plot_horizon_pitfall(ax_loss, ax_radius, pit: HorizonPitfall) -> None:
    """Left: what a T = 1 objective sees (one-step loss); right: whether the step can be repeated (radius < 1)."""
    ax_loss.semilogy(pit.one_step)
    ax_loss.set_xlabel("meta-step")
    ax_loss.set_ylabel("held-out loss after ONE step")
    ax_loss.set_title("what a T = 1 objective sees")
    ax_radius.semilogy(pit.radius)
    ax_radius.axhline(1, color="gray", ls="--", label="radius 1 (stability limit)")
    ax_radius.legend(fontsize=8)
    ax_radius.set_xlabel("meta-step")
    ax_radius.set_ylabel("spectral radius of $I - 2BX^\\top X$")
    ax_radius.set_title("whether the step can be repeated (< 1)")

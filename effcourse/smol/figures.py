"""The figures of chapter 7; each function draws one and returns it (the notebook shows it)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from .experiments import Sweep
from .fixed_point import fixed_point_grid
from .quadratic import QuadraticRun

__all__ = ["basin", "basin_figure", "budget_split_figure", "layer_histograms", "quadratic_figure", "sweep_figure"]


def basin(w: torch.Tensor, half_width: float = 0.3, curvature: float = 8.0) -> torch.Tensor:
    """A flat-bottomed 1-D loss: 0 on ``[-half_width, half_width]``, then ``curvature * (|w| - half_width)^2``."""
    return torch.relu(w.abs() - half_width) ** 2 * curvature


def basin_figure(lams: Sequence[float] = (0.01, 0.05), samples: int = 4000, seed: int = 1) -> Figure:
    """Fig. 5.1 in one picture: noise of half-width ``delta`` around ``w = 0`` in a flat basin (left), and the expected
    loss plus ``lambda (p - 1)`` against ``delta`` (right), minimized where the noise starts to leave the basin."""
    ws = torch.linspace(-1.2, 1.2, 400)
    eps = torch.rand(samples, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    deltas = torch.linspace(0.01, 1.0, 200)
    noisy = torch.stack([basin(0.0 + d * eps).mean() for d in deltas])
    bits = 1 - torch.log2(deltas)
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.4))
    ax[0].plot(ws, basin(ws), color="k")
    for d, c in [(0.15, "tab:green"), (0.3, "tab:orange"), (0.7, "tab:red")]:
        ax[0].axvspan(-d, d, alpha=0.15, color=c, label=f"noise $\\pm${d}")
    ax[0].set(xlabel="w", ylabel="loss", title="noise around w = 0")
    ax[0].legend(fontsize=8)
    for lam, c in zip(lams, ["tab:blue", "tab:purple", "tab:brown", "tab:pink"]):
        obj = noisy + lam * (bits - 1)
        ax[1].plot(deltas, obj, color=c, label=f"E[loss] + {lam} (p - 1)")
        ax[1].axvline(float(deltas[obj.argmin()]), color=c, ls=":")
    ax[1].plot(deltas, noisy, color="k", lw=1, label="E[loss] only")
    ax[1].set(xlabel="noise half-width $\\delta = \\sigma(s)$", ylabel="objective",
              title="where the penalty and the loss balance")
    ax[1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def quadratic_figure(run: QuadraticRun, axes: tuple[int, int] = (0, 2), half: float = 0.3) -> Figure:
    """Fig. 5.2: the learned precisions against steps with their closed-form optima (left), and the loss contours of
    two weights with the learned noise box and the fixed-point grid its precisions allow (right)."""
    h, c, trace = run.h, run.c, run.trace
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
    steps = np.linspace(0, run.steps, len(trace))
    for i, hi in enumerate(h):
        ax[0].plot(steps, trace[:, i], label=f"h = {hi:g}")
        ax[0].axhline(run.p_star[i], color=ax[0].lines[-1].get_color(), ls=":", lw=1)
    ax[0].set(xlabel="step", ylabel="real-valued precision p", title="SMOL on a separable quadratic (dotted: p*)")
    ax[0].legend(fontsize=8)
    i, j = axes
    g1, g2 = np.meshgrid(np.linspace(c[i] - half, c[i] + half, 200), np.linspace(c[j] - half, c[j] + half, 200))
    zz = 0.5 * h[i] * (g1 - c[i]) ** 2 + 0.5 * h[j] * (g2 - c[j]) ** 2
    ax[1].contour(g1, g2, zz, levels=[0.002, 0.01, 0.05, 0.2, 1.0], colors="gray", linewidths=0.8)
    sig = 2.0 ** (1 - run.p_learned)
    w = run.w_final
    ax[1].add_patch(plt.Rectangle((w[i] - sig[i], w[j] - sig[j]), 2 * sig[i], 2 * sig[j], fill=False,
                                  color="tab:red", lw=1.5, label="learned noise box"))
    pi, pj = int(np.floor(run.p_learned[i])), int(np.floor(run.p_learned[j]))
    gx, gy = np.meshgrid(fixed_point_grid(pi).numpy(), fixed_point_grid(pj).numpy())
    ax[1].scatter(gx, gy, s=4, color="tab:blue", label=f"grid: {pi} x {pj} bits")
    ax[1].set(xlim=(c[i] - half, c[i] + half), ylim=(c[j] - half, c[j] + half), xlabel=f"w{i} (h = {h[i]:g})",
              ylabel=f"w{j} (h = {h[j]:g})", title="flat axis: wide box, few bits")
    ax[1].legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def sweep_figure(sweep: Sweep) -> Figure:
    """Test error against bits per parameter for SMOL, SMOL* and uniform ``k``-bit, before and after fine-tuning
    (small dots: single seeds; red crosses: SMOL's precisions shuffled; dotted: full precision)."""
    fig, ax = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    lam_d, ub = sweep.lam_d, sweep.uniform_bits
    for a, when in zip(ax, ["before", "after"]):
        a.plot(ub, [100 * sweep.mean(f"err_u{k}_{when}") for k in ub], "s--", color="gray", label="uniform k-bit")
        for key, bkey, lab, col in [("err", "bpp", "SMOL", "tab:blue"),
                                    ("err_zpa", "bpp_zpa", "SMOL* (ZPA)", "tab:green")]:
            a.plot([sweep.mean(bkey, ld) for ld in lam_d], [100 * sweep.mean(f"{key}_{when}", ld) for ld in lam_d],
                   "o-", color=col, label=lab)
            for i in range(len(sweep.seeds)):
                a.scatter([sweep.smol[ld][i][bkey] for ld in lam_d],
                          [100 * sweep.smol[ld][i][f"{key}_{when}"] for ld in lam_d], s=8, color=col, alpha=0.3)
        if when == "before":
            a.plot(sweep.bpp(), [100 * sweep.mean("err_shuffled_before", ld) for ld in lam_d], "x:",
                   color="tab:red", label="SMOL, precisions shuffled")
        a.axhline(100 * sweep.mean("err_fp"), color="k", lw=0.8, ls=":", label="full precision")
        a.set(xlabel="average bits per parameter", ylabel="test error %", title=f"{when} fine-tuning")
        a.legend(fontsize=8)
    fig.tight_layout()
    return fig


def layer_histograms(precisions: Mapping[str, torch.Tensor]) -> Figure:
    """One histogram of the learned bits per weight for each layer, its mean in the title."""
    names = list(precisions)
    fig, ax = plt.subplots(1, len(names), figsize=(3.4 * len(names), 2.8), sharey=True)
    for a, n in zip(np.atleast_1d(ax), names):
        p = precisions[n].flatten().numpy()
        a.hist(p, bins=np.arange(-0.5, p.max() + 1.5), rwidth=0.8)
        a.set(title=f"{n}: mean {p.mean():.2f} bits", xlabel="bits", ylabel="weights")
    fig.tight_layout()
    return fig


def budget_split_figure(rows: Sequence[Mapping[str, float]], total: int, lam_d: float) -> Figure:
    """Bits per parameter and test error after fine-tuning against the precision-training share of ``total`` epochs
    (the rows of :func:`~effcourse.smol.experiments.budget_split`)."""
    t = [r["precision_epochs"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    (l1,) = ax.plot(t, [r["bpp"] for r in rows], "o-", color="tab:blue")
    ax.set(xlabel=f"precision-training epochs (of {total})", title=f"λd = {lam_d:g}")
    ax.set_ylabel("bpp", color="tab:blue")
    ax2 = ax.twinx()
    (l2,) = ax2.plot(t, [100 * r["err_after"] for r in rows], "s--", color="tab:orange")
    ax2.set_ylabel("test error after FT %", color="tab:orange")
    ax.legend([l1, l2], ["bits per parameter", "test error after fine-tuning"], fontsize=8, ncol=2,
              loc="upper center", bbox_to_anchor=(0.5, -0.2))
    fig.tight_layout()
    return fig

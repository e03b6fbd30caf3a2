"""The figures of chapter 2 (MeZO-SVRG): each function draws one figure from the traces of
:mod:`effcourse.mezo.experiments` and returns it (the notebook calls ``plt.show()``)."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np

from .batched import Trace
from .finetune import FinetuneTrace

__all__ = ["plot_ablations", "plot_batch_sizes", "plot_digits", "plot_finetuning", "plot_least_squares"]


def plot_least_squares(traces: Mapping[str, Trace], f_star: float):
    """Fig. 3.1a: the relative excess loss against queries, iterations and wall time (median and range of seeds)."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    for j, (name, tr) in enumerate(traces.items()):
        L = tr.losses().numpy() / f_star - 1
        for ax, x, lo in zip(axes, (tr.queries, tr.steps, tr.seconds), (1, 1, 1e-3)):
            ax.plot(np.maximum(x, lo), np.median(L, 1), color=f"C{j}", label=name)
            ax.fill_between(np.maximum(x, lo), L.min(1), L.max(1), color=f"C{j}", alpha=0.2)
    for ax, lab, title in zip(axes, ("single-sample forward passes", "iterations", "wall time (s)"),
                              ("per query (FO: forward + backward)", "per iteration", "per second")):
        ax.set(xscale="log", yscale="log", xlabel=lab, ylabel="(f - f*) / f*")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
    plt.tight_layout()
    return fig


def plot_batch_sizes(runs: Mapping[int, Trace], svrg: Trace, lr: float):
    """Fig. 3.1b: MeZO's training loss at each batch size and MeZO-SVRG's at the smallest (median and range)."""
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for j, (b, tr) in enumerate(runs.items()):
        L = tr.losses().clamp(max=20).numpy()
        ax.plot(tr.steps, np.median(L, 1), color=f"C{j}", label=f"MeZO b={b}")
        ax.fill_between(tr.steps, L.min(1), L.max(1), color=f"C{j}", alpha=0.15)
    L = svrg.losses().clamp(max=20).numpy()
    ax.plot(svrg.steps, np.median(L, 1), "k--", label=f"MeZO-SVRG b={next(iter(runs))}")
    ax.set(yscale="log", xlabel="iterations", ylabel="training loss (clipped at 20)",
           title=f"digits MLP, lr {lr}, median and range of {L.shape[1]} seeds")
    ax.legend(fontsize=8)
    return fig


def plot_digits(traces: Mapping[str, Trace]):
    """The digits comparison: median training loss against queries and against wall time."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
    for j, (name, tr) in enumerate(traces.items()):
        L = tr.losses().clamp(max=20).numpy()
        for ax, x in zip(axes, (tr.queries, tr.seconds)):
            ax.plot(np.maximum(x, 1e-3), np.median(L, 1), color=f"C{j}", label=name)
    axes[0].set(xscale="log", yscale="log", xlabel="single-sample forward passes", ylabel="training loss")
    axes[1].set(xscale="log", yscale="log", xlabel="wall time (s)", ylabel="training loss")
    axes[0].set_title("per forward pass", fontsize=10)
    axes[1].set_title("per second", fontsize=10)
    for ax in axes:
        ax.legend(fontsize=8)
    plt.tight_layout()
    return fig


def plot_ablations(abl: Mapping[tuple[str, float], Trace]):
    """Figs. 3.4-3.5 and Table 3.10's analogue: median training loss per iteration for each ablated value."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    for ax, kind, title in zip(axes, ("mu", "q", "anchor"), ("perturbation mu", "anchor period q", "anchor batch")):
        for (k, v), tr in abl.items():
            if k == kind:
                ax.plot(tr.steps, tr.losses().clamp(max=20).median(1).values.numpy(), label=f"{k} = {v:g}")
        ax.set(yscale="log", xlabel="iterations", ylabel="training loss (median of seeds)", title=title)
        ax.legend(fontsize=8)
    plt.tight_layout()
    return fig


def plot_finetuning(traces: Mapping[str, FinetuneTrace]):
    """Fine-tuning loss against queries and wall time, test accuracy against wall time; MeZO's best loss dotted."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    for name, tr in traces.items():
        axes[0].plot(np.maximum(tr.queries, 1), tr.train_loss, label=name)
        axes[1].plot(tr.seconds, tr.train_loss, label=name)
        axes[2].plot(tr.seconds, tr.test_acc, label=name)
    axes[0].set(xscale="log", xlabel="single-sample forward passes", ylabel="fine-tuning loss (full batch)")
    axes[1].set(xlabel="wall time of training steps (s)", ylabel="fine-tuning loss")
    axes[2].set(xlabel="wall time of training steps (s)", ylabel="test accuracy")
    if "MeZO" in traces:
        axes[1].axhline(traces["MeZO"].best_loss()[0], color="C0", ls=":", lw=1, label="MeZO's best loss")
    for ax in axes:
        ax.legend(fontsize=8)
    plt.tight_layout()
    return fig

"""The layer similarity matrix (eq. 3.13) and the recurrence regularizer built on it (eq. 3.19)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["layer_similarity", "mean_offdiagonal", "recurrence_regularizer", "weight_similarity"]


def _check_alpha(alpha: torch.Tensor) -> None:
    if not isinstance(alpha, torch.Tensor) or alpha.dim() != 2:
        raise ValueError(f"alpha must be a 2-d tensor (k templates x L layers); got "
                         f"{getattr(alpha, 'shape', type(alpha).__name__)}")


def layer_similarity(alpha: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """The layer similarity matrix (eq. 3.13): ``S[l, l'] = |<a_l, a_l'>| / (|a_l| |a_l'|)``, ``L x L``.

    ``alpha`` is ``k x L``; ``eps`` keeps the gradient finite at a zero column.
    """
    _check_alpha(alpha)
    unit = alpha / alpha.norm(dim=0, keepdim=True).clamp_min(eps)
    return (unit.T @ unit).abs()


def weight_similarity(weights: Sequence[torch.Tensor]) -> torch.Tensor:
    """The LSM of layers without sharing: absolute cosine of their flattened weights (Fig. 3.2, left)."""
    if len(weights) < 1:
        raise ValueError("weights must hold at least one tensor")
    return layer_similarity(torch.stack([w.detach().flatten() for w in weights], dim=1))


def mean_offdiagonal(s: torch.Tensor) -> float:
    """Mean of the off-diagonal entries of a square matrix (1.0 for a single layer)."""
    if s.dim() != 2 or s.shape[0] != s.shape[1]:
        raise ValueError(f"s must be a square matrix; got shape {tuple(s.shape)}")
    n = s.shape[0]
    if n == 1:
        return 1.0
    return float((s.sum() - s.diagonal().sum()) / (n * n - n))


def recurrence_regularizer(alpha: torch.Tensor, lam: float) -> torch.Tensor:
    """The term that eq. 3.19 adds to the loss: ``-lam * sum_{l,l'} S[l, l']``.

    The sign rewards similarity (the text says "penalize", the equation rewards); minimizing it drives every
    ``S`` entry to 1. The sum runs over all ``L^2`` entries, so its size grows with ``L``.
    """
    if lam < 0:
        raise ValueError(f"lam must be >= 0; got {lam!r}")
    return -lam * layer_similarity(alpha).sum()

"""Codebooks (Gautam 2024, section 5.2): how they start, the nearest-code lookup (5.1), and how they are used.

A codebook is a ``K x F`` tensor, one code per row (like ``nn.Embedding``); the thesis's ``C`` is its transpose
(``F x K``, one code per column).  Usage is read from ``n x K`` weights over the codes (one-hot rows for VQ,
convex weights for SCQ): :func:`perplexity` and :func:`codes_used` are the usage columns of Table 5.1.
"""

from __future__ import annotations

import torch

__all__ = ["INITS", "codes_used", "init_codebook", "nearest_code", "one_hot", "perplexity"]

INITS = ("uniform", "normal")
USAGES = ("hard", "soft")


def _check_positive_int(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int; got {value!r}")


def init_codebook(num_codes: int, dim: int, init: str = "uniform", generator: torch.Generator | None = None,
                  device: str | torch.device = "cpu") -> torch.Tensor:
    """A ``K x F`` codebook: ``"uniform"`` draws from U(-1/K, 1/K) (the common VQ-VAE default), ``"normal"``
    from N(0, 1).

    The thesis says only "randomly initialize"; the choice matters a great deal (the chapter shows both).
    """
    _check_positive_int("num_codes", num_codes)
    _check_positive_int("dim", dim)
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}; got {init!r}")
    if init == "uniform":
        c = (torch.rand(num_codes, dim, generator=generator) * 2.0 - 1.0) / num_codes
    else:
        c = torch.randn(num_codes, dim, generator=generator)
    return c.to(device)


def nearest_code(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Index of the nearest code for every row of ``z`` (5.1), via ``|z|^2 - 2 z.c + |c|^2`` (no gradient)."""
    if z.dim() != 2 or codebook.dim() != 2 or z.shape[1] != codebook.shape[1]:
        raise ValueError(f"z must be n x F and codebook K x F with the same F; got {tuple(z.shape)} and "
                         f"{tuple(codebook.shape)}")
    return _distances(z, codebook).argmin(dim=1)


def _distances(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """``n x K`` squared distances ``|z|^2 - 2 z.c + |c|^2`` (no gradient), in one buffer: negating the product
    and adding in place gives the same floats as three out-of-place terms (negation and the factor 2 are exact),
    without two more ``n x K`` allocations."""
    with torch.no_grad():
        d = (2.0 * z) @ codebook.T
        return d.neg_().add_((z * z).sum(1, keepdim=True)).add_((codebook * codebook).sum(1))


def one_hot(idx: torch.Tensor, num_codes: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``n x K`` one-hot rows of ``dtype`` for code indices ``idx`` (VQ's weights, the ``p~`` of (5.8)).

    Written straight into a float buffer: ``F.one_hot`` would build an int64 ``n x K`` tensor first, twice the
    memory of the result and, at the thesis's sizes, most of VQ's time on a CPU.
    """
    if idx.dim() != 1 or idx.dtype != torch.long:
        raise ValueError(f"idx must be a 1-d int64 tensor of code indices; got shape {tuple(idx.shape)}, "
                         f"dtype {idx.dtype}")
    _check_positive_int("num_codes", num_codes)
    out = torch.zeros(idx.shape[0], num_codes, dtype=dtype, device=idx.device)
    return out.scatter_(1, idx.unsqueeze(1), 1.0)


def _check_usage(weights: torch.Tensor, kind: str) -> None:
    if kind not in USAGES:
        raise ValueError(f"kind must be one of {USAGES}; got {kind!r}")
    if not isinstance(weights, torch.Tensor) or weights.dim() != 2:
        shape = tuple(weights.shape) if isinstance(weights, torch.Tensor) else type(weights).__name__
        raise ValueError(f"weights must be an n x K tensor; got {shape}")


def perplexity(weights: torch.Tensor, kind: str = "hard") -> torch.Tensor:
    """``exp(entropy)`` of the average code usage over the rows of ``weights`` (``n x K``); between 1 and
    ``K`` (Table 5.1's perplexity).

    ``"hard"`` counts each row's largest weight (its argmax code); ``"soft"`` averages the weights themselves.
    The two agree for VQ's one-hot rows; the thesis does not say which it uses for SCQ.
    """
    _check_usage(weights, kind)
    w = weights.detach()
    if kind == "hard":
        usage = torch.bincount(w.argmax(1), minlength=w.shape[1]).to(w.dtype) / w.shape[0]
    else:
        usage = w.clamp(min=0).sum(0)
        usage = usage / usage.sum()
    ent = -(usage * torch.log(usage.clamp(min=1e-30))).sum()
    return torch.exp(ent)


def codes_used(weights: torch.Tensor, kind: str = "hard", tol: float = 1e-6) -> int:
    """How many codes are ever used: as some row's argmax (``"hard"``) or with weight above ``tol``
    (``"soft"``)."""
    _check_usage(weights, kind)
    w = weights.detach()
    if kind == "hard":
        return int(torch.bincount(w.argmax(1), minlength=w.shape[1]).gt(0).sum())
    return int((w > tol).any(0).sum())

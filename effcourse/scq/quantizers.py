"""Quantization bottlenecks with one interface: VQ (+ dead-code replacement), SimVQ and soft convex
quantization (Gautam 2024, chapter 5).

Every quantizer is an ``nn.Module`` that maps encoder outputs ``z_e`` of shape ``N x F x H x W`` (``F`` = code
dimension) to a :class:`QuantizerOutput`: the tensor the decoder reads, the quantizer's terms of the VQ-VAE loss
(5.5), and the ``n x K`` weights over the ``K`` codes (``n = N*H*W``; one-hot rows for VQ (5.1), convex weights
for SCQ (5.8)), from which usage and perplexity are computed (:mod:`effcourse.scq.codebook`).

Layout: the codebook is stored as ``K x F`` (one code per row, like ``nn.Embedding``); the thesis's ``C`` is
its transpose (``F x K``, one code per column) and its ``P`` (``K x n``) is the transpose of our weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .codebook import _check_positive_int, init_codebook, nearest_code, one_hot
from .compiled import scq_quantize_compiled
from .solvers import PROJECTIONS, scq_exact, scq_quantize, scq_scalable

__all__ = ["KINDS", "QuantizerOutput", "SimVQ", "SoftConvexQuantizer", "VectorQuantizer", "make_quantizer",
           "vq_loss"]

SOLVERS = ("scalable", "exact")


@dataclass
class QuantizerOutput:
    """What a quantizer returns.

    ``z_q``: the decoder's input (``N x F x H x W``); ``loss``: the quantizer's part of (5.5) (a scalar with
    gradient); ``weights``: ``n x K`` code weights (detached); ``quant_error``: ``mean((z_e - z_q)^2)``
    (detached).
    """

    z_q: torch.Tensor
    loss: torch.Tensor
    weights: torch.Tensor
    quant_error: torch.Tensor


def _check_beta(beta: float) -> None:
    # (5.5) weights the codebook term by (1 - beta): beta outside [0, 1] makes one of the two terms negative.
    if not (0.0 <= float(beta) <= 1.0):
        raise ValueError(f"beta must be in [0, 1] (the (5.5) weighting uses 1 - beta); got {beta!r}")


def _flatten_latents(z: torch.Tensor, dim: int) -> torch.Tensor:
    """``N x F x H x W`` -> ``(N*H*W) x F`` (one row per latent position)."""
    if not isinstance(z, torch.Tensor) or z.dim() != 4:
        shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
        raise ValueError(f"z_e must be a 4-d tensor N x F x H x W; got {shape}")
    if z.shape[1] != dim:
        raise ValueError(f"z_e has {z.shape[1]} channels but the codebook dimension is {dim}")
    return z.permute(0, 2, 3, 1).reshape(-1, dim)


def _unflatten_latents(zf: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    n, _, h, w = like.shape
    return zf.reshape(n, h, w, -1).permute(0, 3, 1, 2)


def vq_loss(z_e: torch.Tensor, z_q: torch.Tensor, beta: float) -> torch.Tensor:
    """The quantizer terms of (5.5): ``(1-beta)|sg[z_e] - z_q|^2 + beta|z_e - sg[z_q]|^2`` (as means).

    The first term moves the codebook towards the encoder outputs, the second (commitment) the encoder towards
    its quantization.  The thesis weights them ``1-beta`` and ``beta``; van den Oord et al. use ``1`` and
    ``beta``.
    """
    return (1.0 - beta) * F.mse_loss(z_q, z_e.detach()) + beta * F.mse_loss(z_e, z_q.detach())


class VectorQuantizer(nn.Module):
    """VQ (5.1) with the straight-through estimator and the loss terms of (5.5); optional dead-code
    replacement.

    With ``dead_code_every > 0`` the layer counts, in training mode, how often each code is chosen; every
    ``dead_code_every`` forward passes the codes chosen zero times since the last check are replaced by
    encoder outputs drawn at random from the current batch (the "VQVAE + Rep" baseline of Table 5.1).
    """

    def __init__(self, num_codes: int, dim: int, beta: float = 0.25, init: str = "uniform",
                 dead_code_every: int = 0, generator: torch.Generator | None = None,
                 device: str | torch.device = "cpu"):
        super().__init__()
        _check_positive_int("num_codes", num_codes)
        _check_positive_int("dim", dim)
        _check_beta(beta)
        if not isinstance(dead_code_every, int) or dead_code_every < 0:
            raise ValueError(f"dead_code_every must be a non-negative int (0: never); "
                             f"got {dead_code_every!r}")
        self.num_codes, self.dim, self.beta = num_codes, dim, float(beta)
        self.dead_code_every = dead_code_every
        self._make_codebook(init, generator, device)
        self.register_buffer("counts", torch.zeros(num_codes, device=device))
        self.register_buffer("calls", torch.zeros((), dtype=torch.long, device=device))
        self.replaced = 0  # total codes replaced so far (a diagnostic)

    def _make_codebook(self, init: str, generator: torch.Generator | None, device) -> None:
        self.codebook = nn.Parameter(init_codebook(self.num_codes, self.dim, init, generator, device))

    def codes(self) -> torch.Tensor:
        """The ``K x F`` codebook the layer quantizes with."""
        return self.codebook

    def forward(self, z_e: torch.Tensor) -> QuantizerOutput:
        z = _flatten_latents(z_e, self.dim)
        c = self.codes()
        idx = nearest_code(z, c)
        zq = c[idx]
        loss = vq_loss(z, zq, self.beta)
        z_st = z + (zq - z).detach()  # straight-through: identity in the backward pass
        w = one_hot(idx, self.num_codes, z.dtype)
        if self.training and self.dead_code_every:
            self._replace_dead(z.detach(), w)
        err = F.mse_loss(zq.detach(), z.detach())
        return QuantizerOutput(_unflatten_latents(z_st, z_e), loss, w, err)

    @torch.no_grad()
    def _replace_dead(self, z: torch.Tensor, w: torch.Tensor) -> None:
        self.counts += w.sum(0)
        self.calls += 1
        if int(self.calls) % self.dead_code_every:
            return
        dead = self.counts == 0
        n_dead = int(dead.sum())
        if n_dead:
            pick = torch.randint(0, z.shape[0], (n_dead,), device=z.device)
            self.codebook.data[dead] = z[pick].to(self.codebook.dtype)
            self.replaced += n_dead
        self.counts.zero_()


class SimVQ(VectorQuantizer):
    """SimVQ (Zhu et al. 2024): VQ against ``W(C)``, a learned linear map of a frozen random codebook ``C``.

    Only ``W`` (``F x F``, with bias) is trained, so every gradient step moves all codes at once, also those
    that no encoder output chose: the remedy SimVQ proposes for codebook collapse.  The basis is drawn from
    N(0, 1/F).
    """

    def __init__(self, num_codes: int, dim: int, beta: float = 0.25, generator: torch.Generator | None = None,
                 device: str | torch.device = "cpu"):
        super().__init__(num_codes, dim, beta, "normal", 0, generator, device)

    def _make_codebook(self, init: str, generator: torch.Generator | None, device) -> None:
        basis = init_codebook(self.num_codes, self.dim, "normal", generator, device) / math.sqrt(self.dim)
        self.register_buffer("basis", basis)
        self.proj = nn.Linear(self.dim, self.dim, device=device)
        with torch.no_grad():  # start at the identity map, so SimVQ starts as VQ with the frozen basis
            self.proj.weight.copy_(torch.eye(self.dim, device=device))
            self.proj.bias.zero_()

    def codes(self) -> torch.Tensor:
        return self.proj(self.basis)


class SoftConvexQuantizer(VectorQuantizer):
    """Soft convex quantization: ``z_q = C p*`` with ``p*`` the convex weights of (5.8) (Algorithms 8 and 9).

    ``solver="scalable"`` is Alg. 9 (ridge solve, then a simplex projection: ``projection="exact"`` (default
    here) or the thesis's ``"alternating"`` with ``steps`` rounds); ``solver="exact"`` is Alg. 8
    (cvxpylayers).  The decoder reads ``z_q`` itself (no straight-through estimator); the loss terms are
    (5.5)'s with this ``z_q``.

    ``compiled`` picks how the scalable exact path runs: ``False``, eager (:func:`~.solvers.scq_quantize`, bit for
    bit repeatable: the book's runs); ``True``, fused by ``torch.compile``
    (:func:`~.compiled.scq_quantize_compiled`: the same maths, other rounding, compiles on its first call);
    ``None`` (default), compiled on an accelerator when torch's deterministic algorithms are off (``full`` scale,
    :mod:`effcourse.core.numerics`) and eager otherwise.
    """

    def __init__(self, num_codes: int, dim: int, beta: float = 0.25, lam: float = 0.1,
                 solver: str = "scalable", projection: str = "exact", steps: int = 20, init: str = "uniform",
                 generator: torch.Generator | None = None, device: str | torch.device = "cpu",
                 compiled: bool | None = None):
        super().__init__(num_codes, dim, beta, init, 0, generator, device)
        if not (isinstance(lam, (int, float)) and lam > 0 and math.isfinite(lam)):
            raise ValueError(f"lam must be a positive finite number (the lambda of (5.8)); got {lam!r}")
        if solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}; got {solver!r}")
        if projection not in PROJECTIONS:
            raise ValueError(f"projection must be one of {PROJECTIONS}; got {projection!r}")
        if not isinstance(steps, int) or steps < 0:
            raise ValueError(f"steps must be a non-negative int; got {steps!r}")
        if compiled is not None and not isinstance(compiled, bool):
            raise TypeError(f"compiled must be True, False or None (compiled on an accelerator at full scale); "
                            f"got {compiled!r}")
        self.lam, self.solver, self.projection, self.steps = float(lam), solver, projection, steps
        self.compiled = compiled

    def _use_compiled(self, z: torch.Tensor) -> bool:
        if self.compiled is not None:
            return self.compiled
        return z.device.type != "cpu" and not torch.are_deterministic_algorithms_enabled()

    def forward(self, z_e: torch.Tensor) -> QuantizerOutput:
        z = _flatten_latents(z_e, self.dim)
        c = self.codes()
        if self.solver == "scalable" and self.projection == "exact":
            # Alg. 9 and z_q = p C as one autograd node: the fast path
            zq, p = (scq_quantize_compiled if self._use_compiled(z) else scq_quantize)(z, c, self.lam)
        else:
            p, _ = (scq_exact(z, c, self.lam) if self.solver == "exact"
                    else scq_scalable(z, c, self.lam, self.projection, self.steps))
            zq = p @ c
        loss = vq_loss(z, zq, self.beta)
        err = F.mse_loss(zq.detach(), z.detach())
        return QuantizerOutput(_unflatten_latents(zq, z_e), loss, p.detach(), err)


KINDS = ("vq", "vq_rep", "scq", "scq_alg9", "scq_exact", "simvq")


def make_quantizer(kind: str, num_codes: int, dim: int, beta: float = 0.25, lam: float = 0.1, steps: int = 20,
                   init: str = "uniform", dead_code_every: int = 100,
                   device: str | torch.device = "cpu", compiled: bool | None = None) -> VectorQuantizer:
    """A quantizer by name: ``"vq"``, ``"vq_rep"`` (dead-code replacement every ``dead_code_every`` steps),
    ``"scq"`` (Alg. 9 with the exact simplex projection), ``"scq_alg9"`` (Alg. 9 as printed: ``steps``
    alternating projections), ``"scq_exact"`` (Alg. 8, cvxpylayers) or ``"simvq"``.  Codebooks are drawn from
    torch's global RNG.  ``compiled``: ``"scq"``'s execution (see :class:`SoftConvexQuantizer`)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")
    if compiled is not None and kind != "scq":
        raise ValueError(f"compiled applies to kind 'scq' only (leave it None); got compiled={compiled!r} for "
                         f"kind {kind!r}")
    if kind in ("vq", "vq_rep"):
        return VectorQuantizer(num_codes, dim, beta, init, dead_code_every if kind == "vq_rep" else 0,
                               device=device)
    if kind == "simvq":
        return SimVQ(num_codes, dim, beta, device=device)
    solver = "exact" if kind == "scq_exact" else "scalable"
    projection = "alternating" if kind == "scq_alg9" else "exact"
    return SoftConvexQuantizer(num_codes, dim, beta, lam, solver, projection, steps, init, device=device,
                               compiled=compiled)

"""Quantization bottlenecks with one interface: VQ (+ dead-code replacement), SimVQ and soft convex
quantization.

Gautam (2024), chapter 5.  Every quantizer is an ``nn.Module`` that maps encoder outputs ``z_e`` of shape ``N
x F x H x W`` (``F`` = code dimension) to a :class:`QuantizerOutput`: the tensor the decoder reads, the
quantizer's terms of the VQ-VAE loss (5.5), and the ``n x K`` weights over the ``K`` codes (``n = N*H*W``;
one-hot rows for VQ, convex weights for SCQ), from which usage and perplexity are computed.

Layout: the codebook is stored as ``K x F`` (one code per row, like ``nn.Embedding``); the thesis's ``C`` is
its transpose (``F x K``, one code per column) and its ``P`` (``K x n``) is the transpose of our weights.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .simplex import project_simplex, project_simplex_alternating

__all__ = [
    "QuantizerOutput",
    "SimVQ",
    "SoftConvexQuantizer",
    "VectorQuantizer",
    "codes_used",
    "init_codebook",
    "make_quantizer",
    "nearest_code",
    "perplexity",
    "scq_exact",
    "scq_objective",
    "scq_projected_gradient",
    "scq_ridge",
    "scq_scalable",
    "vq_loss",
]

INITS = ("uniform", "normal")
SOLVERS = ("scalable", "exact")
PROJECTIONS = ("exact", "alternating")


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


# ------------------------------------------------------------------------------------------------ helpers
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


def _check_positive_int(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int; got {value!r}")


def _check_beta(beta: float) -> None:
    # (5.5) weights the codebook term by (1 - beta): beta outside [0, 1] makes one of the two terms negative.
    if not (0.0 <= float(beta) <= 1.0):
        raise ValueError(f"beta must be in [0, 1] (the (5.5) weighting uses 1 - beta); got {beta!r}")


def flatten_latents(z: torch.Tensor, dim: int) -> torch.Tensor:
    """``N x F x H x W`` -> ``(N*H*W) x F`` (one row per latent position)."""
    if not isinstance(z, torch.Tensor) or z.dim() != 4:
        shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
        raise ValueError(f"z_e must be a 4-d tensor N x F x H x W; got {shape}")
    if z.shape[1] != dim:
        raise ValueError(f"z_e has {z.shape[1]} channels but the codebook dimension is {dim}")
    return z.permute(0, 2, 3, 1).reshape(-1, dim)


def unflatten_latents(zf: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    n, _, h, w = like.shape
    return zf.reshape(n, h, w, -1).permute(0, 3, 1, 2)


def nearest_code(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Index of the nearest code for every row of ``z`` (5.1), via ``|z|^2 - 2 z.c + |c|^2``."""
    d = (z * z).sum(1, keepdim=True) - 2.0 * z @ codebook.T + (codebook * codebook).sum(1)
    return d.argmin(dim=1)


def vq_loss(z_e: torch.Tensor, z_q: torch.Tensor, beta: float) -> torch.Tensor:
    """The quantizer terms of (5.5): ``(1-beta)|sg[z_e] - z_q|^2 + beta|z_e - sg[z_q]|^2`` (as means).

    The first term moves the codebook towards the encoder outputs, the second (commitment) the encoder towards
    its quantization.  The thesis weights them ``1-beta`` and ``beta``; van den Oord et al. use ``1`` and
    ``beta``.
    """
    return (1.0 - beta) * F.mse_loss(z_q, z_e.detach()) + beta * F.mse_loss(z_e, z_q.detach())


def perplexity(weights: torch.Tensor, kind: str = "hard") -> torch.Tensor:
    """``exp(entropy)`` of the average code usage over the rows of ``weights`` (``n x K``); between 1 and
    ``K``.

    ``"hard"`` counts each row's largest weight (its argmax code); ``"soft"`` averages the weights themselves.
    The two agree for VQ's one-hot rows; the thesis does not say which it uses for SCQ.
    """
    if kind not in ("hard", "soft"):
        raise ValueError(f"kind must be 'hard' or 'soft'; got {kind!r}")
    if weights.dim() != 2:
        raise ValueError(f"weights must be n x K; got shape {tuple(weights.shape)}")
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
    if kind not in ("hard", "soft"):
        raise ValueError(f"kind must be 'hard' or 'soft'; got {kind!r}")
    w = weights.detach()
    if kind == "hard":
        return int(torch.bincount(w.argmax(1), minlength=w.shape[1]).gt(0).sum())
    return int((w > tol).any(0).sum())


# ------------------------------------------------------------------------------------------------ SCQ solvers
def scq_objective(z: torch.Tensor, codebook: torch.Tensor, weights: torch.Tensor, onehot: torch.Tensor,
                  lam: float) -> torch.Tensor:
    """Per row, the objective of (5.8): ``|z - C p|^2 + lam |p - p~|^2`` (rows of ``z``, ``weights``,
    ``onehot``)."""
    return ((z - weights @ codebook) ** 2).sum(1) + lam * ((weights - onehot) ** 2).sum(1)


def scq_ridge(z: torch.Tensor, codebook: torch.Tensor, onehot: torch.Tensor, lam: float) -> torch.Tensor:
    """Alg. 9 step 3: the unconstrained minimizer of (5.8), ``(C^T C + lam I)^{-1} (C^T z + lam p~)``, for
    every row.

    One ``K x K`` system with ``n`` right-hand sides (the rows share the codebook), solved by
    ``torch.linalg.solve``.
    """
    k = codebook.shape[0]
    a = codebook @ codebook.T + lam * torch.eye(k, device=codebook.device, dtype=codebook.dtype)
    b = codebook @ z.T + lam * onehot.T  # K x n
    return torch.linalg.solve(a, b).T


def scq_scalable(z: torch.Tensor, codebook: torch.Tensor, lam: float, projection: str = "exact",
                 steps: int = 20) -> tuple[torch.Tensor, torch.Tensor]:
    """Algorithm 9 on rows ``z`` (``n x F``) and a ``K x F`` codebook: returns ``(weights n x K, one-hot p~ n
    x K)``.

    ``projection="alternating"`` is the thesis's ``steps`` rounds of orthant/hyperplane projection;
    ``projection="exact"`` replaces them with the exact Euclidean simplex projection (``steps`` is then
    unused). Gradients flow by autograd through the solve and the projection (the thesis does not state Alg.
    9's backward).
    """
    _check_scq_args(z, codebook, lam, projection)
    k = codebook.shape[0]
    with torch.no_grad():
        idx = nearest_code(z.detach(), codebook.detach())
    onehot = F.one_hot(idx, k).to(z.dtype)
    # scq_ridge's solution rewritten for speed: with M = (C^T C + lam I)^{-1} (symmetric),
    # P = M C^T z + lam M p~, and M p~ is just the column (= row) idx of M: an n x K x F product and a gather
    # instead of a K x K solve against n right-hand sides.
    eye = torch.eye(k, device=codebook.device, dtype=codebook.dtype)
    m_inv = torch.linalg.solve(codebook @ codebook.T + lam * eye, eye)
    p = z @ (m_inv @ codebook).T + lam * m_inv[idx]
    p = project_simplex(p) if projection == "exact" else project_simplex_alternating(p, steps)
    return p, onehot


def _check_scq_args(z: torch.Tensor, codebook: torch.Tensor, lam: float, projection: str = "exact") -> None:
    if z.dim() != 2 or codebook.dim() != 2 or z.shape[1] != codebook.shape[1]:
        raise ValueError(f"z must be n x F and codebook K x F with the same F; got {tuple(z.shape)} and "
                         f"{tuple(codebook.shape)}")
    if not (isinstance(lam, (int, float)) and lam > 0 and math.isfinite(lam)):
        raise ValueError(f"lam must be a positive finite number (the lambda of (5.8)); got {lam!r}")
    if projection not in PROJECTIONS:
        raise ValueError(f"projection must be one of {PROJECTIONS}; got {projection!r}")


def scq_projected_gradient(z: torch.Tensor, codebook: torch.Tensor, lam: float, iters: int = 500
                           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Solve (5.8) to high accuracy by accelerated projected gradient (FISTA with the exact simplex projection).

    A batched, pure-torch alternative to the interior-point solve of Alg. 8: the objective is smooth with Lipschitz
    gradient ``L = 2 (lambda_max(C^T C) + lam)``, so ``iters`` steps of size ``1/L`` from ``p~`` converge to the
    unique minimizer (``lam > 0`` makes it strongly convex).  Returns ``(weights n x K, one-hot p~ n x K)``; meant
    for evaluation and figures (wrap in ``torch.no_grad()``), not differentiated.
    """
    _check_scq_args(z, codebook, lam)
    _check_positive_int("iters", iters)
    idx = nearest_code(z, codebook)
    onehot = F.one_hot(idx, codebook.shape[0]).to(z.dtype)
    gram = codebook @ codebook.T
    lip = 2.0 * (torch.linalg.eigvalsh(gram).max() + lam)
    czt = z @ codebook.T  # n x K, the C^T z term of the gradient
    p = y = onehot
    t = 1.0
    for _ in range(iters):  # iterations, each batched over all rows
        grad = 2.0 * (y @ gram - czt) + 2.0 * lam * (y - onehot)
        p_next = project_simplex(y - grad / lip)
        t_next = (1.0 + math.sqrt(1.0 + 4.0 * t * t)) / 2.0
        y = p_next + ((t - 1.0) / t_next) * (p_next - p)
        p, t = p_next, t_next
    return p, onehot


@functools.lru_cache(maxsize=16)
def _exact_layer(num_codes: int, dim: int, lam: float):
    import cvxpy as cp
    from cvxpylayers.torch import CvxpyLayer

    p = cp.Variable(num_codes)
    c = cp.Parameter((dim, num_codes))   # the thesis's C (F x K): codes in columns
    z = cp.Parameter(dim)
    pt = cp.Parameter(num_codes)
    # lam is a constant, not a Parameter: lam * sum_squares(p - pt) with lam a Parameter is not DPP.
    obj = cp.Minimize(cp.sum_squares(z - c @ p) + lam * cp.sum_squares(p - pt))
    prob = cp.Problem(obj, [p >= 0, cp.sum(p) == 1])
    assert prob.is_dpp()
    return CvxpyLayer(prob, parameters=[c, z, pt], variables=[p])


def scq_exact(z: torch.Tensor, codebook: torch.Tensor, lam: float,
              solver_args: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Algorithm 8: solve (5.8) exactly with cvxpylayers; returns ``(weights n x K, one-hot p~ n x K)``.

    (5.8) separates over the ``n`` columns of ``P`` (rows here), so it is one ``K``-variable QP per row,
    batched by cvxpylayers; gradients w.r.t. ``z`` and the codebook come from differentiating its KKT
    conditions.  Solved in float64 on the CPU (the default conic solver); practical for a few hundred rows,
    not for training.
    """
    _check_scq_args(z, codebook, lam)
    k, f = codebook.shape
    with torch.no_grad():
        idx = nearest_code(z.detach(), codebook.detach())
    onehot = F.one_hot(idx, k).to(z.dtype)
    layer = _exact_layer(k, f, float(lam))
    args = {"eps": 1e-10} if solver_args is None else solver_args
    dev, dt = z.device, z.dtype
    with warnings.catch_warnings():  # diffcp's NumPy-2 deprecation notices, one per problem in the batch
        warnings.simplefilter("ignore", DeprecationWarning)
        (p,) = layer(codebook.T.double().cpu(), z.double().cpu(), onehot.double().cpu(), solver_args=args)
    return p.to(device=dev, dtype=dt), onehot


# ------------------------------------------------------------------------------------------------ layers
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
        z = flatten_latents(z_e, self.dim)
        c = self.codes()
        idx = nearest_code(z.detach(), c.detach())
        zq = c[idx]
        loss = vq_loss(z, zq, self.beta)
        z_st = z + (zq - z).detach()  # straight-through: identity in the backward pass
        w = F.one_hot(idx, self.num_codes).to(z.dtype)
        if self.training and self.dead_code_every:
            self._replace_dead(z.detach(), w)
        err = F.mse_loss(zq.detach(), z.detach())
        return QuantizerOutput(unflatten_latents(z_st, z_e), loss, w, err)

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
    """

    def __init__(self, num_codes: int, dim: int, beta: float = 0.25, lam: float = 0.1,
                 solver: str = "scalable", projection: str = "exact", steps: int = 20, init: str = "uniform",
                 generator: torch.Generator | None = None, device: str | torch.device = "cpu"):
        super().__init__(num_codes, dim, beta, init, 0, generator, device)
        if not (isinstance(lam, (int, float)) and lam > 0 and math.isfinite(lam)):
            raise ValueError(f"lam must be a positive finite number (the lambda of (5.8)); got {lam!r}")
        if solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}; got {solver!r}")
        if projection not in PROJECTIONS:
            raise ValueError(f"projection must be one of {PROJECTIONS}; got {projection!r}")
        if not isinstance(steps, int) or steps < 0:
            raise ValueError(f"steps must be a non-negative int; got {steps!r}")
        self.lam, self.solver, self.projection, self.steps = float(lam), solver, projection, steps

    def forward(self, z_e: torch.Tensor) -> QuantizerOutput:
        z = flatten_latents(z_e, self.dim)
        c = self.codes()
        if self.solver == "exact":
            p, _ = scq_exact(z, c, self.lam)
        else:
            p, _ = scq_scalable(z, c, self.lam, self.projection, self.steps)
        zq = p @ c
        loss = vq_loss(z, zq, self.beta)
        err = F.mse_loss(zq.detach(), z.detach())
        return QuantizerOutput(unflatten_latents(zq, z_e), loss, p.detach(), err)


KINDS = ("vq", "vq_rep", "scq", "scq_alg9", "scq_exact", "simvq")


def make_quantizer(kind: str, num_codes: int, dim: int, beta: float = 0.25, lam: float = 0.1, steps: int = 20,
                   init: str = "uniform", dead_code_every: int = 100,
                   device: str | torch.device = "cpu") -> VectorQuantizer:
    """A quantizer by name: ``"vq"``, ``"vq_rep"`` (dead-code replacement every ``dead_code_every`` steps),
    ``"scq"`` (Alg. 9 with the exact simplex projection), ``"scq_alg9"`` (Alg. 9 as printed: ``steps``
    alternating projections), ``"scq_exact"`` (Alg. 8, cvxpylayers) or ``"simvq"``.  Codebooks are drawn from
    torch's global RNG."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")
    if kind in ("vq", "vq_rep"):
        return VectorQuantizer(num_codes, dim, beta, init, dead_code_every if kind == "vq_rep" else 0,
                               device=device)
    if kind == "simvq":
        return SimVQ(num_codes, dim, beta, device=device)
    solver = "exact" if kind == "scq_exact" else "scalable"
    projection = "alternating" if kind == "scq_alg9" else "exact"
    return SoftConvexQuantizer(num_codes, dim, beta, lam, solver, projection, steps, init, device=device)

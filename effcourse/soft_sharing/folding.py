"""From soft sharing back to a discrete architecture: Proposition 3.1, rounding, and folding (Sec. 3.2.2).

:func:`group_layers` reads groups off the LSM (eq. 3.13); :func:`least_squares_rounding` is the thesis's rounding
(steps 1-4 after Prop. 3.1, eqs. 3.14-3.18), exact only when grouped columns are identical; :func:`scaled_rounding`
keeps a per-layer signed scale so that columns that are parallel (any sign, any length) fold exactly;
:func:`fold_bank` applies either to a bank and its layers, :func:`fold_network` to every bank of a model.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .similarity import _check_alpha, layer_similarity
from .templates import TemplateBank, _check_positive_int, _shared_layers, sharing_groups, stack_coefficients

__all__ = [
    "fold_bank",
    "fold_network",
    "group_layers",
    "least_squares_rounding",
    "program_order",
    "recalibrate_batchnorm",
    "reparameterize",
    "scaled_rounding",
]


def reparameterize(alpha: torch.Tensor, templates: torch.Tensor, b: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Proposition 3.1 (eq. 3.14): ``T' = B T`` and ``alpha' = (B^T)^{-1} alpha`` keep ``alpha^T T`` unchanged.

    ``alpha`` is ``k x L``, ``templates`` is ``k x d`` (or ``k x *shape``), ``b`` is an invertible ``k x k``.
    """
    _check_alpha(alpha)
    k = alpha.shape[0]
    if b.shape != (k, k):
        raise ValueError(f"b must be {k} x {k} to match alpha's {k} templates; got {tuple(b.shape)}")
    if templates.shape[0] != k:
        raise ValueError(f"templates must have {k} rows (one per template); got {tuple(templates.shape)}")
    t_new = torch.tensordot(b, templates, dims=1)
    a_new = torch.linalg.solve(b.T, alpha)  # (B^T)^{-1} alpha without forming the inverse
    return a_new, t_new


def _check_groups(groups: torch.Tensor, num_layers: int) -> tuple[torch.Tensor, int]:
    groups = torch.as_tensor(groups, dtype=torch.long)
    if groups.dim() != 1 or groups.numel() != num_layers:
        raise ValueError(f"groups must be a 1-d tensor with one group id per layer ({num_layers}); "
                         f"got shape {tuple(groups.shape)}")
    n = int(groups.max()) + 1
    if int(groups.min()) < 0 or torch.unique(groups).numel() != n:
        raise ValueError(f"groups must use every id 0..n-1 with no gaps; got {groups.tolist()}")
    return groups, n


def group_layers(s: torch.Tensor, threshold: float) -> torch.Tensor:
    """Group layers whose similarity to a group's first member reaches ``threshold`` (LSM step 1).

    Layers are scanned in order; a layer joins the earliest group whose *first* layer has ``S >= threshold``,
    else it opens a new group. Comparing with the first member (not any member) stops chains of pairwise
    similar layers from merging dissimilar ones. Returns one group id per layer, numbered by first appearance.
    """
    if s.dim() != 2 or s.shape[0] != s.shape[1]:
        raise ValueError(f"s must be a square LSM; got shape {tuple(s.shape)}")
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1]; got {threshold!r}")
    heads: list[int] = []
    out = []
    for l in range(s.shape[0]):  # sequential by nature: a layer's group depends on the groups before it
        hit = next((g for g, h in enumerate(heads) if float(s[l, h]) >= threshold - 1e-9), None)
        if hit is None:
            heads.append(l)
            hit = len(heads) - 1
        out.append(hit)
    return torch.tensor(out, dtype=torch.long)


def program_order(groups: torch.Tensor) -> list[int]:
    """The folded network as a program: which unique layer (1-based) each step executes."""
    return [int(g) + 1 for g in torch.as_tensor(groups)]


def least_squares_rounding(alpha: torch.Tensor, groups: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The thesis's rounding (steps 2-3 after Prop. 3.1): one-hot ``alpha'`` and ``B^T = a a'^T (a' a'^T)^{-1}``.

    Returns ``(alpha_onehot, B)`` with ``alpha_onehot`` ``n x L`` and ``B`` ``n x k``; new templates are ``B T``.
    Row ``g`` of ``B`` is the *mean* coefficient vector of group ``g``: exact only when a group's columns are
    identical. Parallel columns of different length or sign are averaged (opposite signs cancel).
    """
    _check_alpha(alpha)
    groups, n = _check_groups(groups, alpha.shape[1])
    onehot = F.one_hot(groups.to(alpha.device), n).T.to(alpha.dtype)  # n x L
    bt = alpha @ onehot.T @ torch.linalg.inv(onehot @ onehot.T)
    return onehot, bt.T


def scaled_rounding(alpha: torch.Tensor, groups: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sign- and scale-aware rounding: ``alpha[:, l] ~= scale[l] * U[:, g_l]`` with unit columns ``U``.

    ``U[:, g]`` is the leading left singular vector of group ``g``'s columns (the best rank-one fit), and
    ``scale[l] = <alpha[:, l], U[:, g_l]>`` keeps each layer's length *and sign*. Parallel columns fold exactly.
    Returns ``(U, scale)``: ``k x n`` and ``L``; the folded templates are ``U^T T``.
    """
    _check_alpha(alpha)
    groups, n = _check_groups(groups, alpha.shape[1])
    groups = groups.to(alpha.device)
    onehot = F.one_hot(groups, n).to(alpha.dtype)  # L x n
    # Scatter matrix of each group, n x k x k, in one batched product; its top eigenvector is U[:, g].
    members = alpha.T.unsqueeze(0) * onehot.T.unsqueeze(-1)  # n x L x k (zeros outside the group)
    scatter = members.transpose(1, 2) @ members
    _, vecs = torch.linalg.eigh(scatter)
    u = vecs[..., -1]  # n x k, unit norm
    # Fix the arbitrary eigenvector sign so the group's first layer gets a positive scale.
    first = torch.stack([alpha[:, int(torch.nonzero(groups == g)[0])] for g in range(n)])  # n x k
    sign = torch.sign((u * first).sum(1))
    u = u * torch.where(sign == 0, torch.ones_like(sign), sign).unsqueeze(1)
    scale = (alpha * u.T[:, groups]).sum(0)
    return u.T, scale


@torch.no_grad()
def fold_bank(layers: Sequence[nn.Module], groups: torch.Tensor, mode: str = "scaled") -> TemplateBank:
    """Fold one sharing group in place: the bank gets ``n`` unique templates, layer ``l`` runs template ``g_l``.

    ``mode="scaled"`` (ours): templates ``U^T T`` and coefficients ``scale[l] * e_{g_l}``; a layer keeps its sign
    and length. ``mode="naive"`` (the thesis's least-squares rounding): templates ``B T`` and coefficients
    ``e_{g_l}``. Either way each layer is afterwards a plain (scaled) call of a unique layer. Returns the new bank.
    """
    if mode not in ("scaled", "naive"):
        raise ValueError(f"mode must be 'scaled' or 'naive'; got {mode!r}")
    layers = _shared_layers(layers)
    bank = layers[0].bank
    alpha = stack_coefficients(layers).detach()
    groups, n = _check_groups(groups, len(layers))
    if mode == "scaled":
        u, scale = scaled_rounding(alpha, groups)
        mix, coef = u.T, scale
    else:
        _, mix = least_squares_rounding(alpha, groups)
        coef = torch.ones(len(layers), dtype=alpha.dtype, device=alpha.device)
    new = TemplateBank(n, bank.shape, device=bank.templates.device, dtype=bank.templates.dtype)
    new.templates.copy_(torch.tensordot(mix, bank.templates, dims=1))
    onehot = F.one_hot(groups.to(alpha.device), n).to(alpha.dtype)
    for layer, row in zip(layers, onehot * coef.unsqueeze(1)):
        object.__setattr__(layer, "bank", new)
        layer.coefficients = nn.Parameter(row.clone())
    return new


def fold_network(model: nn.Module, threshold: float, mode: str = "scaled",
                 calibrate: torch.Tensor | None = None) -> tuple[nn.Module, list[torch.Tensor]]:
    """Fold a copy of ``model``: every sharing group is grouped by its LSM at ``threshold`` and folded.

    ``calibrate`` (training inputs) re-estimates the copy's BatchNorm statistics afterwards. Returns the folded
    copy and each group's layer-to-unique-layer assignment.
    """
    folded = copy.deepcopy(model)
    assignments = []
    for layers in sharing_groups(folded):
        groups = group_layers(layer_similarity(stack_coefficients(layers).detach()), threshold)
        fold_bank(layers, groups, mode)
        assignments.append(groups)
    if not assignments:
        raise ValueError("model has no soft-shared layers to fold")
    if calibrate is not None:
        recalibrate_batchnorm(folded, calibrate)
    return folded, assignments


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> nn.Module:
    """Re-estimate every BatchNorm's running statistics on ``x`` (a cumulative average, no parameter change).

    Folding changes the layers' outputs slightly; statistics collected before folding would then be stale.
    """
    _check_positive_int("batch_size", batch_size)
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, m.training) for m in bns]
    was = model.training
    model.train()
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch weighs the same
    for start in range(0, x.shape[0], batch_size):
        model(x[start:start + batch_size])
    for m, (mom, _) in zip(bns, saved):
        m.momentum = mom
    model.train(was)
    return model

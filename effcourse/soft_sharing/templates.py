"""Soft parameter sharing (Savarese 2025, ch. 3): template banks, the layer similarity matrix, and folding.

A :class:`TemplateBank` holds ``k`` weight templates ``T^(1..k)``; every :class:`SConv2d` / :class:`SLinear` that
draws on it owns only a coefficient vector ``alpha^(l)`` and uses ``W^(l) = sum_i alpha_i^(l) T^(i)`` (eq. 3.11).
Coefficient matrices follow the thesis's convention: ``alpha`` is ``k x L``, column ``l`` is layer ``l``.

Folding: :func:`group_layers` reads groups off the LSM (eq. 3.13); :func:`least_squares_rounding` is the thesis's
rounding (steps 1-4 after Prop. 3.1), exact only when grouped columns are identical; :func:`scaled_rounding` keeps a
per-layer signed scale so that columns that are parallel (any sign, any length) fold exactly; :func:`fold_bank`
applies either to a bank and its layers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "SConv2d",
    "SLinear",
    "TemplateBank",
    "coefficient_param_groups",
    "fold_bank",
    "fold_network",
    "group_layers",
    "layer_similarity",
    "least_squares_rounding",
    "mean_offdiagonal",
    "orthogonal_coefficients_",
    "program_order",
    "recalibrate_batchnorm",
    "recurrence_regularizer",
    "reparameterize",
    "scaled_rounding",
    "sharing_groups",
    "stack_coefficients",
    "weight_similarity",
]


def _check_positive_int(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int; got {value!r}")


class TemplateBank(nn.Module):
    """``k`` weight templates of one shape, stored as one ``k x *shape`` parameter (Kaiming-normal init).

    The init matches a plain layer of that shape (fan-out, ReLU gain) so that an orthonormal coefficient vector
    yields an effective weight with the usual Kaiming scale.
    """

    def __init__(self, k: int, shape: Sequence[int], device: str | torch.device | None = None,
                 dtype: torch.dtype | None = None):
        super().__init__()
        _check_positive_int("k", k)
        shape = tuple(shape)
        if len(shape) < 2 or any((not isinstance(s, int)) or s < 1 for s in shape):
            raise ValueError(f"shape must list at least two positive ints (out, in, ...); got {shape!r}")
        self.k, self.shape = k, shape
        self.templates = nn.Parameter(torch.empty(k, *shape, device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.templates.device.type == "meta":
            return
        for t in self.templates.data:  # one Kaiming draw per template: each has a layer's fan
            nn.init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu")

    def combine(self, coefficients: torch.Tensor) -> torch.Tensor:
        """``sum_i c_i T^(i)`` (eq. 3.11) as one contraction over the template axis."""
        return torch.tensordot(coefficients, self.templates, dims=1)

    def extra_repr(self) -> str:
        return f"k={self.k}, shape={self.shape}"


class _Shared(nn.Module):
    """A layer whose weight is a mixture of a bank's templates; the bank is shared, not owned."""

    def __init__(self, bank: TemplateBank):
        super().__init__()
        if not isinstance(bank, TemplateBank):
            raise TypeError(f"bank must be a TemplateBank; got {type(bank).__name__}")
        # Stored outside _modules so that each layer does not re-register (and re-count) the shared templates.
        object.__setattr__(self, "bank", bank)
        self.coefficients = nn.Parameter(torch.zeros(bank.k, device=bank.templates.device,
                                                     dtype=bank.templates.dtype))
        if bank.templates.device.type != "meta":
            with torch.no_grad():  # a fresh layer starts as a random unit mixture; banks re-init jointly
                self.coefficients.normal_().div_(self.coefficients.norm().clamp_min(1e-12))

    @property
    def weight(self) -> torch.Tensor:
        """The effective weight ``W^(l)`` (eq. 3.11)."""
        return self.bank.combine(self.coefficients)


class SConv2d(_Shared):
    """A bias-free convolution with weight ``sum_i alpha_i T^(i)`` (eq. 3.11): one weighted sum, one conv."""

    def __init__(self, bank: TemplateBank, stride: int = 1, padding: int = 0):
        super().__init__(bank)
        if len(bank.shape) != 4:
            raise ValueError(f"SConv2d needs a bank of 4-d templates (out, in, kh, kw); got shape {bank.shape}")
        self.stride, self.padding = stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, None, self.stride, self.padding)

    def extra_repr(self) -> str:
        return f"bank={self.bank.shape}, k={self.bank.k}, stride={self.stride}, padding={self.padding}"


class SLinear(_Shared):
    """A bias-free linear map with weight ``sum_i alpha_i T^(i)`` (eq. 3.11)."""

    def __init__(self, bank: TemplateBank):
        super().__init__(bank)
        if len(bank.shape) != 2:
            raise ValueError(f"SLinear needs a bank of 2-d templates (out, in); got shape {bank.shape}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight)


def _shared_layers(layers: Iterable[nn.Module]) -> list[_Shared]:
    out = list(layers)
    if not out or not all(isinstance(m, _Shared) for m in out):
        raise ValueError("layers must be a non-empty sequence of SConv2d / SLinear")
    if any(m.bank is not out[0].bank for m in out):
        raise ValueError("layers must all draw on the same TemplateBank")
    return out


@torch.no_grad()
def orthogonal_coefficients_(layers: Sequence[nn.Module]) -> torch.Tensor:
    """Initialize the coefficients of one sharing group as the rows of an orthogonal ``L x k`` matrix.

    With ``k >= L`` the initial LSM is the identity: every layer starts functionally distinct. Returns ``alpha``.
    """
    layers = _shared_layers(layers)
    k = layers[0].bank.k
    m = torch.empty(len(layers), k)
    nn.init.orthogonal_(m)
    for row, layer in zip(m, layers):
        layer.coefficients.copy_(row.to(layer.coefficients))
    return stack_coefficients(layers)


def sharing_groups(model: nn.Module) -> list[list[nn.Module]]:
    """The soft-shared layers of ``model`` grouped by the bank they draw on, in module order."""
    groups: dict[int, list[nn.Module]] = {}
    for m in model.modules():
        if isinstance(m, _Shared):
            groups.setdefault(id(m.bank), []).append(m)
    return list(groups.values())


def stack_coefficients(layers: Sequence[nn.Module]) -> torch.Tensor:
    """The ``k x L`` coefficient matrix of one group (column ``l`` = ``alpha^(l)``), differentiable."""
    return torch.stack([m.coefficients for m in _shared_layers(layers)], dim=1)


def coefficient_param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Optimizer parameter groups: ``weight_decay`` on everything except soft-sharing coefficients.

    The thesis trains ``alpha`` without weight decay (Sec. 3.3.3): shrinking ``alpha`` would only rescale
    effective weights, and the LSM is blind to scale.
    """
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0; got {weight_decay!r}")
    coef = {id(m.coefficients) for m in model.modules() if isinstance(m, _Shared)}
    params = list(model.parameters())  # deduplicated: a shared bank appears once
    rest = [p for p in params if id(p) not in coef]
    alphas = [p for p in params if id(p) in coef]
    groups = [{"params": rest, "weight_decay": weight_decay}]
    if alphas:
        groups.append({"params": alphas, "weight_decay": 0.0})
    return groups


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
    import copy

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

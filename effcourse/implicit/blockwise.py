"""Strictly block-triangular implicit models and sequential greedy blockwise training (Gautam 2024, sec. 2.3-2.6).

Partition the state ``x`` of order ``n`` into ``L`` blocks ``x_1, ..., x_L`` (sizes from :func:`partition`).  Under
Assumption 3, block ``i`` depends only on the blocks before it:

    X_1 = phi(B_1 U),    X_i = phi(sum_{j<i} A_{i,j} X_j + B_i U),    Y_hat = sum_j C_j X_j          (2.5)

so ``A`` is nilpotent (``A^L = 0``), well posed for every CONE ``phi``, and the fixed point is ``L`` steps of
forward substitution.  (The thesis prints the condition as ``A_{i,j} = 0 for i < j``; it means ``i <= j``.  We
store blocks in the natural order ``x = [x_1; ...; x_L]``, where ``A`` is strictly *lower* block triangular; the
thesis's Fig. 2.2 stacks them in reverse, which makes the same matrix upper triangular.)

* :class:`BlockTriangularModel` holds ``Atilde_i = [A_{i,1} ... A_{i,i-1}  B_i]`` per block (Alg. 2's notation,
  natural order) and the output map ``C``; it assembles the full ``(A, B, C)`` of an :class:`ImplicitModel`.
* :func:`train_sequential` is Algorithm 1: blocks are trained once each, in order, earlier blocks frozen, all of
  ``C_1..C_i`` re-fit.  Subproblem solvers: ``"local"`` (Remark 2: gradient local search, MSE (2.8) or softmax
  cross-entropy (2.9)) and ``"altmin"`` (Algorithm 2, squared loss only: exact least squares for the ``C``'s
  (2.11) alternating with the single-hidden-layer problem (2.12)).
* :func:`subproblem_variables` and friends count parameters (Remark 5; the ``X_i`` count as variables there).
* blocks with self-loops (Theorems 2-3) are in :mod:`effcourse.implicit.selfloops`.

Tensors are batch-first as in :mod:`effcourse.implicit`: ``U`` is ``(m, p)``, ``X_i`` is ``(m, n_i)``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import torch
from torch import nn
from torch.utils._python_dispatch import _disable_current_modes
from torch.utils.flop_counter import FlopCounterMode

from .model import ACTIVATIONS, ImplicitModel, loss_value

__all__ = [
    "BlockCheckpoint",
    "BlockRecord",
    "BlockTriangularModel",
    "SequentialResult",
    "end_to_end_variables",
    "extra_nonzeros_vs_feedforward",
    "extra_nonzeros_formula",
    "least_squares",
    "least_squares_flops",
    "model_weights",
    "partition",
    "strict_nonzeros",
    "subproblem_variables",
    "subproblem_weights",
    "train_sequential",
]


def partition(n: int, L: int) -> list[int]:
    """Alg. 1, step 1: ``n_i = floor(n / L)`` for ``i < L`` and the remainder in ``n_L``."""
    if not isinstance(L, int) or L < 2:
        raise ValueError(f"L (number of blocks) must be an int > 1; got {L!r}")
    if not isinstance(n, int) or n < L:
        raise ValueError(f"n (model order) must be an int >= L = {L} so that every block is non-empty; got {n!r}")
    base = n // L
    return [base] * (L - 1) + [n - base * (L - 1)]


def _check_sizes(sizes: Sequence[int]) -> list[int]:
    sizes = list(sizes)
    if len(sizes) < 1 or any(not isinstance(s, int) or s < 1 for s in sizes):
        raise ValueError(f"sizes must be a non-empty list of positive ints; got {sizes!r}")
    return sizes


# ------------------------------------------------------------------------------------------------ counting
def subproblem_variables(sizes: Sequence[int], m: int, p: int, q: int) -> list[int]:
    """Remark 5: subproblem ``i`` optimizes ``n_i (sum_{j<i} n_j + m + p) + q sum_{j<=i} n_j`` variables
    (``A_{i,j}``, ``B_i``, the ``n_i x m`` features ``X_i`` of formulation (2.5), and ``C_1..C_i``)."""
    sizes = _check_sizes(sizes)
    out, before = [], 0
    for s in sizes:
        out.append(s * (before + m + p) + q * (before + s))
        before += s
    return out


def subproblem_weights(sizes: Sequence[int], p: int, q: int) -> list[int]:
    """Like :func:`subproblem_variables` without the ``X_i`` (the count of weights a gradient solver updates)."""
    return subproblem_variables(sizes, 0, p, q)


def end_to_end_variables(n: int, m: int, p: int, q: int) -> int:
    """Remark 5: end-to-end training optimizes ``n (n + m + p + q)`` variables (``A, X, B, C``) at once."""
    return n * (n + m + p + q)


def strict_nonzeros(sizes: Sequence[int]) -> int:
    """Free entries of a strictly block-triangular ``A`` with blocks ``sizes``: ``sum_i n_i sum_{j<i} n_j``."""
    sizes = _check_sizes(sizes)
    return sum(s * sum(sizes[:i]) for i, s in enumerate(sizes))


def model_weights(sizes: Sequence[int], p: int, q: int) -> int:
    """Weights of the finished sequential model (2.5): every ``Atilde_i`` (``n_i x (sum_{j<i} n_j + p)``) and
    ``C`` (``q x n``)."""
    sizes = _check_sizes(sizes)
    return strict_nonzeros(sizes) + p * sum(sizes) + q * sum(sizes)


def extra_nonzeros_vs_feedforward(sizes: Sequence[int]) -> int:
    """Nonzeros of a strictly block-triangular ``A`` minus those of a feed-forward one (only ``A_{i,i-1}``),
    counted directly: ``sum_{i > j + 1} n_i n_j``."""
    sizes = _check_sizes(sizes)
    s = torch.tensor(sizes, dtype=torch.int64)
    outer = s[:, None] * s[None, :]
    i, j = torch.meshgrid(torch.arange(len(sizes)), torch.arange(len(sizes)), indexing="ij")
    return int(outer[i > j + 1].sum())


def extra_nonzeros_formula(n: int, L: int) -> int:
    """The thesis's closed form for the uniform partition: ``(L-2) n_1 n_L + (L-2)(L-3)/2 n_1^2``."""
    sizes = partition(n, L)
    n1, nL = sizes[0], sizes[-1]
    return (L - 2) * n1 * nL + (L - 2) * (L - 3) // 2 * n1 * n1


# ------------------------------------------------------------------------------------------------ the model
class BlockTriangularModel(nn.Module):
    """An implicit model with strictly block-triangular ``A`` and ``D = 0`` (Assumptions 2-3), evaluated by
    forward substitution.  ``blocks[i]`` is ``Atilde_i = [A_{i,1} ... A_{i,i-1}  B_i]`` (``n_i x (sum_{j<i} n_j
    + p)``); ``C`` is ``q x n``.  Blocks may be added one at a time (:meth:`add_block`), as Algorithm 1 does."""

    def __init__(self, p: int, q: int, activation: str = "relu", device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        for name, v in (("p", p), ("q", q)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int; got {v!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}; got {activation!r}")
        self.p, self.q, self.activation = p, q, activation
        self.blocks = nn.ParameterList()
        self.C = nn.Parameter(torch.zeros(q, 0, device=device, dtype=dtype))

    @property
    def sizes(self) -> list[int]:
        return [int(b.shape[0]) for b in self.blocks]

    @property
    def n(self) -> int:
        return sum(self.sizes)

    def add_block(self, atilde: torch.Tensor, C: torch.Tensor) -> None:
        """Append block ``i`` with weights ``atilde`` (``n_i x (n + p)``, ``n`` the current order) and replace
        ``C`` by ``C`` (``q x (n + n_i)``)."""
        want = self.n + self.p
        if atilde.dim() != 2 or atilde.shape[1] != want:
            raise ValueError(f"atilde must be (n_i, {want}) = (n_i, n_before + p); got {tuple(atilde.shape)}")
        if tuple(C.shape) != (self.q, self.n + atilde.shape[0]):
            raise ValueError(f"C must be ({self.q}, {self.n + atilde.shape[0]}); got {tuple(C.shape)}")
        self.blocks.append(nn.Parameter(atilde.detach().clone()))
        self.C = nn.Parameter(C.detach().clone())

    def features(self, u: torch.Tensor) -> torch.Tensor:
        """All features ``[X_1, ..., X_L]`` (``m x n``) by forward substitution (2.5)."""
        if u.dim() != 2 or u.shape[1] != self.p:
            raise ValueError(f"u must be (m, p={self.p}); got {tuple(u.shape)}")
        phi = ACTIVATIONS[self.activation][0]
        z = u
        for at in self.blocks:
            # Utilde_i = [X_1 .. X_{i-1}, U] in natural order; X_i = phi(Utilde_i Atilde_i^T)
            z = torch.cat([z[:, : z.shape[1] - self.p], phi(z @ at.t()), u], dim=1)
        return z[:, : z.shape[1] - self.p]

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.features(u) @ self.C.t()

    def assemble(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The model matrices ``(A, B, C)`` (Alg. 1's return value), ``A`` strictly block lower triangular."""
        n, p = self.n, self.p
        ref = self.C
        A = torch.zeros(n, n, device=ref.device, dtype=ref.dtype)
        B = torch.zeros(n, p, device=ref.device, dtype=ref.dtype)
        row = 0
        for at in self.blocks:
            ni = at.shape[0]
            A[row:row + ni, :row] = at[:, :row]
            B[row:row + ni] = at[:, row:]
            row += ni
        return A, B, self.C.detach().clone()

    def to_implicit(self, **kw) -> ImplicitModel:
        """The same model as an :class:`ImplicitModel` (dense matrices, ``D = 0``)."""
        A, B, C = (t.detach() for t in self.assemble())
        return ImplicitModel.from_matrices(A, B, C, None, activation=self.activation, **kw)


def least_squares(X: torch.Tensor, Y: torch.Tensor, rtol: float | None = None) -> torch.Tensor:
    """``argmin_C ||Y - X C^T||_F^2`` (2.11): the minimum-norm solution via the pseudo-inverse, in float64.

    ReLU features are often exactly collinear (dead units; for a 1-D input, units whose kink lies outside the data
    are affine in ``u``); singular values below ``rtol`` times the largest are treated as zero (``None``: torch's
    default, ``max(m, k)`` float64 epsilons).  Compute the features in float64 too: float32 rounding turns exact
    collinearity into a near one, and the least-squares coefficients then reach 1e4-1e5 and cancel only on the
    training set.  Returns ``C`` (``q x k``) in ``X``'s dtype."""
    if X.dim() != 2 or Y.dim() != 2 or X.shape[0] != Y.shape[0]:
        raise ValueError(f"X (m, k) and Y (m, q) must share m; got {tuple(X.shape)} and {tuple(Y.shape)}")
    if rtol is not None and not (isinstance(rtol, (int, float)) and 0 <= rtol < 1):
        raise ValueError(f"rtol must be None or in [0, 1); got {rtol!r}")
    C = torch.linalg.pinv(X.to(torch.float64), rtol=rtol) @ Y.to(torch.float64)
    return C.t().to(X.dtype)


def least_squares_flops(m: int, k: int) -> int:
    """FLOPs charged to one :func:`least_squares` on an ``m x k`` design, which ``FlopCounterMode`` cannot see
    (an SVD is not a matrix product): the thin R-SVD, ``6 M r^2 + 20 r^3`` with ``M = max(m, k)``, ``r = min(m,
    k)`` (Golub and Van Loan, Matrix Computations, Fig. 8.6.1), and forming the pseudo-inverse, ``2 m k r``.  The
    product with ``Y`` is a matrix product and is counted where it runs."""
    for name, v in (("m", m), ("k", k)):
        if not isinstance(v, int) or v < 0:
            raise ValueError(f"{name} must be an int >= 0; got {v!r}")
    big, r = max(m, k), min(m, k)
    return 6 * big * r * r + 20 * r ** 3 + 2 * m * k * r


# ------------------------------------------------------------------------------------------------ Algorithm 1
@dataclass
class BlockRecord:
    """One subproblem of Algorithm 1: its block, the training objective after it, its seconds, its FLOPs (matrix
    products counted by ``FlopCounterMode`` plus :func:`least_squares_flops`) and its size."""

    index: int
    size: int
    objective: float
    seconds: float
    variables: int
    weights: int
    flops: float = 0.0


@dataclass
class SequentialResult:
    """The trained model and one :class:`BlockRecord` per block; ``seconds`` is the total training time."""

    model: BlockTriangularModel
    blocks: list[BlockRecord] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(b.seconds for b in self.blocks)

    @property
    def flops(self) -> float:
        """Training FLOPs of all blocks (deterministic; the budget unit of the chapter's comparisons)."""
        return sum(b.flops for b in self.blocks)

    @property
    def objectives(self) -> list[float]:
        return [b.objective for b in self.blocks]

    def is_monotone(self, rtol: float = 1e-10) -> bool:
        """Whether the training objective never increased from one block to the next (up to ``rtol``)."""
        if not (isinstance(rtol, (int, float)) and rtol >= 0):
            raise ValueError(f"rtol must be a number >= 0; got {rtol!r}")
        obj = self.objectives
        return all(b <= a * (1 + rtol) for a, b in zip(obj, obj[1:]))


_SOLVERS = ("altmin", "local")


class BlockCheckpoint(Protocol):
    """Where :func:`train_sequential` keeps its progress: ``save(step, **state)`` after block ``step`` and
    ``load()``, the last ``(step, state)`` or ``None`` (a sweep's ``RunContext.save``/``load`` under one name)."""

    def save(self, step: int, **state: Any) -> None: ...

    def load(self) -> tuple[int, dict[str, Any]] | None: ...


def _repeat_counted(step, steps: int, counter: FlopCounterMode) -> int:
    """Run ``step()`` ``steps`` times inside ``counter``'s context; count the first and return the FLOPs the other
    ``steps - 1`` would add.  Every step multiplies tensors of the same shapes, so the count is exact, and the
    dispatch mode's per-operation overhead (larger than the tiny products themselves) is paid once."""
    if steps < 1:
        return 0
    before = counter.get_total_flops()
    step()
    per_step = counter.get_total_flops() - before
    with _disable_current_modes():
        for _ in range(steps - 1):
            step()
    return per_step * (steps - 1)


def _shallow_adam(atilde: torch.Tensor, ut: torch.Tensor, target: torch.Tensor, Ci: torch.Tensor, phi,
                  steps: int, lr: float, counter: FlopCounterMode) -> tuple[torch.Tensor, int]:
    """(2.12): ``min_{Atilde} 1/2 ||Ytilde - phi(Utilde Atilde^T) C_i^T||^2 / m`` by Adam (local search).
    Returns the weights and the FLOPs of the steps that ``counter`` did not see (:func:`_repeat_counted`)."""
    atilde = atilde.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([atilde], lr=lr)

    def step():
        resid = phi(ut @ atilde.t()) @ Ci.t() - target
        obj = 0.5 * resid.pow(2).sum(dim=1).mean()
        opt.zero_grad(set_to_none=True)
        obj.backward()
        opt.step()

    extra = _repeat_counted(step, steps, counter)
    return atilde.detach(), extra


def _objective(X: torch.Tensor, C: torch.Tensor, y: torch.Tensor, loss: str) -> float:
    """The training objective (per-sample mean) in float64, so that block-to-block comparisons are exact."""
    yy = y if loss == "ce" else y.to(torch.float64)
    return float(loss_value(X.to(torch.float64) @ C.to(torch.float64).t(), yy, loss))


def train_sequential(u: torch.Tensor, y: torch.Tensor, n: int, L: int, loss: str = "mse", solver: str = "altmin",
                     activation: str = "relu", alternations: int = 5, steps: int = 300, lr: float = 1e-2,
                     generator: torch.Generator | None = None, progress: bool | str = False,
                     checkpoint: BlockCheckpoint | None = None) -> SequentialResult:
    """Algorithm 1 (sequential greedy training) on inputs ``u`` (``m x p``) and targets ``y``.

    ``loss="mse"``: ``y`` is ``m x q`` (one-hot for classification); ``loss="ce"``: ``y`` holds integer labels and
    ``q`` is their count.  ``solver="altmin"`` (Algorithm 2, MSE only) runs ``alternations`` rounds of exact least
    squares for ``C_1..C_i`` then ``steps`` Adam steps on (2.12), and ends with one more least-squares fit so that
    the returned ``C`` is optimal for the returned features: then the objective cannot increase from block to block
    (``C_i = 0`` is feasible).  ``solver="local"`` runs ``steps`` Adam steps jointly on ``Atilde_i`` and all of
    ``C_1..C_i`` (Remark 2), warm-started at the previous ``C`` and ``C_i = 0``.
    ``X_i`` is initialized as ``phi(Utilde_i Atilde_i^T)`` with Gaussian ``Atilde_i / sqrt(fan-in)`` (the thesis
    leaves it open).  Earlier blocks stay frozen; nothing is implicit and nothing is projected.

    The inner Adam loops are full-batch solves on a fixed design matrix and do not go through
    :func:`effcourse.core.train.fit`: its per-step reshuffle of the whole batch and its per-epoch host sync (every
    step is an epoch here) cost about a third of a step at these sizes, inside the time that the chapter compares
    with end-to-end training.

    ``checkpoint`` (:class:`BlockCheckpoint`, e.g. a sweep's, :mod:`effcourse.implicit.sweep`) is saved after every
    block (its weights, the ``C`` so far, the records and ``generator``'s state) and restored before the first, so
    that a killed run redoes at most one block and continues exactly as it would have: the earlier features are
    recomputed from the saved weights by the same products that built them.
    """
    if solver not in _SOLVERS:
        raise ValueError(f"solver must be one of {_SOLVERS}; got {solver!r}")
    if loss not in ("mse", "ce"):
        raise ValueError(f"loss must be 'mse' or 'ce'; got {loss!r}")
    if solver == "altmin" and loss != "mse":
        raise ValueError("solver='altmin' (Algorithm 2) needs the squared loss (Assumption 4); use loss='mse' "
                         "or solver='local'")
    if u.dim() != 2 or y.shape[0] != u.shape[0]:
        raise ValueError(f"u must be (m, p) and y must have m = {u.shape[0]} rows; got {tuple(u.shape)}, "
                         f"{tuple(y.shape)}")
    if not isinstance(alternations, int) or alternations < 1:
        raise ValueError(f"alternations must be a positive int; got {alternations!r}")
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an int >= 0; got {steps!r}")
    sizes = partition(n, L)
    m, p = u.shape
    if loss == "ce":
        if y.dtype != torch.long or y.dim() != 1:
            raise ValueError("loss='ce' needs integer labels y of shape (m,)")
        q = int(y.max()) + 1
    else:
        if y.dim() != 2:
            raise ValueError("loss='mse' needs targets y of shape (m, q)")
        q = y.shape[1]
    dev, dt = u.device, u.dtype
    phi = ACTIVATIONS[activation][0]
    model = BlockTriangularModel(p, q, activation, device=dev, dtype=dt)
    variables = subproblem_variables(sizes, m, p, q)
    weights = subproblem_weights(sizes, p, q)
    result = SequentialResult(model)
    X_prev = u.new_zeros(m, 0)
    C_prev = u.new_zeros(q, 0)
    it = list(enumerate(sizes))
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc=progress if isinstance(progress, str) else "blocks", leave=False)
    counter = FlopCounterMode(display=False)
    done = 0
    saved = checkpoint.load() if checkpoint is not None else None
    if saved is not None:
        done, state = saved
        for at in state["blocks"]:  # C is set after the last block; add_block only needs its shape
            model.add_block(at.to(dev), u.new_zeros(q, model.n + at.shape[0]))
        if state["blocks"]:
            model.C = nn.Parameter(state["C"].to(dev))
        result.blocks = [BlockRecord(**r) for r in state["records"]]
        if generator is not None:
            generator.set_state(state["generator"])
        with torch.no_grad():
            X_prev = model.features(u) if done else X_prev
        C_prev = model.C.detach().clone() if done else C_prev
    for i, ni in it:
        if i < done:
            continue
        sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
        t0 = time.perf_counter()
        with counter:  # counts are cleared on entry: one count per block
            ls_flops = 0  # FLOPs the counter does not see: SVDs and repeated Adam steps
            ut = torch.cat([X_prev, u], dim=1)  # Utilde_i (natural order)
            fan_in = ut.shape[1]
            atilde = torch.randn(ni, fan_in, generator=generator, dtype=dt).to(dev) / math.sqrt(fan_in)
            if solver == "altmin":
                for _ in range(alternations):
                    Xi = phi(ut @ atilde.t())
                    C = least_squares(torch.cat([X_prev, Xi], dim=1), y)              # (2.11)
                    ls_flops += least_squares_flops(m, X_prev.shape[1] + ni)
                    target = y - X_prev @ C[:, : X_prev.shape[1]].t()                  # Ytilde
                    atilde, extra = _shallow_adam(atilde, ut, target, C[:, X_prev.shape[1]:], phi, steps, lr,
                                                  counter)  # (2.12)
                    ls_flops += extra
                Xi = phi(ut @ atilde.t())
                C = least_squares(torch.cat([X_prev, Xi], dim=1), y)
                ls_flops += least_squares_flops(m, X_prev.shape[1] + ni)
            else:
                atilde.requires_grad_(True)
                C = torch.cat([C_prev, u.new_zeros(q, ni)], dim=1).requires_grad_(True)
                opt = torch.optim.Adam([atilde, C], lr=lr)

                def step(X_prev=X_prev, ut=ut, atilde=atilde, C=C, opt=opt):  # bound now: used at once
                    out = torch.cat([X_prev, phi(ut @ atilde.t())], dim=1) @ C.t()
                    obj = loss_value(out, y, loss)
                    opt.zero_grad(set_to_none=True)
                    obj.backward()
                    opt.step()

                ls_flops += _repeat_counted(step, steps, counter)
                atilde, C = atilde.detach(), C.detach()
                Xi = phi(ut @ atilde.t())
            X_prev = torch.cat([X_prev, Xi], dim=1)
            C_prev = C
            sync()
            seconds = time.perf_counter() - t0
        flops = counter.get_total_flops() + ls_flops
        model.add_block(atilde, C)
        result.blocks.append(BlockRecord(i + 1, ni, _objective(X_prev, C, y, loss), seconds, variables[i],
                                         weights[i], float(flops)))
        if checkpoint is not None:
            checkpoint.save(i + 1, blocks=[b.detach().cpu() for b in model.blocks], C=model.C.detach().cpu(),
                            records=[asdict(r) for r in result.blocks],
                            generator=generator.get_state() if generator is not None else None)
    return result

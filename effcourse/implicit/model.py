"""Implicit deep models (Gautam 2024, ch. 2, after El Ghaoui et al.): fixed points, well-posedness, training.

The model (prediction and fixed-point equations, (2.2)-(2.3)) is

    y_hat = C x + D u,        x = phi(A x + B u).

Tensors here are **batch-first**: a batch of ``m`` inputs is ``u`` of shape ``(m, p)`` (the thesis's ``U^T``), the
states are ``x`` of shape ``(m, n)`` (``X^T``), so the fixed-point equation reads ``x = phi(x A^T + u B^T)``.

What lives here:

* CONE activations with their derivatives (Def. 2) and :func:`fixed_point`, the Picard iteration of Theorem 1 with
  a tolerance, an iteration cap and an honest report of non-convergence;
* the well-posedness tests: :func:`pf_eigenvalue` (``lambda_PF(|A|) < 1``, Theorem 1) and :func:`inf_norm`
  (the convex sufficient condition ``||A||_inf < 1``; note ``lambda_PF(|A|) <= ||A||_inf``, with equality possible,
  where the thesis prints ``<``);
* :func:`implicit_fixed_point`, an autograd function whose backward pass solves the adjoint fixed-point equation
  instead of unrolling the forward iteration (implicit differentiation);
* :func:`project_inf_ball`, the exact Euclidean projection onto ``{A : ||A||_inf <= kappa}``, i.e. one l1-ball
  projection per row, vectorized (sort-based, O(n^2 log n) for an n x n matrix; the thesis's Remark 4 quotes an
  O(n^3) bisection);
* :class:`ImplicitModel` and :func:`train_projected`, end-to-end projected-gradient training (problem (2.4) with
  the relaxed constraint ``||A||_inf <= kappa``), the baseline that the sequential method of
  :mod:`effcourse.implicit.blockwise` improves on.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..core.data import Split
from ..core.harness import synchronize
from ..core.train import fit

__all__ = [
    "ACTIVATIONS",
    "E2EHistory",
    "FixedPointError",
    "FixedPointResult",
    "IllPosedError",
    "ImplicitModel",
    "append_ones",
    "fixed_point",
    "implicit_fixed_point",
    "inf_norm",
    "is_well_posed",
    "loss_value",
    "pf_eigenvalue",
    "project_inf_ball",
    "scalar_relu_solutions",
    "train_projected",
]


class IllPosedError(ValueError):
    """``A`` fails the well-posedness test (``lambda_PF(|A|) >= 1``): a unique fixed point is not guaranteed."""


class FixedPointError(RuntimeError):
    """The fixed-point iteration hit its iteration cap before reaching the tolerance."""


# ------------------------------------------------------------------------------------------------ activations
def _relu_grad(z: torch.Tensor) -> torch.Tensor:
    return (z > 0).to(z.dtype)


def _leaky_grad(z: torch.Tensor) -> torch.Tensor:
    return torch.where(z > 0, torch.ones_like(z), torch.full_like(z, 0.01))


def _tanh_grad(z: torch.Tensor) -> torch.Tensor:
    return 1.0 - torch.tanh(z) ** 2


def _sigmoid_grad(z: torch.Tensor) -> torch.Tensor:
    s = torch.sigmoid(z)
    return s * (1.0 - s)


#: CONE maps (Def. 2: every component 1-Lipschitz in its own argument) as ``name -> (phi, phi')``.
ACTIVATIONS: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]] = {
    "relu": (torch.relu, _relu_grad),
    "leaky_relu": (lambda z: F.leaky_relu(z, 0.01), _leaky_grad),
    "tanh": (torch.tanh, _tanh_grad),
    "sigmoid": (torch.sigmoid, _sigmoid_grad),
    "identity": (lambda z: z, torch.ones_like),
}


def _activation(name: str):
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)} (CONE maps); got {name!r}")
    return ACTIVATIONS[name]


# ------------------------------------------------------------------------------------------------ well-posedness
def _check_square(A: torch.Tensor, name: str = "A") -> None:
    if not isinstance(A, torch.Tensor) or A.dim() != 2 or A.shape[0] != A.shape[1]:
        shape = tuple(A.shape) if isinstance(A, torch.Tensor) else type(A).__name__
        raise ValueError(f"{name} must be a square 2-D tensor (n x n); got {shape}")


def inf_norm(A: torch.Tensor) -> torch.Tensor:
    """``||A||_inf = max_i sum_j |A_ij|``, the induced infinity norm (maximum row l1 norm)."""
    if not isinstance(A, torch.Tensor) or A.dim() != 2:
        raise ValueError("A must be a 2-D tensor")
    return A.abs().sum(dim=1).max()


def pf_eigenvalue(A: torch.Tensor) -> torch.Tensor:
    """``lambda_PF(|A|)``: the Perron-Frobenius eigenvalue of ``|A|``, i.e. its spectral radius (Theorem 1).

    Computed from the eigenvalues in float64 (the matrix is small in this chapter); a nilpotent ``A`` may come out
    as a tiny positive number rather than exactly 0, because eigenvalues of a Jordan block are ill-conditioned.
    """
    _check_square(A)
    ev = torch.linalg.eigvals(A.detach().abs().to(torch.float64))
    return ev.abs().max().to(A.dtype)


def is_well_posed(A: torch.Tensor, test: str = "pf") -> bool:
    """Theorem 1's sufficient test ``lambda_PF(|A|) < 1`` (``test="pf"``) or its convex relaxation
    ``||A||_inf < 1`` (``test="inf"``).  Both are sufficient for every CONE activation, neither is necessary."""
    if test == "pf":
        return bool(pf_eigenvalue(A) < 1)
    if test == "inf":
        return bool(inf_norm(A) < 1)
    raise ValueError(f"test must be 'pf' or 'inf'; got {test!r}")


def scalar_relu_solutions(a: float, b: float) -> list[float]:
    """All solutions of the scalar equation ``x = relu(a x + b)`` (Definition 1 fails when there are not exactly
    one): ``x = 0`` when ``b <= 0``, and ``x = b / (1 - a)`` when that is positive."""
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (a, b)):
        raise ValueError(f"a and b must be finite numbers; got a={a!r}, b={b!r}")
    sols = [0.0] if b <= 0 else []
    if a != 1 and b / (1 - a) > 0:
        sols.append(b / (1 - a))
    return sols


# ------------------------------------------------------------------------------------------------ fixed points
@dataclass
class FixedPointResult:
    """The state ``x`` (``m x n``), iterations used, the last step's sup-norm and whether it met the tolerance."""

    x: torch.Tensor
    iterations: int
    residual: float
    converged: bool


def _check_every(x: torch.Tensor) -> int:
    """How often the Picard loops read their step size on the host: every iteration on a CPU (where reading is
    free and the iteration count is exact), every 8th on an accelerator, where each read stalls the device."""
    return 1 if x.device.type == "cpu" else 8


def fixed_point(A: torch.Tensor, b: torch.Tensor, activation: str = "relu", tol: float = 1e-6,
                max_iter: int = 500, x0: torch.Tensor | None = None, rtol: float = 0.0) -> FixedPointResult:
    """Solve ``x = phi(x A^T + b)`` row-wise (eq. (2.1) for every sample) by Picard iteration from ``x0`` (0).

    Theorem 1: for a CONE ``phi`` and ``lambda_PF(|A|) < 1`` the iteration converges to the unique solution.
    It stops when the sup-norm of a step is ``<= tol + rtol * max|x|`` (``tol=rtol=0`` asks for an exact repeat)
    or after ``max_iter`` steps; the result says which.  No error is raised here: callers decide (see
    ``ImplicitModel``).
    """
    _check_square(A)
    phi, _ = _activation(activation)
    if b.dim() != 2 or b.shape[1] != A.shape[0]:
        raise ValueError(f"b must be (m, n) with n = {A.shape[0]} matching A; got {tuple(b.shape)}")
    if not (isinstance(tol, (int, float)) and tol >= 0 and math.isfinite(tol)):
        raise ValueError(f"tol must be a finite number >= 0; got {tol!r}")
    if not (isinstance(rtol, (int, float)) and rtol >= 0 and math.isfinite(rtol)):
        raise ValueError(f"rtol must be a finite number >= 0; got {rtol!r}")
    if not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive int; got {max_iter!r}")
    b = b.detach()  # the iteration itself is never differentiated (see implicit_fixed_point)
    A = A.detach()
    x = torch.zeros_like(b) if x0 is None else x0.detach()
    At = A.t()
    step = math.inf
    every = _check_every(x)
    for it in range(1, max_iter + 1):
        x_new = phi(torch.addmm(b, x, At))
        if it % every and it < max_iter:
            x = x_new
            continue
        # the sup-norm of the step: a contraction with rate r leaves an error of at most r/(1-r) times it
        step = float((x_new - x).abs().max()) if x.numel() else 0.0
        x = x_new
        if not math.isfinite(step):
            return FixedPointResult(x, it, step, False)
        if step <= tol or (rtol > 0 and step <= tol + rtol * float(x.abs().max())):
            return FixedPointResult(x, it, step, True)
    return FixedPointResult(x, max_iter, step, False)


class _ImplicitFixedPoint(torch.autograd.Function):
    """``x*(A, b)`` with ``x* = phi(x* A^T + b)``; backward by the implicit function theorem.

    With ``z = x A^T + b``, ``d = phi'(z)`` and incoming gradient ``g = dL/dx``, the total derivative
    ``v = dL/dz`` solves the adjoint fixed point ``v = d * (g + v A)``; then ``dL/dA = v^T x`` and ``dL/db = v``.
    The adjoint map has spectral radius at most ``lambda_PF(|A|)`` (since ``|d| <= 1`` for a CONE map), so the
    same Picard iteration converges whenever the forward one is guaranteed to.
    """

    @staticmethod
    def forward(ctx, A, b, activation, tol, max_iter):
        with torch.no_grad():
            res = fixed_point(A, b, activation, tol, max_iter)
            if not res.converged:
                raise FixedPointError(
                    f"fixed-point iteration did not converge in {max_iter} steps (last step {res.residual:.3g} > "
                    f"tol {tol}); is A well posed? lambda_PF(|A|) = {float(pf_eigenvalue(A)):.4f}, "
                    f"||A||_inf = {float(inf_norm(A)):.4f}")
            x = res.x
            d = _activation(activation)[1](torch.addmm(b, x, A.t()))
        ctx.save_for_backward(A, x, d)
        ctx.tol, ctx.max_iter = tol, max_iter
        ctx.forward_iterations = res.iterations
        return x

    @staticmethod
    def backward(ctx, g):
        A, x, d = ctx.saved_tensors
        v = d * g
        every = _check_every(v)
        for it in range(1, ctx.max_iter + 1):
            v_new = d * torch.addmm(g, v, A)
            if it % every and it < ctx.max_iter:
                v = v_new
                continue
            step = float((v_new - v).abs().max()) if v.numel() else 0.0
            v = v_new
            if step <= ctx.tol * (1.0 + float(g.abs().max())):
                break
        else:
            raise FixedPointError(f"adjoint fixed-point iteration did not converge in {ctx.max_iter} steps")
        grad_A = v.t() @ x if ctx.needs_input_grad[0] else None
        grad_b = v if ctx.needs_input_grad[1] else None
        return grad_A, grad_b, None, None, None


def implicit_fixed_point(A: torch.Tensor, b: torch.Tensor, activation: str = "relu", tol: float = 1e-6,
                         max_iter: int = 500) -> torch.Tensor:
    """The fixed point ``x = phi(x A^T + b)`` as a differentiable function of ``A`` and ``b`` (implicit backward).

    Raises :class:`FixedPointError` if the forward or the adjoint iteration does not converge.
    """
    _activation(activation)
    return _ImplicitFixedPoint.apply(A, b, activation, tol, max_iter)


# ------------------------------------------------------------------------------------------------ projection
def project_inf_ball(A: torch.Tensor, kappa: float) -> torch.Tensor:
    """Euclidean projection of ``A`` onto ``{A : ||A||_inf <= kappa}``: each row onto the l1 ball of radius kappa.

    The Frobenius projection separates over rows because the constraint is one l1 bound per row.  A row ``a``
    with ``||a||_1 > kappa`` becomes ``sign(a) * max(|a| - theta, 0)`` where the threshold ``theta`` makes the
    l1 norm exactly ``kappa``; sorting ``|a|`` finds ``theta`` exactly (Duchi et al., 2008).  All rows at once.
    Works on the last dimension of a tensor of any shape.
    """
    if not (isinstance(kappa, (int, float)) and math.isfinite(kappa) and kappa >= 0):
        raise ValueError(f"kappa must be a finite number >= 0; got {kappa!r}")
    if not isinstance(A, torch.Tensor) or A.dim() < 1:
        raise ValueError("A must be a tensor with at least one dimension")
    a = A.abs()
    if kappa == 0:
        return torch.zeros_like(A)
    s, _ = torch.sort(a, dim=-1, descending=True)
    excess = s.cumsum(dim=-1) - kappa  # sum of the k largest minus kappa
    k = torch.arange(1, A.shape[-1] + 1, device=A.device, dtype=A.dtype)
    active = s * k > excess  # s_k - (sum_{<=k} - kappa)/k > 0 holds exactly on a prefix
    rho = active.sum(dim=-1, keepdim=True).clamp(min=1)
    theta = (excess.gather(-1, rho - 1) / rho.to(A.dtype)).clamp(min=0)  # 0 for rows already inside
    return torch.sign(A) * (a - theta).clamp(min=0)


# ------------------------------------------------------------------------------------------------ the model
def append_ones(u: torch.Tensor) -> torch.Tensor:
    """``[u, 1]``: a constant feature, so that ``B``'s last column acts as a bias (the thesis's model has none)."""
    return torch.cat([u, torch.ones(u.shape[0], 1, device=u.device, dtype=u.dtype)], dim=1)


def loss_value(y_hat: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    """Mean per-sample loss: ``"mse"`` is (2.8) ``1/2 ||y - y_hat||^2``; ``"ce"`` is the softmax cross-entropy
    (2.9) with integer labels ``y`` (the thesis calls it "negative cross-entropy"; it is the usual one)."""
    if loss == "mse":
        if y.shape != y_hat.shape:
            raise ValueError(f"mse needs targets shaped like the predictions {tuple(y_hat.shape)}; got "
                             f"{tuple(y.shape)}")
        return 0.5 * (y_hat - y).pow(2).sum(dim=1).mean()
    if loss == "ce":
        if y.dtype != torch.long or y.dim() != 1:
            raise ValueError("ce needs integer class labels of shape (m,)")
        return F.cross_entropy(y_hat, y)
    raise ValueError(f"loss must be 'mse' or 'ce'; got {loss!r}")


class ImplicitModel(nn.Module):
    """``y_hat = C x + D u`` with ``x = phi(A x + B u)`` (2.2)-(2.3), batched over rows of ``u``.

    ``check`` (default ``True``) refuses an ill-posed ``A`` before solving: the cheap test ``||A||_inf < 1`` is
    tried first and ``lambda_PF(|A|) < 1`` only when it fails.  The backward pass is implicit (no unrolling).
    ``feedthrough=False`` fixes ``D = 0`` (Assumption 2).
    """

    def __init__(self, n: int, p: int, q: int, activation: str = "relu", feedthrough: bool = True,
                 tol: float = 1e-6, max_iter: int = 500, check: bool = True, init_kappa: float = 0.5,
                 generator: torch.Generator | None = None, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        for name, v in (("n", n), ("p", p), ("q", q)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int; got {v!r}")
        _activation(activation)
        self.n, self.p, self.q = n, p, q
        self.activation, self.tol, self.max_iter, self.check = activation, tol, max_iter, check

        def randn(*shape):
            return torch.randn(*shape, generator=generator, dtype=dtype).to(device)

        # Gaussian rows scaled by fan-in; A starts strictly inside the well-posed ball
        A = project_inf_ball(randn(n, n) / math.sqrt(n), init_kappa) if init_kappa > 0 else randn(n, n) * 0
        self.A = nn.Parameter(A)
        self.B = nn.Parameter(randn(n, p) / math.sqrt(p))
        self.C = nn.Parameter(randn(q, n) / math.sqrt(n))
        self.D = nn.Parameter(torch.zeros(q, p, dtype=dtype, device=device)) if feedthrough else None

    def _check_input(self, u: torch.Tensor) -> None:
        if u.dim() != 2 or u.shape[1] != self.p:
            raise ValueError(f"u must be (m, p={self.p}); got {tuple(u.shape)}")

    def check_well_posed(self) -> None:
        """Raise :class:`IllPosedError` unless ``||A||_inf < 1`` or ``lambda_PF(|A|) < 1``."""
        A = self.A.detach()
        if float(inf_norm(A)) < 1:
            return
        pf = float(pf_eigenvalue(A))
        if pf >= 1:
            raise IllPosedError(f"A is not certified well posed: lambda_PF(|A|) = {pf:.4f} >= 1 (and ||A||_inf = "
                                f"{float(inf_norm(A)):.4f}); project A (project_()) or rescale it")

    def state(self, u: torch.Tensor) -> torch.Tensor:
        """The fixed point ``x`` (``m x n``) for inputs ``u`` (``m x p``)."""
        self._check_input(u)
        if self.check:
            self.check_well_posed()
        return implicit_fixed_point(self.A, u @ self.B.t(), self.activation, self.tol, self.max_iter)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        x = self.state(u)
        y = x @ self.C.t()
        return y if self.D is None else y + u @ self.D.t()

    @torch.no_grad()
    def project_(self, kappa: float) -> ImplicitModel:
        """Project ``A`` in place onto ``||A||_inf <= kappa`` (the projected-gradient step of (2.4))."""
        self.A.copy_(project_inf_ball(self.A, kappa))
        return self

    @classmethod
    def from_matrices(cls, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, D: torch.Tensor | None = None,
                      activation: str = "relu", **kw) -> ImplicitModel:
        """An implicit model holding copies of given matrices."""
        _check_square(A)
        n = A.shape[0]
        if B.dim() != 2 or B.shape[0] != n:
            raise ValueError(f"B must be (n={n}, p); got {tuple(B.shape)}")
        if C.dim() != 2 or C.shape[1] != n:
            raise ValueError(f"C must be (q, n={n}); got {tuple(C.shape)}")
        p, q = B.shape[1], C.shape[0]
        if D is not None and tuple(D.shape) != (q, p):
            raise ValueError(f"D must be (q={q}, p={p}); got {tuple(D.shape)}")
        m = cls(n, p, q, activation=activation, feedthrough=D is not None, device=A.device, dtype=A.dtype, **kw)
        with torch.no_grad():
            m.A.copy_(A)
            m.B.copy_(B)
            m.C.copy_(C)
            if D is not None:
                m.D.copy_(D)
        return m

    @classmethod
    def from_mlp(cls, layers: Sequence[nn.Linear], activation: str = "relu", **kw) -> ImplicitModel:
        """The implicit model that computes the same function as the feed-forward net ``layers``.

        The state stacks the hidden layers ``x = [x_1; ...; x_{K-1}]``; ``A`` holds ``W_k`` in block
        ``(k, k-1)`` (so ``A`` is strictly block triangular and nilpotent), ``B`` holds ``W_1`` in block 1, ``C``
        holds ``W_K`` in the last block.  Biases are carried by a constant-1 input feature: the model expects
        :func:`append_ones` of the MLP's input, and ``D`` (feed-through) carries only the output bias.
        """
        layers = [m for m in layers if isinstance(m, nn.Linear)]
        if len(layers) < 2:
            raise ValueError("layers must hold at least two nn.Linear layers (one hidden layer)")
        for a, b in zip(layers[:-1], layers[1:]):
            if a.out_features != b.in_features:
                raise ValueError(f"layer sizes do not chain: {a.out_features} -> {b.in_features}")
        W = [lin.weight.detach() for lin in layers]
        bias = [lin.bias.detach() if lin.bias is not None else torch.zeros_like(w[:, 0]) for lin, w in
                zip(layers, W)]
        hidden = [w.shape[0] for w in W[:-1]]
        n, p0, q = sum(hidden), W[0].shape[1], W[-1].shape[0]
        off = [0]
        for h in hidden:
            off.append(off[-1] + h)
        dev, dt = W[0].device, W[0].dtype
        A = torch.zeros(n, n, device=dev, dtype=dt)
        B = torch.zeros(n, p0 + 1, device=dev, dtype=dt)
        C = torch.zeros(q, n, device=dev, dtype=dt)
        D = torch.zeros(q, p0 + 1, device=dev, dtype=dt)
        B[: off[1], :p0] = W[0]
        for k in range(len(hidden)):
            B[off[k]:off[k + 1], p0] = bias[k]
            if k > 0:
                A[off[k]:off[k + 1], off[k - 1]:off[k]] = W[k]
        C[:, off[-2]:off[-1]] = W[-1]
        D[:, p0] = bias[-1]
        return cls.from_matrices(A, B, C, D, activation=activation, **kw)


# ------------------------------------------------------------------------------------------------ E2E training
@dataclass
class E2EHistory:
    """Checkpoints of :func:`train_projected`: step, training FLOPs and seconds so far (evaluation excluded),
    training loss and the value of ``eval_fn``; plus the seconds spent in each phase of a step.  FLOPs are the
    matrix-product FLOPs that :class:`torch.utils.flop_counter.FlopCounterMode` counts (the fixed-point and adjoint
    iterations included): deterministic, unlike the seconds, which are shown and never compared."""

    steps: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    flops: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    evals: list[float] = field(default_factory=list)
    phase_seconds: dict[str, float] = field(default_factory=lambda: {"forward": 0.0, "backward": 0.0,
                                                                      "update": 0.0, "projection": 0.0})

    def at_time(self, seconds: float) -> float:
        """``eval_fn`` at the last checkpoint reached within ``seconds`` of training (the first if none)."""
        idx = [i for i, s in enumerate(self.seconds) if s <= seconds]
        return self.evals[idx[-1] if idx else 0]

    def at_flops(self, flops: float) -> float:
        """``eval_fn`` at the last checkpoint reached within ``flops`` training FLOPs (the first if none)."""
        idx = [i for i, f in enumerate(self.flops) if f <= flops]
        return self.evals[idx[-1] if idx else 0]



def train_projected(model: ImplicitModel, u: torch.Tensor, y: torch.Tensor, loss: str = "mse", lr: float = 1e-2,
                    kappa: float = 0.95, steps: int = 1000, flop_budget: float | None = None,
                    batch_size: int | None = None, eval_fn: Callable[[ImplicitModel], float] | None = None,
                    eval_every: int = 10, generator: torch.Generator | None = None,
                    progress: bool | str = False, checkpoint: Any | None = None) -> E2EHistory:
    """End-to-end projected gradient training of a dense implicit model (problem (2.4), relaxed constraint).

    Each step: Adam on ``(A, B, C, D)`` with implicit gradients, then ``A <- Proj_{||A||_inf <= kappa}(A)``.
    The steps run through :func:`effcourse.core.train.fit` (batches drawn from ``generator``, one shuffled pass
    per epoch; ``batch_size=None`` is full batch); the projection, the checkpoints and the counters live in its
    ``after_step``, which ends training by returning True.  Runs ``steps`` steps (fit's ``max_steps``), or stops
    early once ``flop_budget`` training FLOPs (counted, evaluation excluded; see :class:`E2EHistory`) are spent
    or the loss is not finite.  A budget in FLOPs, not seconds, so that where training stops does not depend on
    the machine or its load.  Checkpoints every ``eval_every`` steps (step 0 included).

    ``checkpoint``: a sweep's ``ctx.fit_checkpoint()`` (:mod:`effcourse.sweep.context`), handed to ``fit`` with the
    history and the FLOP and time counters added to what it saves (its ``extra``), so that a killed run resumes
    with the same learning curve and stops at the same counted FLOPs as an uninterrupted one.
    """
    if not (isinstance(kappa, (int, float)) and 0 < kappa < 1):
        raise ValueError(f"kappa must be in (0, 1) for a certified well-posed A; got {kappa!r}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int; got {steps!r}")
    if not isinstance(eval_every, int) or eval_every < 1:
        raise ValueError(f"eval_every must be a positive int; got {eval_every!r}")
    if flop_budget is not None and not (isinstance(flop_budget, (int, float)) and flop_budget >= 0):
        raise ValueError(f"flop_budget must be None or a number of FLOPs >= 0; got {flop_budget!r}")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be None (full batch) or a positive int; got {batch_size!r}")
    m = u.shape[0]
    if y.shape[0] != m:
        raise ValueError(f"u and y must have the same number of rows; got {m} and {y.shape[0]}")
    device = u.device
    bs = m if batch_size is None else min(batch_size, m)
    model.project_(kappa)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    hist = E2EHistory()
    clock = {"elapsed": 0.0, "flops": 0.0, "excluded": 0.0}
    marks: dict[str, object] = {}
    counter = FlopCounterMode(display=False)

    def record(step: int, train_loss: float) -> None:
        hist.steps.append(step)
        hist.seconds.append(clock["elapsed"])
        hist.flops.append(clock["flops"])
        hist.train_loss.append(train_loss)
        hist.evals.append(float(eval_fn(model)) if eval_fn is not None else math.nan)

    def batch_loss(net: nn.Module, ub: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:  # the forward phase
        marks["t0"] = time.perf_counter()
        out = loss_value(net(ub), yb, loss)
        synchronize(device)
        marks["t1"], marks["loss"] = time.perf_counter(), out
        return out

    def stamp(key: str):
        def hook(*_):
            synchronize(device)
            marks[key] = time.perf_counter()
        return hook

    opt.register_step_pre_hook(stamp("t2"))   # zero_grad and backward ran since t1
    opt.register_step_post_hook(stamp("t3"))  # Adam's update ran since t2

    def after_step(step: int, _total: int) -> bool:  # True ends training (a diverged loss or the time budget)
        model.project_(kappa)
        synchronize(device)
        t4 = time.perf_counter()
        t = (marks["t0"], marks["t1"], marks["t2"], marks["t3"], t4)
        for key, a, b in zip(("forward", "backward", "update", "projection"), t, t[1:]):
            hist.phase_seconds[key] += b - a
        clock["elapsed"] += t4 - t[0]
        clock["flops"] = counter.get_total_flops() - clock["excluded"]
        last = float(marks["loss"].detach())
        if not math.isfinite(last):
            return True
        done = flop_budget is not None and clock["flops"] >= flop_budget
        if step % eval_every == 0 or step == steps or done:
            before = counter.get_total_flops()
            with torch.no_grad():
                record(step, last if bs == m else float(loss_value(model(u), y, loss)))
            clock["excluded"] += counter.get_total_flops() - before  # evaluation is not training
        return done

    with torch.no_grad():
        record(0, float(loss_value(model(u), y, loss)))
    q = int(y.shape[1]) if y.dim() == 2 else int(y.max()) + 1
    data = Split(u, y, u[:0], y[:0], q)
    if checkpoint is not None:
        checkpoint.extra["e2e_progress"] = _Progress(hist, clock, counter)
    with counter:
        fit(model, opt, data, math.ceil(steps / math.ceil(m / bs)), bs, generator=generator, batch_loss=batch_loss,
            after_step=after_step, eval_every=0, progress=progress, max_steps=steps, checkpoint=checkpoint)
    return hist


@dataclass
class _Progress:
    """What :func:`train_projected` keeps outside the model and optimizer: its history and counters.  Restored
    inside ``fit`` (within the FLOP counter's context, which starts at zero), the counter offset makes the counted
    FLOPs continue from the saved total."""

    hist: E2EHistory
    clock: dict[str, float]
    counter: FlopCounterMode

    def state_dict(self) -> dict[str, Any]:
        return {"hist": asdict(self.hist), "elapsed": self.clock["elapsed"], "flops": self.clock["flops"]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, v in asdict(E2EHistory(**state["hist"])).items():
            setattr(self.hist, k, v)
        self.clock["elapsed"], self.clock["flops"] = state["elapsed"], state["flops"]
        self.clock["excluded"] = self.counter.get_total_flops() - state["flops"]

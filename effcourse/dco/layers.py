"""Differentiable convex optimizers (DCO): first-order update rules written as small convex programs (Gautam 2024, 4.4).

Each optimizer maps ``(theta, state, grad)`` to ``(theta_next, state_next)`` (4.7) by solving an unconstrained QP
whose data depend on meta-parameters ``phi``:

* :class:`DCOGradient` (4.13), ``phi = Lambda``: ``argmin_theta G^T theta + 1/2 ||Lambda * (theta - theta_t)||^2``,
  closed form ``theta_t - G / Lambda^2`` (a per-weight learning rate ``1 / Lambda_j^2``);
* :class:`DCOGeneralDescent` (4.14), ``phi = B``: ``argmin_theta (B G)^T theta + 1/2 ||theta - theta_t||^2``,
  closed form ``theta_t - B G``;
* :class:`DCOMomentum` (4.15)-(4.16), ``phi = (Lambda, M)``: ``S' = M * G + (1 - M) * S`` and then the DCOG
  program with ``S'`` in place of ``G``.

Every class has two interchangeable backends with the same interface: ``"closed_form"`` (torch, fast, any device)
and ``"cvxpylayers"`` (the QP is solved by cvxpy/diffcp and differentiated through its KKT conditions, as in the
thesis).  cvxpy's DPP rules reject the printed programs (``Lambda * theta_t`` and ``B G`` are parameter x
parameter products), so the layers use the rewritten forms of :func:`dco_gradient_problem` and
:func:`dco_general_descent_problem`, whose parameters are computed in torch so that gradients still reach ``phi``.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:  # cvxpy is imported where a problem is built (it is slow to import)
    import cvxpy

__all__ = [
    "BACKENDS",
    "DEFAULT_SOLVER_ARGS",
    "DCOGeneralDescent",
    "DCOGradient",
    "DCOMomentum",
    "DCOOptimizer",
    "backend_agreement",
    "dco_general_descent_problem",
    "dco_gradient_problem",
    "printed_problem",
]

BACKENDS = ("closed_form", "cvxpylayers")
# diffcp's default SCS tolerance (1e-4 scale) leaves the layer ~1e-4 away from the closed form; 1e-9 brings it to
# ~1e-9 in value (the gradient, computed by diffcp's iterative adjoint solve, then agrees to ~1e-7).
DEFAULT_SOLVER_ARGS: dict[str, Any] = {"eps": 1e-9}


def _check_p(p: int) -> int:
    if not isinstance(p, int) or isinstance(p, bool) or p < 1:
        raise ValueError(f"p (number of inner parameters) must be a positive int; got {p!r}")
    return p


def printed_problem(kind: str, p: int) -> cvxpy.Problem:
    """The update as printed in the thesis, built with cvxpy parameters; ``problem.is_dpp()`` is False for both.

    ``kind="gradient"``: (4.13) with ``Lambda`` and ``theta_t`` as parameters; ``kind="general_descent"``: (4.14)
    with ``B`` and ``G`` as parameters.  Used to show why :func:`dco_gradient_problem` rewrites them.
    """
    import cvxpy as cp

    _check_p(p)
    theta = cp.Variable(p)
    theta_t = cp.Parameter(p)
    if kind == "gradient":
        g, lam = cp.Parameter(p), cp.Parameter(p)
        obj = g @ theta + 0.5 * cp.sum_squares(cp.multiply(lam, theta - theta_t))
    elif kind == "general_descent":
        g, b = cp.Parameter(p), cp.Parameter((p, p))
        obj = (b @ g) @ theta + 0.5 * cp.sum_squares(theta - theta_t)
    else:
        raise ValueError(f"kind must be 'gradient' or 'general_descent'; got {kind!r}")
    return cp.Problem(cp.Minimize(obj))


def dco_gradient_problem(p: int) -> tuple[cvxpy.Problem, list[cvxpy.Parameter], list[cvxpy.Variable]]:
    """DPP form of (4.13): ``min_theta g^T theta + 1/2 ||Lambda * theta - c||^2`` with ``c = Lambda * theta_t``.

    Returns ``(problem, [g, lam, c], [theta])``.  Every parameter multiplies the variable at most once, which is
    what DPP allows; ``c`` is computed in torch from ``Lambda`` and ``theta_t`` so its gradient flows to ``Lambda``.
    """
    import cvxpy as cp

    _check_p(p)
    theta = cp.Variable(p)
    g, lam, c = cp.Parameter(p), cp.Parameter(p), cp.Parameter(p)
    prob = cp.Problem(cp.Minimize(g @ theta + 0.5 * cp.sum_squares(cp.multiply(lam, theta) - c)))
    return prob, [g, lam, c], [theta]


def dco_general_descent_problem(p: int
                                ) -> tuple[cvxpy.Problem, list[cvxpy.Parameter], list[cvxpy.Variable]]:
    """DPP form of (4.14): ``min_theta q^T theta + 1/2 ||theta - theta_t||^2`` with ``q = B G`` computed in torch.

    Returns ``(problem, [q, theta_t], [theta])``.
    """
    import cvxpy as cp

    _check_p(p)
    theta = cp.Variable(p)
    q, theta_t = cp.Parameter(p), cp.Parameter(p)
    prob = cp.Problem(cp.Minimize(q @ theta + 0.5 * cp.sum_squares(theta - theta_t)))
    return prob, [q, theta_t], [theta]


class DCOOptimizer(nn.Module):
    """Common interface: ``forward(theta, grad, state) -> (theta_next, state_next)``, batched over tasks.

    ``theta`` and ``grad`` have shape ``(N, p)`` (N tasks) or ``(p,)``.  With ``normalize`` each task's gradient is
    divided by its l2 norm before entering the program: the thesis does this "to handle ill-posed inputs"
    (4.6, meta-training setup), and it makes the step length a function of ``phi`` alone.
    """

    def __init__(self, p: int, backend: str = "closed_form", normalize: bool = True,
                 solver_args: dict[str, Any] | None = None):
        super().__init__()
        self.p = _check_p(p)
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}; got {backend!r}")
        self.backend = backend
        self.normalize = bool(normalize)
        self.solver_args = dict(DEFAULT_SOLVER_ARGS if solver_args is None else solver_args)
        self._layer = None  # the CvxpyLayer, built on first use (building imports cvxpy and canonicalizes)

    # -------------------------------------------------------------- helpers
    def init_state(self, theta: torch.Tensor) -> torch.Tensor | None:
        """The optimizer state ``S^(1)`` for a batch of parameters (``None`` for stateless rules)."""
        return None

    def _check(self, theta: torch.Tensor, grad: torch.Tensor) -> None:
        if not isinstance(theta, torch.Tensor) or not isinstance(grad, torch.Tensor):
            raise TypeError("theta and grad must be tensors")
        if theta.shape != grad.shape:
            raise ValueError(f"theta and grad must have the same shape; got {tuple(theta.shape)} and "
                             f"{tuple(grad.shape)}")
        if theta.dim() not in (1, 2) or theta.shape[-1] != self.p:
            raise ValueError(f"theta must have shape (p,) or (N, p) with p={self.p}; got {tuple(theta.shape)}")

    def _prepare(self, grad: torch.Tensor) -> torch.Tensor:
        if not self.normalize:
            return grad
        # the tiny floor keeps a zero gradient (an exact stationary point) from producing NaNs
        return grad / grad.norm(dim=-1, keepdim=True).clamp_min(1e-30)

    def _solve(self, args: list[torch.Tensor]) -> torch.Tensor:
        """Run the CvxpyLayer on CPU (diffcp works on NumPy arrays) and return the solution where theta lives."""
        if self._layer is None:
            from cvxpylayers.torch import CvxpyLayer

            prob, params, variables = self._problem()
            self._layer = CvxpyLayer(prob, parameters=params, variables=variables)
        device = args[0].device
        with warnings.catch_warnings():
            # diffcp's NumPy-2 copy-keyword DeprecationWarning, once per problem in the batch: noise, not news
            warnings.simplefilter("ignore", DeprecationWarning)
            (sol,) = self._layer(*[a.cpu() for a in args], solver_args=self.solver_args)
        return sol.to(device)

    def _problem(self):  # pragma: no cover - overridden
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"p={self.p}, backend={self.backend!r}, normalize={self.normalize}"


class DCOGradient(DCOOptimizer):
    """DCO Gradient (4.13): per-weight learning rates ``1 / Lambda_j^2``; ``Lambda = sqrt(lam) 1`` is GD, lr ``1/lam``.

    The program only sees ``Lambda^2``, and it is strictly convex only when every ``Lambda_j != 0``; the layer uses
    ``max(|Lambda|, lam_min)`` so a meta-step that drives an entry through zero cannot make the step infinite.
    """

    def __init__(self, p: int, lam0: float = 1.0, lam_min: float = 1e-3, **kwargs: Any):
        super().__init__(p, **kwargs)
        if not (isinstance(lam0, (int, float)) and math.isfinite(lam0) and lam0 > 0):
            raise ValueError(f"lam0 (initial Lambda) must be a positive finite number; got {lam0!r}")
        if not (isinstance(lam_min, (int, float)) and 0 < lam_min <= lam0):
            raise ValueError(f"lam_min must satisfy 0 < lam_min <= lam0={lam0}; got {lam_min!r}")
        self.lam_min = float(lam_min)
        self.lam = nn.Parameter(torch.full((p,), float(lam0), dtype=torch.get_default_dtype()))

    def effective_lam(self) -> torch.Tensor:
        """``Lambda`` as used in the program: magnitude at least ``lam_min`` (well-posed QP)."""
        return self.lam.abs().clamp_min(self.lam_min)

    def _step(self, theta: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
        lam = self.effective_lam().to(theta)
        if self.backend == "closed_form":
            return theta - direction / lam**2
        lam_b = lam.expand_as(theta)
        return self._solve([direction, lam_b, lam_b * theta])

    def _problem(self):
        return dco_gradient_problem(self.p)

    def forward(self, theta: torch.Tensor, grad: torch.Tensor,
                state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        self._check(theta, grad)
        return self._step(theta, self._prepare(grad)), None


class DCOGeneralDescent(DCOOptimizer):
    """DCO General Descent (4.14): ``theta_t - B G`` for a full matrix ``B`` (any ``B`` gives a well-posed QP).

    ``B = (1/lam) I`` is GD with learning rate ``1/lam``.  ``b0`` is the initial multiple of the identity.
    """

    def __init__(self, p: int, b0: float = 1.0, **kwargs: Any):
        super().__init__(p, **kwargs)
        if not (isinstance(b0, (int, float)) and math.isfinite(b0)):
            raise ValueError(f"b0 (initial B = b0 * I) must be a finite number; got {b0!r}")
        self.B = nn.Parameter(float(b0) * torch.eye(p, dtype=torch.get_default_dtype()))

    def _problem(self):
        return dco_general_descent_problem(self.p)

    def forward(self, theta: torch.Tensor, grad: torch.Tensor,
                state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        self._check(theta, grad)
        q = self._prepare(grad) @ self.B.to(theta).T  # row i is B g_i
        if self.backend == "closed_form":
            return theta - q, None
        return self._solve([q, theta]), None


class DCOMomentum(DCOGradient):
    """DCO Momentum (4.15)-(4.16): ``S' = M * G + (1 - M) * S``, then DCOG with ``S'`` for ``G``.

    ``M = (1 - beta) 1`` and ``Lambda = sqrt(lam) 1`` give the momentum rule (4.3)-(4.4).  ``M`` is clipped to
    ``[0, 1]`` in the layer so that ``S`` stays a convex combination of gradients.  ``S^(1) = 0`` by default.
    """

    def __init__(self, p: int, lam0: float = 1.0, m0: float = 0.1, lam_min: float = 1e-3, **kwargs: Any):
        super().__init__(p, lam0=lam0, lam_min=lam_min, **kwargs)
        if not (isinstance(m0, (int, float)) and 0 < m0 <= 1):
            raise ValueError(f"m0 (initial M) must be in (0, 1]; got {m0!r}")
        self.m = nn.Parameter(torch.full((p,), float(m0), dtype=torch.get_default_dtype()))

    def effective_m(self) -> torch.Tensor:
        """``M`` as used in (4.15), clipped to ``[0, 1]``."""
        return self.m.clamp(0.0, 1.0)

    def init_state(self, theta: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(theta)

    def forward(self, theta: torch.Tensor, grad: torch.Tensor,
                state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        self._check(theta, grad)
        if state is None:
            state = self.init_state(theta)
        elif state.shape != theta.shape:
            raise ValueError(f"state must have the shape of theta {tuple(theta.shape)}; got {tuple(state.shape)}")
        m = self.effective_m().to(theta)
        s = m * self._prepare(grad) + (1 - m) * state
        return self._step(theta, s), s


def backend_agreement(opt: DCOOptimizer, theta: torch.Tensor, grad: torch.Tensor,
                      state: torch.Tensor | None = None, solver_args: dict[str, Any] | None = None,
                      weights: torch.Tensor | None = None) -> tuple[float, float]:
    """Relative differences between the closed form and the cvxpylayers solution of ``opt``'s step.

    Both backends share ``opt``'s meta-parameters.  Returns ``(value_err, grad_err)``: the relative l2 difference
    of ``theta_next``, and of the gradient of ``<weights, theta_next>`` with respect to every meta-parameter
    (``weights`` random if not given).  Values near 1e-9 and 1e-7 mean the two are the same function.
    """
    import copy

    pair = []
    for backend in BACKENDS:
        o = copy.deepcopy(opt)
        o.backend, o._layer = backend, None
        if solver_args is not None:
            o.solver_args = dict(solver_args)
        pair.append(o)
    if weights is None:
        weights = torch.randn(theta.shape, generator=torch.Generator().manual_seed(0), dtype=theta.dtype)
    weights = weights.to(theta)
    outs, grads = [], []
    for o in pair:
        nxt, _ = o(theta, grad, state)
        params = [q for q in o.parameters() if q.requires_grad]
        gs = torch.autograd.grad((weights * nxt).sum(), params)
        outs.append(nxt.detach())
        grads.append(torch.cat([g.reshape(-1) for g in gs]))

    def rel(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a - b).norm() / b.norm().clamp_min(1e-300))

    return rel(outs[1], outs[0]), rel(grads[1], grads[0])

"""AvaGrad, AvaGradW and Delayed Adam (Savarese 2025, ch. 6, Algorithms 6 and 7).

The thesis's update (Alg. 7, with the epsilon of eq. 6.6 outside the square root; the algorithm box prints it
inside, an erratum):

    m_t     = beta1 m_{t-1} + (1 - beta1) g_t
    eta_t   = 1 / (sqrt(v_{t-1}) + eps)                      # from v_{t-1}: independent of the sample s_t
    w_{t+1} = w_t - alpha * eta_t / ||eta_t / sqrt(d)||_2 * m_t   # eta normalised to unit RMS over all d weights
    v_t     = beta2 v_{t-1} + (1 - beta2) g_t^2              # updated after the step

Delayed Adam (Alg. 6) is the same without the normalisation.  ``variant="official"`` follows the authors'
public code instead: Adam-style bias corrections, no update at t = 1, and a normaliser computed at the end of
step t from v_{t-1} and applied at step t + 1 (so it lags the eta it normalises by one step).  The thesis form is
the default: it is the algorithm the analysis (Theorem 6.3, eq. 6.12) is about, and in the book's digits grid it
separates lr from eps more cleanly (see the chapter).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.optim import Optimizer

__all__ = ["AvaGrad", "AvaGradW", "DelayedAdam", "EMAMomentumSGD", "avagrad", "avagrad_official", "eta_square_sum"]

_VARIANTS = ("thesis", "official")


def _check_hparams(lr: float, betas: tuple[float, float], eps: float, weight_decay: float) -> None:
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr >= 0):
        raise ValueError(f"lr must be a finite number >= 0; got {lr!r}")
    if not (isinstance(eps, (int, float)) and math.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be a finite number > 0 (eta_1 = 1/eps when v_0 = 0); got {eps!r}")
    if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
        raise ValueError(f"betas must be a pair (beta1, beta2); got {betas!r}")
    for i, b in enumerate(betas):
        if not (isinstance(b, (int, float)) and 0.0 <= b < 1.0):
            raise ValueError(f"betas[{i}] must be in [0, 1); got {b!r}")
    if not (isinstance(weight_decay, (int, float)) and math.isfinite(weight_decay) and weight_decay >= 0):
        raise ValueError(f"weight_decay must be a finite number >= 0; got {weight_decay!r}")


# ---------------------------------------------------------------------------------------------- functional form
def _eta(vs: list[torch.Tensor], eps: float, foreach: bool) -> list[torch.Tensor]:
    """eta = 1 / (sqrt(v) + eps), elementwise (eq. 6.6: eps outside the root)."""
    if foreach:
        etas = torch._foreach_sqrt(vs)
        torch._foreach_add_(etas, eps)
        torch._foreach_reciprocal_(etas)
        return etas
    return [v.sqrt().add_(eps).reciprocal_() for v in vs]


def _sq_sum(etas: list[torch.Tensor], foreach: bool) -> torch.Tensor:
    """sum_i eta_i^2 as a 0-dim float tensor on the tensors' device (never read on the host)."""
    if foreach:
        s = torch.stack(torch._foreach_norm(etas)).pow(2).sum()
    else:
        s = sum((e.pow(2).sum() for e in etas), torch.zeros((), device=etas[0].device, dtype=etas[0].dtype))
    return s.float() if s.dtype in (torch.float16, torch.bfloat16) else s


def eta_square_sum(exp_avg_sqs: list[torch.Tensor], eps: float, foreach: bool = False) -> torch.Tensor:
    """sum_i (1 / (sqrt(v_i) + eps))^2 over ``exp_avg_sqs``: one group's share of AvaGrad's global normaliser."""
    return _sq_sum(_eta(exp_avg_sqs, eps, foreach), foreach) if exp_avg_sqs else torch.zeros(())


def _single_tensor_avagrad(params, grads, exp_avgs, exp_avg_sqs, *, lr, beta1, beta2, eps, weight_decay, decoupled,
                           normalize, inv_rms) -> None:
    etas = _eta(exp_avg_sqs, eps, False)  # from v_{t-1}: eta_t does not depend on the current sample (Thm 6.3)
    if normalize and inv_rms is None:
        inv_rms = torch.rsqrt(_sq_sum(etas, False) / sum(p.numel() for p in params))
    for p, g, m, v, e in zip(params, grads, exp_avgs, exp_avg_sqs, etas):
        if weight_decay and decoupled:
            p.mul_(1.0 - lr * weight_decay)
        elif weight_decay:
            g = g.add(p, alpha=weight_decay)
        m.lerp_(g, 1.0 - beta1)
        if inv_rms is not None:
            e.mul_(inv_rms.to(p.device))
        p.addcmul_(e, m, value=-lr)
        v.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)


def _multi_tensor_avagrad(params, grads, exp_avgs, exp_avg_sqs, *, lr, beta1, beta2, eps, weight_decay, decoupled,
                          normalize, inv_rms) -> None:
    etas = _eta(exp_avg_sqs, eps, True)
    if normalize and inv_rms is None:
        inv_rms = torch.rsqrt(_sq_sum(etas, True) / sum(p.numel() for p in params))
    if weight_decay and decoupled:
        torch._foreach_mul_(params, 1.0 - lr * weight_decay)
    elif weight_decay:
        grads = torch._foreach_add(grads, params, alpha=weight_decay)
    torch._foreach_lerp_(exp_avgs, grads, 1.0 - beta1)
    if inv_rms is not None:
        torch._foreach_mul_(etas, inv_rms.to(params[0].device))  # the normaliser as a tensor: no host sync
    torch._foreach_addcmul_(params, etas, exp_avgs, value=-lr)  # reuses eta's buffer: no update temporary
    torch._foreach_mul_(exp_avg_sqs, beta2)
    torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1.0 - beta2)


def _fused_kernel(params: list[torch.Tensor], grads: list[torch.Tensor], exp_avgs: list[torch.Tensor],
                  exp_avg_sqs: list[torch.Tensor], lr: torch.Tensor, beta1: torch.Tensor, beta2: torch.Tensor,
                  eps: torch.Tensor, weight_decay: torch.Tensor, decoupled: bool, normalize: bool,
                  inv_rms: torch.Tensor | None) -> None:
    # plain tensor algebra for torch.compile to fuse: one reduction over v, then one pass over (p, g, m, v)
    etas = [1.0 / (v.sqrt() + eps) for v in exp_avg_sqs]
    if normalize and inv_rms is None:
        inv_rms = torch.rsqrt(sum((e * e).sum() for e in etas) / sum(p.numel() for p in params))
    for p, g, m, v, e in zip(params, grads, exp_avgs, exp_avg_sqs, etas):
        if decoupled:
            p.mul_(1.0 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m.lerp_(g, 1.0 - beta1)
        p.sub_(lr * (e * inv_rms if inv_rms is not None else e) * m)
        v.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)


_COMPILED: dict[str, object] = {}


def _fused_avagrad(params, grads, exp_avgs, exp_avg_sqs, *, lr, beta1, beta2, eps, weight_decay, decoupled,
                   normalize, inv_rms) -> None:
    if "kernel" not in _COMPILED:
        _COMPILED["kernel"] = torch.compile(_fused_kernel, fullgraph=True, dynamic=False)
    dev = params[0].device
    # hyper-parameters as 0-dim tensors: a learning-rate schedule changes values, never the compiled graph
    hp = [torch.tensor(float(x), device=dev, dtype=params[0].dtype) for x in (lr, beta1, beta2, eps, weight_decay)]
    _COMPILED["kernel"](params, grads, exp_avgs, exp_avg_sqs, *hp, bool(decoupled), bool(normalize),
                        None if inv_rms is None else inv_rms.to(dev))


def avagrad(params: list[torch.Tensor], grads: list[torch.Tensor], exp_avgs: list[torch.Tensor],
            exp_avg_sqs: list[torch.Tensor], *, lr: float, beta1: float, beta2: float, eps: float,
            weight_decay: float = 0.0, decoupled: bool = False, normalize: bool = True,
            inv_rms: torch.Tensor | None = None, foreach: bool | None = None, fused: bool | None = None) -> None:
    """Functional AvaGrad (Savarese 2025, Alg. 7; Delayed Adam, Alg. 6, with ``normalize=False``), in place.

    One step on the given tensors: ``m <- lerp(m, g, 1 - beta1)``, ``w <- w - lr * eta * m / rms(eta)`` with
    ``eta = 1 / (sqrt(v_{t-1}) + eps)`` (eq. 6.6), then ``v <- beta2 v + (1 - beta2) g^2``.  ``rms(eta)`` is taken
    over these tensors unless ``inv_rms = 1 / rms(eta)`` is given (AvaGrad's normaliser is global: the optimizer
    passes it when it spans several parameter groups).  Weight decay is L2, or decoupled (AvaGradW).
    Dispatches like ``torch.optim.adam``: ``fused`` (``torch.compile`` of the whole step), ``foreach``
    (multi-tensor kernels) or one tensor at a time.
    """
    if not params:
        return
    if fused and foreach:
        raise ValueError("fused and foreach are exclusive: pick one")
    if foreach is None and not fused:
        foreach = all(p.is_cuda for p in params)  # as torch.optim: multi-tensor kernels on CUDA by default
    func = _fused_avagrad if fused else _multi_tensor_avagrad if foreach else _single_tensor_avagrad
    func(params, grads, exp_avgs, exp_avg_sqs, lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
         decoupled=decoupled, normalize=normalize, inv_rms=inv_rms)


def avagrad_official(params: list[torch.Tensor], grads: list[torch.Tensor], exp_avgs: list[torch.Tensor],
                     exp_avg_sqs: list[torch.Tensor], gamma: torch.Tensor, step: int, *, lr: float, beta1: float,
                     beta2: float, eps: float, weight_decay: float = 0.0, decoupled: bool = False,
                     foreach: bool = False) -> torch.Tensor:
    """One step of the authors' public AvaGrad; returns the summed eta^2 for the *next* step's normaliser.

    Adam-style bias corrections, no update at ``step == 1``, and the normaliser ``gamma`` (a 0-dim tensor, so no host
    synchronisation) computed at the end of the previous step from v_{t-1} with that step's bias correction.
    """
    if weight_decay and decoupled:
        for p in params:
            p.mul_(1.0 - lr * weight_decay)
    elif weight_decay:
        grads = [g.add(p, alpha=weight_decay) for g, p in zip(grads, params)]
    if foreach:
        torch._foreach_lerp_(exp_avgs, grads, 1.0 - beta1)
        roots = torch._foreach_sqrt(exp_avg_sqs)
    else:
        for m, g in zip(exp_avgs, grads):
            m.lerp_(g, 1.0 - beta1)
        roots = [v.sqrt() for v in exp_avg_sqs]
    if step > 1:  # the public code takes no step at t = 1, it only collects statistics
        scale = (lr / (1.0 - beta1 ** step)) * gamma.to(params[0].device)
        for p, m, r in zip(params, exp_avgs, roots):
            p.addcdiv_(m, (r / math.sqrt(1.0 - beta2 ** (step - 1)) + eps) / scale, value=-1.0)
    # the normaliser for the NEXT step: from v_{t-1}, with step t's bias correction
    sq = _sq_sum([(r / math.sqrt(1.0 - beta2 ** step) + eps).reciprocal_() for r in roots], False)
    if foreach:
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1.0 - beta2)
    else:
        for v, g in zip(exp_avg_sqs, grads):
            v.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)
    return sq


# ---------------------------------------------------------------------------------------------- the optimizers
class _DelayedAdaptive(Optimizer):
    """Shared machinery: eta from v_{t-1}, optional global RMS normalisation, L2 or decoupled weight decay."""

    _normalize: bool = True

    def __init__(self, params, lr: float = 0.1, betas: tuple[float, float] = (0.9, 0.999), eps: float = 0.1,
                 weight_decay: float = 0.0, *, decoupled: bool = False, variant: str = "thesis",
                 foreach: bool | None = None, fused: bool | None = None):
        _check_hparams(lr, betas, eps, weight_decay)
        if variant not in _VARIANTS:
            raise ValueError(f"variant must be one of {_VARIANTS}; got {variant!r}")
        for name, flag in (("foreach", foreach), ("fused", fused)):
            if flag not in (None, True, False):
                raise ValueError(f"{name} must be None, True or False; got {flag!r}")
        if fused and foreach:
            raise ValueError("fused and foreach are exclusive: pick one")
        if fused and variant != "thesis":
            raise ValueError("fused=True exists for variant='thesis' only")
        if self._normalize is False and variant != "thesis":
            raise ValueError("variant='official' exists only for AvaGrad/AvaGradW (Delayed Adam has no normaliser)")
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, decoupled=bool(decoupled),
                        variant=variant, foreach=foreach, fused=fused)
        super().__init__(params, defaults)
        # the step counter and the official variant's lagged normaliser are global, not per tensor
        self.state["__global__"] = {"step": 0, "gamma": None, "variant": variant}

    @property
    def variant(self) -> str:
        return self.defaults["variant"]

    @property
    def foreach(self) -> bool | None:
        return self.defaults["foreach"]

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:  # pickles of older versions lack these flags
            group.setdefault("decoupled", False)
            group.setdefault("variant", "thesis")
            group.setdefault("foreach", None)
            group.setdefault("fused", None)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved = state_dict.get("state", {}).get("__global__")
        if saved is None:
            raise ValueError("state_dict has no '__global__' entry: it was not saved by an AvaGrad-family optimizer")
        if saved.get("variant", "thesis") != self.variant:
            raise ValueError(f"state_dict was saved with variant={saved['variant']!r}; this optimizer uses "
                             f"{self.variant!r}")
        super().load_state_dict(state_dict)
        self.state["__global__"] = dict(saved)

    def _collect(self):
        """Per group: params with grads, their grads, exp_avg and exp_avg_sq."""
        out = []
        for group in self.param_groups:
            ps, gs, ms, vs = [], [], [], []
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("AvaGrad does not support sparse gradients")
                st = self.state[p]
                if len(st) == 0:
                    st["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    st["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                ps.append(p)
                gs.append(p.grad)
                ms.append(st["exp_avg"])
                vs.append(st["exp_avg_sq"])
            if ps:
                out.append((group, ps, gs, ms, vs))
        return out

    def _use_foreach(self, group, params: list[torch.Tensor]) -> bool:
        if group["foreach"] is not None:
            return group["foreach"]
        return all(p.is_cuda for p in params)  # like torch.optim's default

    @torch.no_grad()
    def step(self, closure=None):
        """One update (Alg. 7 / Alg. 6).  Returns the closure's loss if a closure is given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        glob = self.state["__global__"]
        glob["step"] += 1
        groups = self._collect()
        if not groups:
            return loss
        if self.variant == "official":
            self._step_official(groups, glob)
            return loss
        inv_rms = None
        if self._normalize and len(groups) > 1:  # the normaliser spans every group (one rms over all d weights)
            sq = [eta_square_sum(vs, g["eps"], self._use_foreach(g, ps)) for g, ps, _, _, vs in groups]
            n = sum(p.numel() for _, ps, *_ in groups for p in ps)
            inv_rms = torch.rsqrt(sum(s.to(sq[0].device) for s in sq) / n)
        for group, ps, gs, ms, vs in groups:
            beta1, beta2 = group["betas"]
            avagrad(ps, gs, ms, vs, lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
                    weight_decay=group["weight_decay"], decoupled=group["decoupled"], normalize=self._normalize,
                    inv_rms=inv_rms, foreach=False if group["fused"] else self._use_foreach(group, ps),
                    fused=group["fused"])
        return loss

    def _step_official(self, groups, glob) -> None:
        t = glob["step"]
        gamma = glob["gamma"]
        if isinstance(gamma, float):  # a state_dict of an older version held a Python float
            gamma = torch.tensor(gamma)
        sq, n = [], 0
        for group, ps, gs, ms, vs in groups:
            beta1, beta2 = group["betas"]
            sq.append(avagrad_official(ps, gs, ms, vs, gamma if gamma is not None else torch.ones(()), t,
                                       lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
                                       weight_decay=group["weight_decay"], decoupled=group["decoupled"],
                                       foreach=self._use_foreach(group, ps)))
            n += sum(p.numel() for p in ps)
        glob["gamma"] = torch.rsqrt(sum(s.to(sq[0].device) for s in sq) / n)


class AvaGrad(_DelayedAdaptive):
    """AvaGrad (Savarese 2025, Alg. 7): Delayed Adam with eta normalised to unit RMS over all parameters.

    Args:
        params: parameters or parameter groups.
        lr: alpha; in SGD units (the normalised eta has RMS 1), so good values sit near SGD's, not Adam's.
        betas: (beta1, beta2), each in [0, 1).
        eps: epsilon, outside the square root (eq. 6.6); must be > 0.
        weight_decay: L2 penalty added to the gradient (AvaGrad) or decoupled decay (``AvaGradW``).
        variant: ``"thesis"`` (default, Alg. 7) or ``"official"`` (the authors' code: bias corrections, no first
            step, lagged normaliser).
        foreach: multi-tensor path; ``None`` picks it when all parameters are on CUDA.
        fused: the whole step compiled by ``torch.compile`` (one reduction and one fused pass; the first step
            compiles, for seconds).
    """

    def __init__(self, params, lr: float = 0.1, betas: tuple[float, float] = (0.9, 0.999), eps: float = 0.1,
                 weight_decay: float = 0.0, *, variant: str = "thesis", foreach: bool | None = None,
                 fused: bool | None = None):
        super().__init__(params, lr, betas, eps, weight_decay, decoupled=False, variant=variant, foreach=foreach,
                         fused=fused)


class AvaGradW(_DelayedAdaptive):
    """AvaGrad with decoupled weight decay, ``w <- w (1 - lr * weight_decay)`` before the step."""

    def __init__(self, params, lr: float = 0.1, betas: tuple[float, float] = (0.9, 0.999), eps: float = 0.1,
                 weight_decay: float = 0.0, *, variant: str = "thesis", foreach: bool | None = None,
                 fused: bool | None = None):
        super().__init__(params, lr, betas, eps, weight_decay, decoupled=True, variant=variant, foreach=foreach,
                         fused=fused)


class DelayedAdam(_DelayedAdaptive):
    """Delayed Adam (Savarese 2025, Alg. 6): Adam whose eta_t uses v_{t-1}; no bias correction, no normaliser."""

    _normalize = False

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, *, foreach: bool | None = None, fused: bool | None = None):
        super().__init__(params, lr, betas, eps, weight_decay, decoupled=False, variant="thesis", foreach=foreach,
                         fused=fused)


class EMAMomentumSGD(Optimizer):
    """SGD with an exponential-moving-average momentum, ``m = beta m + (1 - beta) g; w -= lr m``.

    The eps -> infinity limit of Adam (with ``bias_correction=True``, lr = gamma * eps) and of AvaGrad
    (``bias_correction=False``, lr fixed) in eq. 6.8.  ``torch.optim.SGD(momentum=b, dampening=b)`` is not the
    same: its first step does not dampen.
    """

    def __init__(self, params, lr: float = 0.1, beta: float = 0.9, bias_correction: bool = False):
        _check_hparams(lr, (beta, 0.0), 1.0, 0.0)
        super().__init__(params, dict(lr=lr, beta=beta, bias_correction=bool(bias_correction)))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                if not st:
                    st["step"] = 0
                    st["m"] = torch.zeros_like(p)
                st["step"] += 1
                st["m"].lerp_(p.grad, 1.0 - group["beta"])
                scale = 1.0 / (1.0 - group["beta"] ** st["step"]) if group["bias_correction"] else 1.0
                p.add_(st["m"], alpha=-group["lr"] * scale)
        return loss

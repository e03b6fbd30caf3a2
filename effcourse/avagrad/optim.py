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

__all__ = ["AvaGrad", "AvaGradW", "DelayedAdam", "EMAMomentumSGD"]

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


class _DelayedAdaptive(Optimizer):
    """Shared machinery: eta from v_{t-1}, optional global RMS normalisation, L2 or decoupled weight decay."""

    _normalize: bool = True

    def __init__(self, params, lr: float = 0.1, betas: tuple[float, float] = (0.9, 0.999), eps: float = 0.1,
                 weight_decay: float = 0.0, *, decoupled: bool = False, variant: str = "thesis",
                 foreach: bool | None = None):
        _check_hparams(lr, betas, eps, weight_decay)
        if variant not in _VARIANTS:
            raise ValueError(f"variant must be one of {_VARIANTS}; got {variant!r}")
        if foreach not in (None, True, False):
            raise ValueError(f"foreach must be None, True or False; got {foreach!r}")
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, decoupled=bool(decoupled))
        super().__init__(params, defaults)
        self.variant = variant
        self.foreach = foreach
        if self._normalize is False and variant != "thesis":
            raise ValueError("variant='official' exists only for AvaGrad/AvaGradW (Delayed Adam has no normaliser)")
        # the step counter and the official variant's lagged normaliser are global, not per tensor
        self.state["__global__"] = {"step": 0, "gamma": None, "variant": variant}

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("decoupled", False)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved = state_dict.get("state", {}).get("__global__")
        if saved is None:
            raise ValueError("state_dict has no '__global__' entry: it was not saved by an AvaGrad-family optimizer")
        if saved.get("variant", "thesis") != self.variant:
            raise ValueError(f"state_dict was saved with variant={saved['variant']!r}; this optimizer uses "
                             f"{self.variant!r}")
        super().load_state_dict(state_dict)
        self.state["__global__"] = dict(saved)

    # ------------------------------------------------------------------------------------------------------
    def _collect(self):
        """Per group: params with grads, their grads (with L2 folded in), exp_avg and exp_avg_sq."""
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
            out.append((group, ps, gs, ms, vs))
        return out

    def _use_foreach(self, params: list[torch.Tensor]) -> bool:
        if self.foreach is not None:
            return self.foreach
        # like torch.optim's default: multi-tensor kernels when every tensor is on a CUDA device
        return bool(params) and all(p.is_cuda for p in params)

    @torch.no_grad()
    def step(self, closure=None):
        """One update (Alg. 7 / Alg. 6).  Returns the closure's loss if a closure is given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        glob = self.state["__global__"]
        glob["step"] += 1
        t = glob["step"]
        groups = self._collect()
        all_params = [p for _, ps, *_ in groups for p in ps]
        if not all_params:
            return loss
        foreach = self._use_foreach(all_params)
        if self.variant == "thesis":
            self._step_thesis(groups, foreach)
        else:
            self._step_official(groups, t, foreach)
        return loss

    def _grads_with_l2(self, group, ps, gs, foreach):
        wd = group["weight_decay"]
        if wd == 0 or group["decoupled"]:
            return gs
        if foreach:
            return torch._foreach_add(gs, ps, alpha=wd)
        return [g.add(p, alpha=wd) for g, p in zip(gs, ps)]

    def _decay(self, group, ps, foreach):
        wd = group["weight_decay"]
        if wd == 0 or not group["decoupled"]:
            return
        if foreach:
            torch._foreach_mul_(ps, 1.0 - group["lr"] * wd)
        else:
            for p in ps:
                p.mul_(1.0 - group["lr"] * wd)

    def _step_thesis(self, groups, foreach: bool) -> None:
        etas_per_group, sq_sum, count = [], None, 0
        # eta_t from v_{t-1}, before v is touched: eta_t does not depend on the current sample (Thm 6.3's premise)
        for group, ps, _gs, _ms, vs in groups:
            if foreach:
                etas = torch._foreach_sqrt(vs)
                torch._foreach_add_(etas, group["eps"])
                torch._foreach_reciprocal_(etas)
                s = torch.stack(torch._foreach_norm(etas)).pow(2).sum() if etas else None
            else:
                etas = [v.sqrt().add_(group["eps"]).reciprocal_() for v in vs]
                s = sum((e.pow(2).sum() for e in etas), torch.zeros((), device=ps[0].device)) if etas else None
            etas_per_group.append(etas)
            if s is not None:
                s = s.to(torch.float32) if s.dtype in (torch.float16, torch.bfloat16) else s
                sq_sum = s if sq_sum is None else sq_sum + s.to(sq_sum.device)
            count += sum(p.numel() for p in ps)
        # 1 / ||eta / sqrt(d)||_2 as a 0-dim tensor: no host synchronisation on a GPU
        inv_rms = torch.rsqrt(sq_sum / count) if self._normalize else None
        for (group, ps, gs, ms, vs), etas in zip(groups, etas_per_group):
            if not ps:
                continue
            beta1, beta2 = group["betas"]
            gs = self._grads_with_l2(group, ps, gs, foreach)
            self._decay(group, ps, foreach)
            if foreach:
                torch._foreach_lerp_(ms, gs, 1.0 - beta1)
                upd = torch._foreach_mul(etas, ms)
                if inv_rms is not None:
                    torch._foreach_mul_(upd, inv_rms.to(ps[0].device))
                torch._foreach_add_(ps, upd, alpha=-group["lr"])
                torch._foreach_mul_(vs, beta2)
                torch._foreach_addcmul_(vs, gs, gs, value=1.0 - beta2)
            else:
                for p, g, m, v, e in zip(ps, gs, ms, vs, etas):
                    m.lerp_(g, 1.0 - beta1)
                    u = e.mul_(m)
                    if inv_rms is not None:
                        u.mul_(inv_rms.to(p.device))
                    p.add_(u, alpha=-group["lr"])
                    v.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)

    def _step_official(self, groups, t: int, foreach: bool) -> None:
        glob = self.state["__global__"]
        gamma = glob["gamma"]
        sq_sum, count = None, 0
        for group, ps, gs, ms, vs in groups:
            if not ps:
                continue
            beta1, beta2 = group["betas"]
            eps = group["eps"]
            gs = self._grads_with_l2(group, ps, gs, foreach)
            self._decay(group, ps, foreach)
            if foreach:
                torch._foreach_lerp_(ms, gs, 1.0 - beta1)
            else:
                for m, g in zip(ms, gs):
                    m.lerp_(g, 1.0 - beta1)
            if t > 1:  # the public code takes no step at t = 1, it only collects statistics
                bc2 = 1.0 - beta2 ** (t - 1)
                step = group["lr"] * float(gamma) / (1.0 - beta1 ** t)
                for p, m, v in zip(ps, ms, vs):
                    p.addcdiv_(m, v.div(bc2).sqrt_().add_(eps), value=-step)
            # the normaliser for the NEXT step: from v_{t-1}, with step t's bias correction
            bc2_t = 1.0 - beta2 ** t
            for v in vs:
                e = v.div(bc2_t).sqrt_().add_(eps).reciprocal_()
                s = e.pow(2).sum()
                sq_sum = s if sq_sum is None else sq_sum + s
            count += sum(p.numel() for p in ps)
            if foreach:
                torch._foreach_mul_(vs, beta2)
                torch._foreach_addcmul_(vs, gs, gs, value=1.0 - beta2)
            else:
                for v, g in zip(vs, gs):
                    v.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)
        glob["gamma"] = float(torch.rsqrt(sq_sum / count)) if sq_sum is not None else gamma


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
    """

    def __init__(self, params, lr: float = 0.1, betas: tuple[float, float] = (0.9, 0.999), eps: float = 0.1,
                 weight_decay: float = 0.0, *, variant: str = "thesis", foreach: bool | None = None):
        super().__init__(params, lr, betas, eps, weight_decay, decoupled=False, variant=variant, foreach=foreach)


class AvaGradW(_DelayedAdaptive):
    """AvaGrad with decoupled weight decay, ``w <- w (1 - lr * weight_decay)`` before the step."""

    def __init__(self, params, lr: float = 0.1, betas: tuple[float, float] = (0.9, 0.999), eps: float = 0.1,
                 weight_decay: float = 0.0, *, variant: str = "thesis", foreach: bool | None = None):
        super().__init__(params, lr, betas, eps, weight_decay, decoupled=True, variant=variant, foreach=foreach)


class DelayedAdam(_DelayedAdaptive):
    """Delayed Adam (Savarese 2025, Alg. 6): Adam whose eta_t uses v_{t-1}; no bias correction, no normaliser."""

    _normalize = False

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, *, foreach: bool | None = None):
        super().__init__(params, lr, betas, eps, weight_decay, decoupled=False, variant="thesis", foreach=foreach)


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

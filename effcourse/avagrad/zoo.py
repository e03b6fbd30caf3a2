"""The optimizers of the thesis's comparison (Savarese 2025, Table 6.1) behind one constructor.

torch.optim provides SGD, Adam, AMSGrad, AdamW and RAdam; AdaBound, AdaShift and AdaBelief come from the
``pytorch-optimizer`` package (a maintained implementation, rather than a hand-written copy here).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytorch_optimizer as po
import torch

from .optim import AvaGrad, AvaGradW

__all__ = ["AdaShiftL2", "OPTIMIZERS", "THESIS_CIFAR10_ERR", "make_optimizer", "optimizer_factory"]

OPTIMIZERS = ("sgd", "adam", "amsgrad", "adamw", "radam", "adabound", "adashift", "adabelief", "avagrad", "avagradw")
# epsilon each method is run with when eps is not tuned (torch's or the package's default; AvaGrad's thesis value)
DEFAULT_EPS = {"adam": 1e-8, "amsgrad": 1e-8, "adamw": 1e-8, "radam": 1e-8, "adabound": 1e-8, "adashift": 1e-10,
               "adabelief": 1e-16, "avagrad": 0.1, "avagradw": 0.1, "sgd": None}
# test error % on CIFAR-10 with a WRN-28-10 (Savarese 2025, Table 6.1, mean of 3 runs)
THESIS_CIFAR10_ERR = {"sgd": 3.86, "adam": 3.64, "amsgrad": 3.90, "adamw": 4.11, "radam": 3.89, "adabound": 5.40,
                      "adashift": 4.08, "adabelief": 3.98, "avagrad": 3.80, "avagradw": 3.97}


class AdaShiftL2(po.AdaShift):
    """pytorch-optimizer's AdaShift with L2 weight decay added to the gradient before its step, as the thesis trains
    every method that does not decouple it (the package's AdaShift takes no ``weight_decay``)."""

    def __init__(self, params, weight_decay: float = 0.0, **kwargs):
        if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)) or weight_decay < 0:
            raise ValueError(f"weight_decay must be a non-negative number; got {weight_decay!r}")
        super().__init__(params, **kwargs)
        for g in self.param_groups:
            g.setdefault("weight_decay", float(weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        for g in self.param_groups:
            ps = [p for p in g["params"] if p.grad is not None]
            if g["weight_decay"] and ps:
                torch._foreach_add_([p.grad for p in ps], ps, alpha=g["weight_decay"])
        return super().step(closure)


def make_optimizer(name: str, params: Iterable[torch.nn.Parameter], lr: float, eps: float | None = None,
                   weight_decay: float = 0.0, betas: tuple[float, float] = (0.9, 0.999),
                   momentum: float = 0.9) -> torch.optim.Optimizer:
    """Build optimizer ``name`` (one of :data:`OPTIMIZERS`).

    SGD uses Nesterov momentum (the thesis's baseline); ``eps`` defaults to :data:`DEFAULT_EPS`.
    AdamW and AvaGradW decouple ``weight_decay``; the others add it to the gradient (L2), AdaShift included.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"name must be one of {OPTIMIZERS}; got {name!r}")
    eps = DEFAULT_EPS[name] if eps is None else eps
    params = list(params)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=momentum > 0, weight_decay=weight_decay)
    if name in ("adam", "amsgrad"):
        return torch.optim.Adam(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                amsgrad=name == "amsgrad")
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    if name == "radam":
        return torch.optim.RAdam(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    if name == "avagrad":
        return AvaGrad(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=True)
    if name == "avagradw":
        return AvaGradW(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=True)
    if name == "adabound":
        return po.AdaBound(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, weight_decouple=False)
    if name == "adabelief":
        return po.AdaBelief(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, weight_decouple=False)
    return AdaShiftL2(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


def optimizer_factory(name: str, weight_decay: float = 0.0
                      ) -> Callable[[Iterable[torch.nn.Parameter], float, float | None], torch.optim.Optimizer]:
    """``(params, lr, eps) -> optimizer`` for :func:`make_optimizer`, the same ``weight_decay`` for every method."""
    if name not in OPTIMIZERS:
        raise ValueError(f"name must be one of {OPTIMIZERS}; got {name!r}")
    return lambda ps, lr, eps: make_optimizer(name, ps, lr, eps, weight_decay=weight_decay)

"""Three properties of AvaGrad's update (Savarese 2025, Alg. 7), checked to machine precision in float64.

* the premise of Theorem 6.3: eta_t depends on g_1 .. g_{t-1} only, so g_t changes the step only through m_t;
* the first step: with v_0 = 0, eta_1 = 1/eps normalises to 1, so step 1 is plain SGD, -alpha (1 - beta1) g_1;
* gradient scale: multiplying every gradient by c leaves Adam's steps unchanged (eps -> 0) but scales AvaGrad's
  by c, which is why AvaGrad's good learning rates sit near SGD's.
And Delayed Adam (Alg. 6) is AvaGrad without the normaliser.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .optim import AvaGrad, DelayedAdam

__all__ = ["apply_gradients", "update_properties"]


def apply_gradients(opt_cls: type[torch.optim.Optimizer], grads: Sequence[torch.Tensor],
                    **kwargs) -> list[torch.Tensor]:
    """Apply a fixed list of gradients to one zero-initialised float64 parameter; return the list of updates."""
    if not grads:
        raise ValueError("grads must be a non-empty sequence of tensors")
    w = torch.zeros(grads[0].shape, dtype=torch.float64, requires_grad=True)
    opt = opt_cls([w], **kwargs)
    ups = []
    for g in grads:
        before = w.detach().clone()
        w.grad = g.clone()
        opt.step()
        ups.append(w.detach() - before)
    return ups


def update_properties(steps: int = 30, dim: int = 50, lr: float = 0.1, eps: float = 1e-3,
                      seed: int = 0) -> dict[str, bool | float]:
    """Check the properties above on ``steps`` random gradients of ``dim`` coordinates (scales 0.1 to 3).

    Returns booleans ``premise``, ``first_step``, ``delayed_adam``, the largest deviation from the predicted update
    behind each (``*_err``), the tolerance they are compared with (``tol``: 1e-12, or 64 float64 ulps of the largest
    update if that is larger), and the step ratios ``adam_scale`` and ``avagrad_scale`` when every gradient is
    multiplied by 10 (at eps = 1e-12).
    """
    if steps < 2:
        raise ValueError(f"steps must be >= 2 (the premise perturbs the last of several gradients); got {steps!r}")
    gen = torch.Generator().manual_seed(seed)
    scale = torch.linspace(0.1, 3, dim, dtype=torch.float64)
    grads = [torch.randn(dim, generator=gen, dtype=torch.float64) * scale for _ in range(steps)]
    alt = grads[:-1] + [grads[-1] * 5 + 1]  # perturb the last gradient only
    u = apply_gradients(AvaGrad, grads, lr=lr, eps=eps)[-1]
    ua = apply_gradients(AvaGrad, alt, lr=lr, eps=eps)[-1]
    w0 = torch.zeros(dim, dtype=torch.float64, requires_grad=True)
    probe = AvaGrad([w0], lr=lr, eps=eps)
    for g in grads[:-1]:
        w0.grad = g.clone()
        probe.step()
    eta = 1 / (probe.state[w0]["exp_avg_sq"].sqrt() + eps)
    eta_hat = eta / eta.pow(2).mean().sqrt()
    m_prev = probe.state[w0]["exp_avg"]

    def predicted(g: torch.Tensor, e: torch.Tensor) -> torch.Tensor:  # -lr * eta_{t-1} * m_t, beta1 = 0.9
        return -lr * e * (0.9 * m_prev + 0.1 * g)

    first = apply_gradients(AvaGrad, grads[:1], lr=lr, eps=eps)[0]
    scaled = [g * 10 for g in grads]

    def ratio(opt_cls: type[torch.optim.Optimizer], step_lr: float) -> float:
        big = apply_gradients(opt_cls, scaled, lr=step_lr, eps=1e-12)[-1].norm()
        return float(big / apply_gradients(opt_cls, grads, lr=step_lr, eps=1e-12)[-1].norm())

    delayed = apply_gradients(DelayedAdam, grads, lr=lr, eps=eps)[-1]
    errs = dict(
        premise_err=max(float((u - predicted(grads[-1], eta_hat)).abs().max()),
                        float((ua - predicted(alt[-1], eta_hat)).abs().max())),
        first_step_err=float((first + lr * 0.1 * grads[0]).abs().max()),
        delayed_adam_err=float((delayed - predicted(grads[-1], eta)).abs().max()),
    )
    # the comparison stays above the float64 floor of the updates' size
    size = max(float(x.abs().max()) for x in (u, ua, first, delayed))
    tol = max(1e-12, 64 * torch.finfo(torch.float64).eps * size)
    return dict(
        premise=errs["premise_err"] <= tol,
        first_step=errs["first_step_err"] <= tol,
        delayed_adam=errs["delayed_adam_err"] <= tol,
        adam_scale=ratio(torch.optim.Adam, 1e-3),
        avagrad_scale=ratio(AvaGrad, lr),
        tol=tol,
        **errs,
    )

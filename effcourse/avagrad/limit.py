"""The eps -> infinity limit that makes Adam (and AvaGrad) an SGD (Savarese 2025, eq. 6.8).

For eps >> sqrt(v_t) Adam's step is alpha / eps per coordinate, so Adam with alpha = gamma * eps tends to SGD with
learning rate gamma and EMA momentum; AvaGrad's normalised eta tends to 1, so it reaches the same SGD at a fixed
alpha = gamma.  :func:`limit_distances` measures how far apart the final weights are; :func:`limit_over_seeds`
repeats it over several seeds (each its own data, initialization and minibatch stream).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..core.models import MLP
from .optim import AvaGrad, EMAMomentumSGD

__all__ = ["COLUMNS", "limit_distance", "limit_distances", "limit_over_seeds"]

COLUMNS = ("adam_scaled", "avagrad", "adam_fixed")

OptimizerBuilder = Callable[[Iterable[torch.nn.Parameter]], torch.optim.Optimizer]


def limit_distance(make_opt: OptimizerBuilder, make_ref: OptimizerBuilder, steps: int, seed: int = 0,
                   device: str | torch.device = "cpu") -> float:
    """Distance between the final weights of two optimizers run from the same start on the same minibatches.

    A 20-32-2 MLP on a synthetic XOR-like task (256 points); ``steps`` minibatches of 32, drawn with replacement,
    each seen by both models in turn.  This lockstep loop does not go through ``fit``: its minibatch stream is drawn
    with replacement for a step count that need not be a whole number of epochs.
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int; got {steps!r}")
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(256, 20, generator=g).to(device)
    y = (x[:, 0] * x[:, 1] > 0).long()
    torch.manual_seed(seed)
    a = MLP([20, 32, 2], device=device)
    b = MLP([20, 32, 2], device=device)
    b.load_state_dict(a.state_dict())
    oa, ob = make_opt(a.parameters()), make_ref(b.parameters())
    for _ in range(steps):
        idx = torch.randint(0, 256, (32,), generator=g).to(device)
        for net, opt in ((a, oa), (b, ob)):
            opt.zero_grad()
            F.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
    with torch.no_grad():
        return float(torch.cat([(p - q).flatten() for p, q in zip(a.parameters(), b.parameters())]).norm())


def limit_distances(epss: Sequence[float], gamma: float, steps: int, seed: int = 0,
                    device: str | torch.device = "cpu") -> list[dict[str, float]]:
    """Per eps: the distance to EMA-momentum SGD(gamma) of Adam(lr = gamma eps), AvaGrad(lr = gamma), Adam(lr = gamma).

    The references correct the bias of m for Adam (as ``torch.optim.Adam`` does) and not for AvaGrad.
    Rows are ``{"eps", "adam_scaled", "avagrad", "adam_fixed"}``.
    """
    if not epss:
        raise ValueError("epss must be non-empty")
    rows = []
    for eps in epss:
        def sgd(bias_correction: bool) -> OptimizerBuilder:
            return lambda p: EMAMomentumSGD(p, lr=gamma, bias_correction=bias_correction)

        rows.append(dict(
            eps=eps,
            adam_scaled=limit_distance(lambda p, e=eps: torch.optim.Adam(p, lr=gamma * e, eps=e), sgd(True), steps,
                                       seed, device),
            avagrad=limit_distance(lambda p, e=eps: AvaGrad(p, lr=gamma, eps=e), sgd(False), steps, seed, device),
            adam_fixed=limit_distance(lambda p, e=eps: torch.optim.Adam(p, lr=gamma, eps=e), sgd(True), steps, seed,
                                      device)))
    return rows


def limit_over_seeds(epss: Sequence[float], gamma: float, steps: int, seeds: Sequence[int],
                     device: str | torch.device = "cpu") -> dict[str, np.ndarray]:
    """:func:`limit_distances` for each of ``seeds``: per column of :data:`COLUMNS`, an array ``seeds x epss``."""
    if not seeds:
        raise ValueError("seeds must be non-empty")
    rows = [limit_distances(epss, gamma, steps, seed=s, device=device) for s in seeds]
    return {c: np.array([[r[c] for r in per_seed] for per_seed in rows]) for c in COLUMNS}

"""Meta-step time of the DCO rules: cvxpylayers (the thesis's path) vs the closed form, at p = 100 (Gautam 2024, 4.6).

One full-batch meta-step of Algorithm 7 with T = 1 (inner gradient, DCO step, validation loss, backward through
the step, RMSProp update) on least-squares tasks (4.22).  Both backends compute the same function (see
tests/test_dco.py); the ratio is what solving and differentiating one conic program per task costs.
"""

from __future__ import annotations

import numpy as np
import torch

from effcourse.dco.layers import DCOGeneralDescent, DCOGradient, DCOMomentum
from effcourse.dco.meta import meta_step_seconds
from effcourse.dco.tasks import least_squares_tasks


def main(quick: bool = False) -> dict[str, float]:
    p = 100
    n_tasks, repeats = (2, 1) if quick else (20, 5)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        tasks = least_squares_tasks(n_tasks, p=p, n=p, generator=torch.Generator().manual_seed(0))
        ratios = {}
        print(f"one meta-step, p = {p}, {n_tasks} tasks, median of {repeats} interleaved repeats")
        print(f"{'rule':8s} {'closed form':>12s} {'cvxpylayers':>12s} {'ratio':>8s}")
        for name, cls in (("DCOG", DCOGradient), ("DCOGD", DCOGeneralDescent), ("DCOM", DCOMomentum)):
            secs = meta_step_seconds({"closed": cls(p, backend="closed_form"), "cvx": cls(p, backend="cvxpylayers")},
                                     tasks, repeats=repeats)
            closed, cvx = float(np.median(secs["closed"])), float(np.median(secs["cvx"]))
            ratios[f"{name}_cvxpylayers_over_closed_form"] = cvx / closed
            print(f"{name:8s} {1e3 * closed:10.2f}ms {1e3 * cvx:10.1f}ms {cvx / closed:7.0f}x")
    finally:
        torch.set_default_dtype(old)
    return ratios


if __name__ == "__main__":
    main()

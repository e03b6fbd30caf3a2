"""A soft-shared conv as one weighted sum + one conv (eq. 3.11) against the template-layer view (eq. 3.12).

Both compute the same output; the second runs ``k`` convolutions and mixes their outputs. Ratios > 1 mean the
batched form is faster.
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F

from effcourse.soft_sharing.templates import SConv2d, TemplateBank


def _time(fn, repeats: int) -> float:
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t) / repeats


def main(quick: bool = False) -> dict[str, float]:
    torch.manual_seed(0)
    rounds, repeats = (3, 2) if quick else (7, 10)
    out = {}
    print(f"{'k':>3s} {'batched ms':>11s} {'k convs ms':>11s} {'ratio':>6s}")
    for k in ((2, 4) if quick else (2, 4, 8)):
        bank = TemplateBank(k, (32, 32, 3, 3))
        layer = SConv2d(bank, padding=1)
        x = torch.randn(32 if quick else 128, 32, 16, 16)
        with torch.no_grad():
            def batched(layer=layer, x=x):
                return layer(x)

            def template_view(layer=layer, x=x, t=bank.templates, k=k):
                return sum(layer.coefficients[i] * F.conv2d(x, t[i], padding=1) for i in range(k))

            assert torch.allclose(batched(), template_view(), atol=1e-3)
            a, b = [], []
            for _ in range(rounds):  # interleaved, so drifts in machine load hit both
                a.append(_time(batched, repeats))
                b.append(_time(template_view, repeats))
        ma, mb = statistics.median(a), statistics.median(b)
        out[f"k={k}"] = mb / ma
        print(f"{k:3d} {1e3 * ma:11.3f} {1e3 * mb:11.3f} {mb / ma:6.2f}")
    return out


if __name__ == "__main__":
    main()

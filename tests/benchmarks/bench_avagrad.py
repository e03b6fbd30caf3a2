"""AvaGrad's step time against torch.optim.Adam on the same parameters, measured in one run (ratios).

Goals (issues #2, #17): AvaGrad / Adam <= 1.2 on the multi-tensor (foreach) and per-tensor paths, and AvaGrad
(fused: the step compiled by torch.compile) / Adam(fused=True) <= 1.5.  Also measured: ours against
pytorch-optimizer's AvaGrad (the authors' variant, foreach), for information.
Run: `python tests/benchmarks/bench_avagrad.py [--device cuda]` or `make bench`.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from effcourse.avagrad import AvaGrad

GOALS = {"foreach": 1.2, "single_tensor": 1.2, "fused": 1.5}


def _params(total: int, device: str) -> list[torch.Tensor]:
    """A WRN-like mix of tensor sizes summing to about ``total`` parameters."""
    sizes, left = [], total
    shapes = [(640, 640, 3, 3), (320, 320, 3, 3), (160, 160, 3, 3), (640,), (320,), (64, 10), (10,)]
    i = 0
    while left > 0:
        shp = shapes[i % len(shapes)]
        n = 1
        for s in shp:
            n *= s
        if n > left:
            shp, n = (left,), left
        sizes.append(shp)
        left -= n
        i += 1
    g = torch.Generator().manual_seed(0)
    return [torch.randn(s, generator=g).to(device).requires_grad_() for s in sizes]


def _time_steps(opt: torch.optim.Optimizer, params, steps: int, device: str) -> float:
    for p in params:
        p.grad = torch.randn_like(p)
    opt.step()  # state allocation out of the timing
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        opt.step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps


def main(quick: bool = False, device: str = "cpu", total: int = 5_000_000) -> dict[str, float]:
    import pytorch_optimizer as po

    total = 50_000 if quick else total
    steps, repeats = (2, 1) if quick else (10, 7)
    cases = {
        "adam_foreach": lambda ps: torch.optim.Adam(ps, lr=1e-3, foreach=True),
        "avagrad_foreach": lambda ps: AvaGrad(ps, lr=0.1, foreach=True),
        "adam_single": lambda ps: torch.optim.Adam(ps, lr=1e-3, foreach=False),
        "avagrad_single": lambda ps: AvaGrad(ps, lr=0.1, foreach=False),
        "adam_fused": lambda ps: torch.optim.Adam(ps, lr=1e-3, fused=True),
        "avagrad_fused": lambda ps: AvaGrad(ps, lr=0.1, fused=True),
        "po_avagrad_foreach": lambda ps: po.AvaGrad(ps, lr=0.1, foreach=True),
    }
    params = {k: _params(total, device) for k in cases}
    opts = {k: f(params[k]) for k, f in cases.items()}
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(repeats):  # interleaved, so drifts in machine load hit every case alike
        for k in cases:
            times[k].append(_time_steps(opts[k], params[k], steps, device))
    med = {k: statistics.median(v) for k, v in times.items()}
    ratios = {"foreach": med["avagrad_foreach"] / med["adam_foreach"],
              "single_tensor": med["avagrad_single"] / med["adam_single"],
              "fused": med["avagrad_fused"] / med["adam_fused"],
              "vs_pytorch_optimizer": med["avagrad_foreach"] / med["po_avagrad_foreach"]}
    n = sum(p.numel() for p in params["adam_foreach"])
    print(f"AvaGrad vs Adam, {n / 1e6:.2f}M parameters in {len(params['adam_foreach'])} tensors, device {device}")
    for k, v in med.items():
        print(f"  {k:20s} {1e3 * v:8.3f} ms/step")
    for k, v in ratios.items():
        print(f"  ratio {k:20s} {v:6.2f}  " + (f"(goal <= {GOALS[k]})" if k in GOALS else "(information)"))
    return ratios


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    main(quick=a.quick, device=a.device)

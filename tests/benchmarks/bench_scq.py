"""Forward + backward time of the quantizers of chapter 4, as ratios to plain VQ measured in the same run.

Thesis (Table 5.1, GPU quantizer time): SCQ 7.42 ms vs VQ 4.45 ms on CIFAR-10, 1.7x.  Goal (issue #6): scalable
SCQ at most 3x VQ.  Cases: VQ (straight-through), scalable SCQ with the exact simplex projection (Michelot's
threshold iteration), scalable SCQ with the thesis's alternating projection (m=20), and exact SCQ (cvxpylayers,
only at a small n).
Run: ``python tests/benchmarks/bench_scq.py [--device cuda]`` or ``make bench``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from effcourse.scq.quantizers import make_quantizer


def _time_fwd_bwd(q: torch.nn.Module, z: torch.Tensor, device: str) -> float:
    """Seconds for one forward and backward pass (the decoder's gradient replaced by a fixed random tensor)."""
    g = torch.ones_like(z)
    q.zero_grad(set_to_none=True)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    zz = z.detach().requires_grad_(True)
    out = q(zz)
    ((out.z_q * g).sum() + out.loss).backward()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main(quick: bool = False, device: str = "cpu", dim: int = 16) -> dict[str, float]:
    # (batch N, latent side, K): n = N * side^2 latent vectors; the thesis's CIFAR-10 setting is 128 x 16 x 16, K=128.
    sizes = [(8, 4, 32)] if quick else [(128, 4, 128), (128, 16, 128), (32, 16, 512)]
    repeats = 1 if quick else 7
    kinds = {"vq": "vq", "scq_exactproj": "scq", "scq_alternating": "scq_alg9"}
    ratios: dict[str, float] = {}
    print(f"quantizer forward+backward, F={dim}, device {device}: median ms (ratio to VQ)")
    for n_img, side, k in sizes:
        torch.manual_seed(0)
        z = torch.randn(n_img, dim, side, side, device=device) * 0.1
        qs = {name: make_quantizer(kind, k, dim, steps=20, device=device) for name, kind in kinds.items()}
        for q in qs.values():
            _time_fwd_bwd(q, z, device)  # warm-up
        times: dict[str, list[float]] = {name: [] for name in qs}
        for _ in range(repeats):  # interleaved repeats: load drifts hit every case alike
            for name, q in qs.items():
                times[name].append(_time_fwd_bwd(q, z, device))
        med = {name: statistics.median(v) for name, v in times.items()}
        n = n_img * side * side
        row = "  ".join(f"{name} {1e3 * med[name]:8.2f} ({med[name] / med['vq']:5.1f}x)" for name in qs)
        print(f"  n={n:6d} K={k:4d}: {row}")
        for name in ("scq_exactproj", "scq_alternating"):
            ratios[f"{name}/vq n={n} K={k}"] = med[name] / med["vq"]
    # Exact SCQ (Alg. 8, cvxpylayers on the CPU) only on a few dozen vectors: it is one QP per vector.
    n_img, side, k = (1, 2, 8) if quick else (4, 4, 16)
    z = torch.randn(n_img, dim, side, side) * 0.1
    qv, qe = make_quantizer("vq", k, dim), make_quantizer("scq_exact", k, dim)
    _time_fwd_bwd(qv, z, "cpu"), _time_fwd_bwd(qe, z, "cpu")  # warm-up (cvxpy compiles the problem once)
    tv = statistics.median(_time_fwd_bwd(qv, z, "cpu") for _ in range(repeats))
    te = statistics.median(_time_fwd_bwd(qe, z, "cpu") for _ in range(max(1, repeats // 3)))
    n = n_img * side * side
    ratios[f"scq_exact/vq n={n} K={k}"] = te / tv
    print(f"  n={n:6d} K={k:4d}: vq {1e3 * tv:8.2f}  scq_exact {1e3 * te:8.2f} ({te / tv:7.0f}x, CPU, cvxpylayers)")
    print("  goal: scalable SCQ <= 3x VQ; thesis: 1.7x on GPU")
    return ratios


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    main(quick=a.quick, device=a.device)

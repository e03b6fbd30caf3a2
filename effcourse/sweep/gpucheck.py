"""``make gpu-check``: every chapter's full-scale dry run on a CUDA device, and the training throughput that
``sweep plan --throughput`` turns FLOPs into GPU-hours with.

For each chapter, the first run of each experiment of its ``--dry-run`` plan executes on the GPU (synthetic data in
the real formats, full-size models), printing its time and peak memory; then a WRN-28-10 trains for a few steps at
the thesis's batch of 128 on random images, and its achieved FLOP/s is printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from ..core.config import CHAPTER_PACKAGES


def throughput(steps: int = 20, batch: int = 128) -> tuple[float, float]:
    """``(steps/s, FLOP/s)`` of WRN-28-10 training steps (SGD, batch ``batch``) on the current CUDA device."""
    import torch

    from ..core.models import WideResNet
    from .spec import training_flops

    dev = torch.device("cuda")
    model = WideResNet(28, 10, 10).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = torch.randn(batch, 3, 32, 32, device=dev)
    y = torch.randint(0, 10, (batch,), device=dev)

    def step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    for _ in range(3):  # warm-up: cuDNN picks its algorithms
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    rate = steps / (time.perf_counter() - t0)
    return rate, rate * training_flops(lambda: WideResNet(28, 10, 10), (3, 32, 32), batch)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m effcourse.sweep.gpucheck", description=__doc__)
    ap.add_argument("chapters", nargs="*", default=list(CHAPTER_PACKAGES))
    a = ap.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print("gpu-check needs CUDA: torch.cuda.is_available() is False", file=sys.stderr)
        return 2
    from .runner import Sweep, execute_one, prepare_data

    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for ch in a.chapters:
            sw = Sweep(ch, 0, dry_run=True)
            from .store import Store

            Store(out, sw.chapter).open(sw.hash, sw.seed, True, sw.cfg, sw.specs)
            os.environ.pop("EFFCOURSE_DATA", None)
            data = prepare_data(sw, out, None)
            firsts = {}
            for s in sw.specs:
                if s.experiment not in firsts and not s.after:
                    firsts[s.experiment] = s
            for s in firsts.values():
                torch.cuda.reset_peak_memory_stats()
                t0 = time.perf_counter()
                run_id, state, msg = execute_one(sw.chapter, str(out), s.as_dict(), 0, True, "cuda", 1, False, data)
                dt = time.perf_counter() - t0
                peak = torch.cuda.max_memory_allocated() / 2**20
                failed += state != "done"
                print(f"{sw.chapter:<30} {run_id[:60]:<60} {state:<6} {dt:7.2f} s  peak {peak:8.1f} MiB"
                      + ("" if state == "done" else f"  {msg}"))
    rate, flops = throughput()
    print(f"WRN-28-10, batch 128: {rate:.2f} steps/s, {flops:.3e} FLOP/s "
          f"(sweep plan --throughput {flops:.2e})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

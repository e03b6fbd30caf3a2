"""Peak memory of a fine-tuning step, measured in a fresh process per method (Table 3.3 analogue).

A fresh interpreter per method is what makes the number trustworthy: peak counters only grow, and one process
that had run FO-Adam would report Adam's peak for everything after it.  On a CPU the child resets its high-water
mark after loading (``/proc/self/clear_refs``) and reads ``VmHWM``: the peak resident memory of the steps.  On a
GPU it reads ``torch.cuda.max_memory_allocated`` (what the thesis's ``nvidia-smi`` numbers contain, less the CUDA
context).  Both report the memory *above the libraries* (the interpreter, torch and transformers themselves are
not part of any method's cost) alongside the total.

Command line (used by :func:`peak_memory`): ``python -m effcourse.mezo.memory '<json arguments>'``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

__all__ = ["METHODS", "peak_memory", "peak_memory_table"]

METHODS = ("inference", "mezo", "mezo-svrg", "fo-sgd", "fo-adam")
ROOT = Path(__file__).resolve().parents[2]


def _status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"{key} not in /proc/self/status")


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _command(method: str, model: str, batch_size: int, seq_len: int, device: str, dtype: str,
             steps: int, seed: int = 0) -> list[str]:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"device must be 'cpu' or 'cuda[:N]'; got {device!r}")
    args = dict(method=method, model=model, batch_size=batch_size, seq_len=seq_len, device=device, dtype=dtype,
                steps=steps, seed=seed)
    return [sys.executable, "-m", "effcourse.mezo.memory", json.dumps(args)]


def _env() -> dict:
    # glibc serves large blocks from the heap once the dynamic mmap threshold has grown, and a fragmented heap keeps
    # freed blocks resident; a fixed threshold of 64 kB maps every tensor-sized block on its own and unmaps it when
    # freed, so the resident set follows the live tensors.
    return dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                MALLOC_MMAP_THRESHOLD_="65536")


def _result(method: str, returncode: int, stdout: str, stderr: str) -> dict:
    if returncode != 0:
        raise RuntimeError(f"memory measurement of {method} failed:\n{stderr[-3000:]}")
    return json.loads(stdout.strip().splitlines()[-1])


def peak_memory(method: str, model: str = "tiny-bert", batch_size: int = 16, seq_len: int = 128,
                device: str = "cpu", dtype: str = "float32", steps: int = 2, seed: int = 0,
                timeout: float = 600) -> dict:
    """Run ``steps`` steps of ``method`` in a fresh process; returns its memory record (MB).

    Keys: ``peak_mb`` (whole process, or all CUDA allocations), ``above_libs_mb`` (peak minus the memory after
    importing torch and transformers, before the model existed: weights plus what the method adds), ``step_mb``
    (peak minus the memory just before the first step), ``params_mb``, ``method``, ``device``.  ``seed`` draws the
    random inputs and the directions (the peak does not depend on it).
    """
    cmd = _command(method, model, batch_size, seq_len, device, dtype, steps, seed)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env(), cwd=str(ROOT))
    return _result(method, out.returncode, out.stdout, out.stderr)


def peak_memory_table(methods: Sequence[str] = METHODS, parallel: int = 1, **kwargs) -> dict[str, dict]:
    """:func:`peak_memory` for each method, one fresh process each, ``parallel`` at a time on a CPU.

    Each process's peak is its own (``VmHWM``), so running CPU measurements side by side changes only the wall
    time; on a GPU they run one after the other (side by side they would compete for the device's memory).
    """
    methods = list(methods)
    if parallel < 1:
        raise ValueError(f"parallel must be >= 1; got {parallel}")
    if kwargs.get("device", "cpu") != "cpu":
        parallel = 1
    timeout = kwargs.pop("timeout", 600)
    out: dict[str, dict] = {}
    for i in range(0, len(methods), parallel):
        group = methods[i:i + parallel]
        procs = {m: subprocess.Popen(_command(m, **{**dict(model="tiny-bert", batch_size=16, seq_len=128,
                                                          device="cpu", dtype="float32", steps=2, seed=0), **kwargs}),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
                                     cwd=str(ROOT)) for m in group}
        for m, p in procs.items():
            so, se = p.communicate(timeout=timeout)
            out[m] = _result(m, p.returncode, so, se)
    return out


def _mlp(width: int = 1024, depth: int = 4):
    layers = []
    for _ in range(depth):
        layers += [torch.nn.Linear(width, width), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers, torch.nn.Linear(width, 10))


def _child(args: dict) -> dict:
    import torch.nn.functional as F

    from .optim import MeZO, MeZOSVRG

    dev = torch.device(args["device"])
    dtype = getattr(torch, args["dtype"])
    cuda = dev.type == "cuda"
    if cuda:
        torch.cuda.init()
    if args["model"] != "mlp":
        import transformers  # noqa: F401  (the library's own memory is nobody's cost)
    # The first optimizer step pulls in more of torch (torch._dynamo hooks, ~70 MB): warm every code path on a
    # one-element tensor so that this import is counted with the libraries, not charged to the methods.
    w = torch.zeros(1, device=dev, requires_grad=True)
    for o in (torch.optim.SGD([w], lr=0.1), torch.optim.Adam([w], lr=0.1)):
        w.sum().backward()
        o.step()
    with torch.no_grad():
        MeZO([w], lr=0.1).step(lambda: w.sum())
        MeZOSVRG([w], 0.1, 0.1).step(lambda: w.sum(), lambda: w.sum())
    libs = torch.cuda.memory_allocated(dev) / 2**20 if cuda else _status_mb("VmRSS")
    g = torch.Generator().manual_seed(args.get("seed", 0))
    b, L = args["batch_size"], args["seq_len"]
    if args["model"] == "mlp":
        model = _mlp().to(dev, dtype).eval()
        x = {"input": torch.randn(b, 1024, generator=g).to(dev, dtype)}

        def logits():
            return model(x["input"]).float()
    else:
        from .pretrained import load_classifier

        model, _ = load_classifier(args["model"], dtype=dtype, device=dev)
        # Loaded weights can be pages of the mapped checkpoint file, which the kernel may count in the resident
        # set or not, and which an in-place update turns into private memory.  Copying them once makes the weights
        # ordinary private memory for every method alike.
        with torch.no_grad():
            for p in model.parameters():
                p.data = p.data.clone()
        vocab = model.config.vocab_size
        x = {"input_ids": torch.randint(4, vocab, (b, L), generator=g).to(dev),
             "attention_mask": torch.ones(b, L, dtype=torch.long, device=dev)}

        def logits():
            return model(**x).logits.float()
    y = torch.randint(0, 2, (b,), generator=g).to(dev)
    params = [p for p in model.parameters()]
    params_mb = sum(p.numel() * p.element_size() for p in params) / 2**20

    def loss():
        return F.cross_entropy(logits(), y)

    method = args["method"]
    if method.startswith("fo"):
        opt = (torch.optim.SGD(params, lr=1e-6) if method == "fo-sgd" else torch.optim.Adam(params, lr=1e-6))
    elif method == "mezo":
        opt = MeZO(params, lr=1e-6, seed=args.get("seed", 0))
    elif method == "mezo-svrg":
        opt = MeZOSVRG(params, lr_full=1e-6, lr_mini=1e-6, q=2, seed=args.get("seed", 0))
    if cuda:
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        start = torch.cuda.memory_allocated(dev) / 2**20
    else:
        start = _status_mb("VmRSS")
        reset = _reset_peak()
    for _ in range(args["steps"]):
        if method == "inference":
            with torch.no_grad():
                loss()
        elif method.startswith("fo"):
            opt.zero_grad(set_to_none=True)
            loss().backward()
            opt.step()
        elif method == "mezo":
            opt.step(loss)
        else:
            opt.step(loss, loss)
    if cuda:
        torch.cuda.synchronize(dev)
        peak = torch.cuda.max_memory_allocated(dev) / 2**20
    else:
        peak = _status_mb("VmHWM") if reset else max(_status_mb("VmHWM"), start)
    return dict(method=method, device=str(dev), peak_mb=peak, above_libs_mb=peak - libs, step_mb=peak - start,
                params_mb=params_mb)


if __name__ == "__main__":
    print(json.dumps(_child(json.loads(sys.argv[1]))))

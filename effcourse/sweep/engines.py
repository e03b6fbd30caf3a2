"""Where a sweep's runs execute: ``local`` (one worker process per visible GPU, one on a CPU) or ``ray``."""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import socket
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlparse

from .spec import RunSpec, SweepConfigError

__all__ = ["ENGINES", "check_ray_address", "local_devices", "ray_preflight", "run_local", "run_ray"]

ENGINES = ("local", "ray")
Report = Callable[[str, str, str], None]


def local_devices() -> list[str]:
    """One device per worker: every visible GPU, or the CPU."""
    import torch

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return [f"cuda:{i}" for i in range(n)] or ["cpu"]


def _worker(device: str, jobs: Any, done: Any, common: dict[str, Any]) -> None:
    from .runner import execute_one

    while True:
        try:
            spec = jobs.get_nowait()
        except queue.Empty:
            return
        done.put(execute_one(spec_dict=spec, device=device, **common))


def run_local(specs: Sequence[RunSpec], common: dict[str, Any], devices: Sequence[str], report: Report) -> None:
    """Run ``specs`` on ``devices``: in this process for one device, else one spawned worker per device."""
    from .runner import execute_one

    if len(devices) == 1:
        for s in specs:
            report(*execute_one(spec_dict=s.as_dict(), device=devices[0], **common))
        return
    ctx = mp.get_context("spawn")  # CUDA cannot be forked
    jobs, done = ctx.Queue(), ctx.Queue()
    for s in specs:
        jobs.put(s.as_dict())
    procs = [ctx.Process(target=_worker, args=(d, jobs, done, common), daemon=True) for d in devices]
    for p in procs:
        p.start()
    for _ in specs:
        while True:
            try:
                report(*done.get(timeout=5))
                break
            except queue.Empty:
                if not any(p.is_alive() for p in procs):
                    raise RuntimeError("every sweep worker died (killed?); re-run to resume") from None
    for p in procs:
        p.join()


def check_ray_address(address: str, timeout: float = 5.0) -> None:
    """Fail fast, naming the address, when nothing listens at a Ray head's ``host:port``."""
    if address == "auto" or address.startswith("local"):
        return
    u = urlparse(address if "://" in address else f"ray://{address}")
    host, port = u.hostname, u.port
    if not host or not port:
        raise SweepConfigError(f"--ray-address must look like HOST:PORT or ray://HOST:PORT; got {address!r}")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as e:
        raise SweepConfigError(f"cannot reach a Ray cluster at {address!r} ({e}); start one with `ray start --head` "
                               "or pass its address (--ray-address / RAY_ADDRESS)") from None


def ray_preflight(address: str | None) -> None:
    """Ray must be installed, and the cluster at ``address`` (or ``$RAY_ADDRESS``) reachable."""
    try:
        import ray  # noqa: F401
    except ImportError:
        raise SweepConfigError("--engine ray needs Ray: pip install -e '.[cluster]'") from None
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        check_ray_address(address)


def run_ray(specs: Sequence[RunSpec], common: dict[str, Any], address: str | None, report: Report,
            gpus_per_run: float | None = None) -> None:
    """Submit each run as a Ray task (``num_gpus=1`` where the cluster has GPUs) to the cluster at ``address``
    (or ``$RAY_ADDRESS``), or to a Ray started here when there is none."""
    ray_preflight(address)
    import ray

    from .runner import execute_one

    address = address or os.environ.get("RAY_ADDRESS") or None
    started_here = not ray.is_initialized()
    if started_here:
        kw: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
        if not address:
            kw.update(num_cpus=os.cpu_count() or 1, object_store_memory=200 * 2**20)
        ray.init(address=address, **kw)
    try:
        if gpus_per_run is None:
            gpus_per_run = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
        task = ray.remote(num_gpus=gpus_per_run, num_cpus=1, max_retries=0)(execute_one)
        device = "cuda" if gpus_per_run else "cpu"
        pending = {task.remote(spec_dict=s.as_dict(), device=device, **common): s for s in specs}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                spec = pending.pop(ref)
                try:
                    report(*ray.get(ref))
                except Exception as e:  # noqa: BLE001 - a worker that died is a failed run, the others go on
                    report(spec.run_id, "failed", f"Ray task died: {type(e).__name__}: {e}")
    finally:
        if started_here:
            ray.shutdown()

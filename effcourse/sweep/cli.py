"""``python -m effcourse.sweep plan|run|status``: a chapter's ``full`` experiments as a resumable sweep."""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path

from ..core.config import CHAPTER_PACKAGES
from ..core.numerics import PRECISIONS, Numerics
from .engines import ENGINES, local_devices, ray_preflight, run_local, run_ray
from .runner import H100_FLOPS, Sweep, prepare_data, ready, select
from .spec import SweepConfigError
from .store import STATES, Store


def _chapters(name: str) -> list[str]:
    return list(CHAPTER_PACKAGES) if name == "all" else [name]


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m effcourse.sweep",
                                 description="A chapter's full-scale experiments as a resumable sweep of runs.")
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p, out_required: bool):
        p.add_argument("chapter", help="chapter id or name (08-avagrad, avagrad), or 'all'")
        p.add_argument("--seed", type=int, default=0, help="base seed (the notebook's SEED; default 0)")
        p.add_argument("--dry-run", action="store_true",
                       help="the full configuration with epochs/steps cut to one or two, on synthetic data files in "
                            "the real formats unless --data or $EFFCOURSE_DATA is given")
        p.add_argument("--only", metavar="PATTERN", help="only runs whose id or experiment matches this glob")
        if out_required:
            p.add_argument("--out", required=True, type=Path, help="results folder (<out>/<chapter>/<run-id>/)")

    p = sub.add_parser("plan", help="list the runs and estimate GPU-hours")
    common(p, False)
    p.add_argument("--scale", choices=["full"], default="full", help="sweeps run the thesis's configuration")
    p.add_argument("--throughput", type=float, default=H100_FLOPS,
                   help=f"sustained FLOP/s of one GPU for the estimate (default {H100_FLOPS:.0e}: H100-class)")
    p.add_argument("--list", action="store_true", help="print every run id")
    p.add_argument("--markdown", action="store_true", help="one Markdown table row per chapter (the README's table)")

    p = sub.add_parser("run", help="execute the runs not yet finished")
    common(p, True)
    p.add_argument("--engine", choices=ENGINES, default="local")
    p.add_argument("--ray-address", help="Ray cluster (HOST:PORT or ray://HOST:PORT; default $RAY_ADDRESS, else a "
                                         "Ray started here)")
    p.add_argument("--data", help="data folder (default $EFFCOURSE_DATA)")
    p.add_argument("--devices", help="comma-separated devices for the local engine (default: every GPU, or cpu)")
    p.add_argument("--threads", type=int, help="torch threads per run (default $EFFCOURSE_THREADS or all cores "
                                               "for one worker, 1 for several)")
    p.add_argument("--retry-failed", action="store_true", help="also re-run the runs that failed")
    p.add_argument("--keep-checkpoints", action="store_true", help="keep a finished run's checkpoints")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="the training steps' precision: bf16 runs forward passes and losses under torch.autocast "
                        "(a GPU fast path; changes results in the last digits); default fp32")
    p.add_argument("--channels-last", action="store_true",
                   help="train convolutional models in the channels-last memory format (a GPU fast path)")

    p = sub.add_parser("status", help="done, running, failed, interrupted, pending")
    common(p, True)
    return ap


def _hours(h: float) -> str:
    return f"{h:,.1f}" if h >= 1 else f"{h:.2g}"


def plan_table(chapters: list[str], throughput: float = H100_FLOPS) -> str:
    """A Markdown table of each chapter's sweep: runs, experiments, GPU-hours, data (the README's table)."""
    rows = ["| chapter | runs | experiments | GPU-hours (FLOPs) | data | note |", "|---|---:|---|---:|---|---|"]
    total = 0.0
    for ch in chapters:
        sw = Sweep(ch)
        hours = sw.gpu_hours(throughput=throughput)
        total += hours
        exps = ", ".join(dict.fromkeys(s.experiment for s in sw.specs))
        rows.append(f"| {sw.chapter} | {len(sw.specs):,} | {exps} | {_hours(hours)} | {', '.join(sw.data) or '-'} | "
                    f"{getattr(sw.module, 'COST_NOTE', '')} |")
    rows.append(f"| all | | | {total:,.0f} | | |")
    return "\n".join(rows)


def cmd_plan(a) -> int:
    if a.markdown:
        print(plan_table(_chapters(a.chapter), a.throughput))
        return 0
    total = 0.0
    for ch in _chapters(a.chapter):
        sw = Sweep(ch, a.seed, a.dry_run)
        specs = select(sw.specs, a.only, sw.chapter)
        hours = sw.gpu_hours(specs, a.throughput)
        total += hours
        per = Counter(s.experiment for s in specs)
        print(f"{sw.chapter}: {len(specs)} runs, ~{_hours(hours)} GPU-hours at {a.throughput:.1e} FLOP/s "
              f"(config hash {sw.hash}{', dry run' if a.dry_run else ''})")
        for exp, n in per.items():
            h = sw.gpu_hours([s for s in specs if s.experiment == exp], a.throughput)
            print(f"  {exp:<28} {n:>6} runs  {_hours(h):>10} GPU-h")
        if sw.data:
            print(f"  data: {', '.join(sw.data)} under $EFFCOURSE_DATA")
        if getattr(sw.module, "COST_NOTE", ""):
            print(f"  note: {sw.module.COST_NOTE}")
        if a.list:
            for s in specs:
                print("   ", s.run_id)
    if a.chapter == "all":
        print(f"all chapters: ~{total:,.0f} GPU-hours")
    return 0


def cmd_run(a) -> int:
    from tqdm.auto import tqdm

    from ..core.harness import resolve_threads

    failed_total = 0
    if a.engine == "ray":  # before anything is written: Ray is there and its cluster answers
        ray_preflight(a.ray_address)
    for ch in _chapters(a.chapter):
        sw = Sweep(ch, a.seed, a.dry_run)
        specs = select(sw.specs, a.only, sw.chapter)
        store = Store(a.out, sw.chapter)
        numerics = Numerics(a.precision, a.channels_last).record()
        store.open(sw.hash, sw.seed, sw.dry_run, sw.cfg, sw.specs, numerics)
        data = prepare_data(sw, a.out.resolve(), a.data)
        states = store.states(specs)
        todo = states["pending"] + states["interrupted"] + (states["failed"] if a.retry_failed else [])
        if states["running"]:
            print(f"{sw.chapter}: {len(states['running'])} runs are running elsewhere; left to them")
        if states["failed"] and not a.retry_failed:
            print(f"{sw.chapter}: {len(states['failed'])} failed runs left as they are (--retry-failed re-runs them)")
        devices = a.devices.split(",") if a.devices else (["cpu"] if sw.dry_run or sw.device == "cpu"
                                                          else local_devices())
        threads = a.threads or (resolve_threads() if len(devices) == 1 else 1)
        common = dict(chapter=sw.chapter, out=str(a.out.resolve()), seed=sw.seed, dry_run=sw.dry_run,
                      threads=threads, keep_checkpoints=a.keep_checkpoints, data=data, numerics=numerics)
        bar = tqdm(total=len(specs), initial=len(states["done"]), desc=sw.chapter, unit="run")
        failures: list[str] = []
        finished: list[str] = []

        def report(run_id: str, state: str, message: str, bar=bar, failures=failures, finished=finished) -> None:
            bar.update(1)
            finished.append(run_id)
            if state == "failed":
                failures.append(run_id)
                bar.write(f"FAILED {run_id}: {message}")

        waiting: list = []
        try:
            while todo:  # in waves: a run starts once the experiments it waits for (spec.after) are done
                runnable, waiting = ready(sw, store, todo)
                if not runnable:
                    break
                if a.engine == "ray":
                    run_ray(runnable, common, a.ray_address, report, gpus_per_run=0.0 if sw.device else None)
                else:
                    run_local(runnable, common, devices, report)
                todo = waiting
        finally:
            bar.close()
        print(f"{sw.chapter}: {len(finished) - len(failures)} runs finished, {len(failures)} failed; results in "
              f"{store.root}")
        if waiting:
            exps = sorted({e for s in waiting for e in s.after})
            print(f"{sw.chapter}: {len(waiting)} runs wait for unfinished experiments {exps}; re-run when they are "
                  "done")
            failed_total += len(waiting)
        failed_total += len(failures)
    return 1 if failed_total else 0


def cmd_status(a) -> int:
    for ch in _chapters(a.chapter):
        sw = Sweep(ch, a.seed, a.dry_run)
        store = Store(a.out, sw.chapter)
        m = store.manifest()
        if m is None:
            raise SweepConfigError(f"no sweep of {sw.chapter} in {store.out} (nothing run there yet)")
        if m["config_hash"] != sw.hash:
            raise SweepConfigError(f"{store.root} holds config hash {m['config_hash']} (base seed {m['seed']}, "
                                   f"dry_run={m['dry_run']}); --seed/--dry-run give {sw.hash}")
        states = store.states(select(sw.specs, a.only, sw.chapter))
        print(f"{sw.chapter}: " + ", ".join(f"{len(states[k])} {k}" for k in STATES))
        for spec in states["failed"]:
            print(f"  failed  {spec.run_id}: {store.state(spec)[1].get('error', '')}")
        for spec in states["running"]:
            info = store.state(spec)[1]
            print(f"  running {spec.run_id} on {info.get('host')} (pid {info.get('pid')}, since {info.get('started')})")
    return 0


def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    try:
        return {"plan": cmd_plan, "run": cmd_run, "status": cmd_status}[a.cmd](a)
    except SweepConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())

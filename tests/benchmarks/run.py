"""`make bench`: every benchmark in one run, one table of ratios against their goals; exit 1 where a goal is missed.

Each ``bench_*.py`` has ``main(quick) -> {ratio name: value}`` and may name upper bounds in ``GOALS``; ratios
without a goal are shown for information.  Times are never compared across machines: each ratio is measured
against a peer in the same run.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="each benchmark's quick mode (seconds; goals not judged)")
    ap.add_argument("only", nargs="*", help="benchmark names (e.g. avagrad scq); default all")
    a = ap.parse_args(argv)
    rows, missed = [], 0
    for path in sorted(HERE.glob("bench_*.py")):
        name = path.stem[len("bench_"):]
        if a.only and name not in a.only:
            continue
        print(f"== {path.name}", flush=True)
        mod = load(path)
        ratios = mod.main(quick=a.quick)
        goals = getattr(mod, "GOALS", {})
        for key, value in ratios.items():
            goal = goals.get(key)
            ok = None if goal is None or a.quick else value <= goal
            missed += ok is False
            rows.append((name, key, value, goal, ok))
    print("\n| benchmark | ratio | value | goal | met |\n|---|---|---:|---:|---|")
    for name, key, value, goal, ok in rows:
        met = "-" if ok is None else ("yes" if ok else "**no**")
        bound = f"<= {goal:g}" if goal is not None else "-"
        print(f"| {name} | {key} | {value:.2f} | {bound} | {met} |")
    if missed:
        print(f"\n{missed} goal(s) missed", file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())

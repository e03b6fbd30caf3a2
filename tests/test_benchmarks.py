"""Every benchmark runs in its quick mode (no timing is asserted: timing lives in `make bench`)."""

import importlib.util
import math
from pathlib import Path

import pytest

BENCH = sorted((Path(__file__).resolve().parent / "benchmarks").glob("bench_*.py"))


@pytest.mark.parametrize("path", BENCH, ids=[p.stem for p in BENCH])
def test_benchmark_quick_mode_runs(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    ratios = mod.main(quick=True)
    assert ratios and all(math.isfinite(v) and v > 0 for v in ratios.values())

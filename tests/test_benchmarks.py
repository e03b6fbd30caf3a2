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
    goals = getattr(mod, "GOALS", {})
    assert set(goals) <= set(ratios), f"goals for ratios the benchmark does not measure: {set(goals) - set(ratios)}"
    assert all(isinstance(g, (int, float)) and g > 0 for g in goals.values())


def test_bench_runner_prints_one_table_and_fails_on_a_missed_goal(tmp_path, monkeypatch, capsys):
    runner = importlib.util.spec_from_file_location("bench_run", BENCH[0].parent / "run.py")
    mod = importlib.util.module_from_spec(runner)
    runner.loader.exec_module(mod)
    (tmp_path / "bench_fast.py").write_text("GOALS = {'a': 1.2, 'b': 2.0}\n"
                                           "def main(quick=False):\n    return {'a': 1.1, 'b': 2.5, 'c': 9.0}\n")
    monkeypatch.setattr(mod, "HERE", tmp_path)
    assert mod.main([]) == 1
    out = capsys.readouterr()
    assert "| fast | a | 1.10 | <= 1.2 | yes |" in out.out and "| fast | b | 2.50 | <= 2 | **no** |" in out.out
    assert "| fast | c | 9.00 | - | - |" in out.out and "1 goal(s) missed" in out.err

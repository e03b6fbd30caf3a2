"""Chapter regression runs: every written chapter executed at smoke scale, its metrics against a baseline."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from effcourse.book.notebooks import chapters, check_pair

ROOT = Path(__file__).resolve().parents[2]
BASELINES = ROOT / "tests" / "baselines"
WRITTEN = [c.id for c in chapters(ROOT, written_only=True)]
DEFAULT_RTOL, DEFAULT_ATOL = 0.05, 1e-6


def test_every_chapter_folder_is_a_pair_or_a_placeholder():
    found = chapters(ROOT)
    assert [c.id for c in found] == [
        "01-implicit-models", "02-mezo-svrg", "03-dco", "04-scq", "05-soft-sharing",
        "06-continuous-sparsification", "07-smol", "08-avagrad"]
    for c in found:
        assert c.written or c.placeholder.exists(), f"{c.folder} has neither {c.source.name} nor a placeholder"
        assert not (c.written and c.placeholder.exists()), f"{c.folder}: remove the placeholder of a written chapter"


@pytest.mark.parametrize("chapter", WRITTEN)
def test_pair_in_sync_and_outputs_only_in_marked_cells(chapter):
    ch = next(c for c in chapters(ROOT) if c.id == chapter)
    assert check_pair(ch) == []


@pytest.mark.parametrize("chapter", WRITTEN)
def test_parameters_cell(chapter):
    ch = next(c for c in chapters(ROOT) if c.id == chapter)
    from effcourse.book.notebooks import read_source

    params = [c for c in read_source(ch).cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, "exactly one cell tagged 'parameters'"
    src = params[0].source
    for name in ("SCALE", "SEED", "DEVICE"):
        assert f"{name} =" in src, f"parameters cell lacks {name}"
    assert "EFFCOURSE_SCALE" in src


def _compare(metrics: dict, baseline: dict) -> list[str]:
    problems = []
    for name, spec in baseline["metrics"].items():
        if name not in metrics:
            problems.append(f"metric {name!r} is in the baseline but was not recorded")
            continue
        got, want = metrics[name], spec["value"]
        rtol, atol = spec.get("rtol", DEFAULT_RTOL), spec.get("atol", DEFAULT_ATOL)
        if not (math.isfinite(got) and abs(got - want) <= atol + rtol * abs(want)):
            problems.append(f"{name}: {got!r} vs baseline {want!r} (rtol {rtol}, atol {atol})")
    for name in metrics:
        if name not in baseline["metrics"]:
            problems.append(f"metric {name!r} has no baseline (refresh with --update-baselines on purpose)")
    return problems


@pytest.mark.slow
@pytest.mark.parametrize("chapter", WRITTEN)
def test_chapter_smoke_regression(chapter, smoke_runs, request):
    res = smoke_runs.get(chapter)
    if isinstance(res, Exception):
        pytest.fail(f"{chapter} failed at smoke scale: {type(res).__name__}: {str(res)[-3000:]}")
    _, metrics_path = res
    rec = json.loads(metrics_path.read_text())
    assert rec["chapter"] == chapter and rec["scale"] == "smoke" and rec["seed"] == 0
    assert rec["claims"], "a chapter records at least one claim"
    failed = [c["name"] for c in rec["claims"] if c["asserted"] and not c["held"]]
    assert not failed, f"claims failed: {failed}"
    path = BASELINES / f"{chapter}.json"
    if request.config.getoption("--update-baselines"):
        old = json.loads(path.read_text())["metrics"] if path.exists() else {}
        new = {k: {"value": v, "rtol": old.get(k, {}).get("rtol", DEFAULT_RTOL),
                   "atol": old.get(k, {}).get("atol", DEFAULT_ATOL)} for k, v in sorted(rec["metrics"].items())}
        path.write_text(json.dumps({"chapter": chapter, "scale": "smoke", "seed": 0, "metrics": new}, indent=1)
                        + "\n")
    assert path.exists(), f"no baseline {path} (create it with --update-baselines)"
    baseline = json.loads(path.read_text())
    assert baseline["scale"] == "smoke" and baseline["seed"] == 0
    assert _compare(rec["metrics"], baseline) == []

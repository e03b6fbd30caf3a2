"""Chapter regression runs: every written chapter executed at smoke scale, its metrics against a baseline."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from effcourse.book.notebooks import NBVAL_MARK, chapters, check_pair, marked_output_differences

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


def _unasserted_claim_metrics(rec: dict) -> set[str]:
    return {f"claim/{c['name']}" for c in rec["claims"] if not c["asserted"]}


def _compare(metrics: dict, baseline: dict, skip: set[str] = frozenset()) -> list[str]:
    """Differences between this run's metrics and the baseline's.

    A baseline entry is ``{"value": v, "rtol": r, "atol": a}`` (defaults 0.05 and 1e-6), or, for exactness values
    near machine precision, ``{"value": v, "log10_atol": d}``: compared in decades.  A tolerance looser than the
    defaults carries a ``"why"``.  Metrics in ``skip`` (claims not asserted at smoke) are not compared.
    """
    problems = []
    for name, spec in baseline["metrics"].items():
        if name in skip:
            problems.append(f"metric {name!r} belongs to a claim not asserted at smoke: drop it from the baseline")
            continue
        if name not in metrics:
            problems.append(f"metric {name!r} is in the baseline but was not recorded")
            continue
        got, want = metrics[name], spec["value"]
        if "log10_atol" in spec:
            d = spec["log10_atol"]
            ok = got > 0 and want > 0 and abs(math.log10(got) - math.log10(want)) <= d
            if not ok:
                problems.append(f"{name}: {got!r} vs baseline {want!r} (within {d} decades)")
            continue
        rtol, atol = spec.get("rtol", DEFAULT_RTOL), spec.get("atol", DEFAULT_ATOL)
        if not (math.isfinite(got) and abs(got - want) <= atol + rtol * abs(want)):
            problems.append(f"{name}: {got!r} vs baseline {want!r} (rtol {rtol}, atol {atol})")
    for name in metrics:
        if name not in baseline["metrics"] and name not in skip:
            problems.append(f"metric {name!r} has no baseline (refresh with --update-baselines on purpose)")
    return problems


@pytest.mark.parametrize("chapter", WRITTEN)
def test_baseline_tolerances_are_justified(chapter):
    baseline = json.loads((BASELINES / f"{chapter}.json").read_text())
    loose = [name for name, spec in baseline["metrics"].items()
             if (spec.get("rtol", DEFAULT_RTOL) > DEFAULT_RTOL or spec.get("atol", DEFAULT_ATOL) > DEFAULT_ATOL
                 or "log10_atol" in spec) and not str(spec.get("why", "")).strip()]
    assert not loose, f"tolerances looser than rtol {DEFAULT_RTOL}/atol {DEFAULT_ATOL} need a 'why': {loose}"


def test_compare_in_decades_and_skipping():
    base = {"metrics": {"err": {"value": 1e-15, "log10_atol": 1.0}, "acc": {"value": 0.5}}}
    assert _compare({"err": 5e-15, "acc": 0.5}, base) == []
    assert "decades" in _compare({"err": 5e-13, "acc": 0.5}, base)[0]
    assert "decades" in _compare({"err": 0.0, "acc": 0.5}, base)[0]
    assert "0.6" in _compare({"err": 1e-15, "acc": 0.6}, base)[0]
    assert _compare({"err": 1e-15, "acc": 0.5, "claim/x": 3.0}, base, skip={"claim/x"}) == []
    assert "not asserted" in _compare({"acc": 0.5}, {"metrics": {"acc": {"value": 0.5}, "claim/x": {"value": 1}}},
                                      skip={"claim/x"})[0]


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
    assert rec["experiment_seeds"], "every experiment derives its seeds from SEED through run.seeds()"
    assert all(s // 1000 == rec["seed"] for s in rec["experiment_seeds"]), rec["experiment_seeds"]
    assert {c["kind"] for c in rec["claims"]} <= {"math", "empirical"}
    failed = [c["name"] for c in rec["claims"] if c["asserted"] and not c["held"]]
    assert not failed, f"claims failed: {failed}"
    path = BASELINES / f"{chapter}.json"
    if request.config.getoption("--update-baselines"):
        old = json.loads(path.read_text())["metrics"] if path.exists() else {}
        skip = _unasserted_claim_metrics(rec)
        new = {}
        for k, v in sorted(rec["metrics"].items()):
            if k in skip:
                continue
            spec = {key: val for key, val in old.get(k, {}).items() if key != "value"}
            new[k] = {"value": v, **(spec or {"rtol": DEFAULT_RTOL, "atol": DEFAULT_ATOL})}
        path.write_text(json.dumps({"chapter": chapter, "scale": "smoke", "seed": 0, "metrics": new}, indent=1)
                        + "\n")
    assert path.exists(), f"no baseline {path} (create it with --update-baselines)"
    baseline = json.loads(path.read_text())
    assert baseline["scale"] == "smoke" and baseline["seed"] == 0
    assert _compare(rec["metrics"], baseline, _unasserted_claim_metrics(rec)) == []


@pytest.mark.slow
@pytest.mark.parametrize("chapter", WRITTEN)
def test_marked_cells_reproduce_their_stored_outputs(chapter, smoke_runs):
    """nbval's check (``--nbval-lax``) on the suite's one smoke execution, not on an execution of its own."""
    res = smoke_runs.get(chapter)
    if isinstance(res, Exception):
        pytest.fail(f"{chapter} failed at smoke scale: {type(res).__name__}: {str(res)[-3000:]}")
    ch = next(c for c in chapters(ROOT) if c.id == chapter)
    assert marked_output_differences(ch.notebook, res[0]) == []


def test_marked_output_comparison_is_nbvals(tmp_path):
    import itertools

    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    names = itertools.count()

    def nb(text, png="AAAA", extra=(), stored=False):
        outputs = [new_output("stream", name="stdout", text=part) for part in (text[:3], text[3:])]
        if not stored:  # `sync` stores no display_data; an execution has the figure
            outputs.append(new_output("display_data", data={"image/png": png, "text/plain": "<Figure>"}))
        book = new_notebook(cells=[new_code_cell("x = 1"), new_code_cell(f"{NBVAL_MARK}\nprint(1)",
                                                                         outputs=outputs + list(extra))])
        path = tmp_path / f"{next(names)}.ipynb"
        nbformat.write(book, path)
        return path

    stored = nb("abcdef\n", stored=True)
    assert marked_output_differences(stored, nb("abcdef\n", png="BBBB")) == []  # chunks coalesced; figures shown
    diff = marked_output_differences(stored, nb("abcdeX\n"))
    assert len(diff) == 1 and "abcdeX" in diff[0] and "abcdef" in diff[0]
    result = new_output("execute_result", data={"text/plain": "2"}, execution_count=1)
    assert "output fields" in marked_output_differences(stored, nb("abcdef\n", extra=[result]))[0]

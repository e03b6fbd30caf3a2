"""Every chapter's ``full`` path on a CPU: ``sweep plan``, ``sweep run --dry-run`` of all its runs on synthetic
files in the real formats (full-size models, one or two epochs), and the notebook at ``full`` reading those results."""

from __future__ import annotations

import json

import pytest

from effcourse.core.config import CHAPTER_PACKAGES
from effcourse.sweep import DRY_RUN_ENV, RESULTS_ENV, Store, Sweep
from effcourse.sweep.cli import main as sweep_main

CHAPTERS = list(CHAPTER_PACKAGES)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_plan_lists_the_thesis_runs_with_a_gpu_hours_estimate(chapter, capsys):
    assert sweep_main(["plan", chapter]) == 0
    out = capsys.readouterr().out
    sw = Sweep(chapter)
    assert f"{chapter}: {len(sw.specs)} runs" in out
    hours = sw.gpu_hours()
    assert 0 < hours < 1e5, hours  # a real estimate: positive, and not absurd
    dry = Sweep(chapter, dry_run=True)
    assert dry.hash != sw.hash and {s.experiment for s in dry.specs} == {s.experiment for s in sw.specs}


@pytest.mark.slow
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_dry_run_executes_every_run_and_the_notebook_at_full_reads_them(chapter, tmp_path, monkeypatch):
    from effcourse.book.notebooks import execute, find_chapter

    monkeypatch.delenv("EFFCOURSE_DATA", raising=False)
    out = tmp_path / "results"
    assert sweep_main(["run", chapter, "--out", str(out), "--dry-run", "--threads", "1"]) == 0
    sw, store = Sweep(chapter, dry_run=True), Store(out, chapter)
    states = store.states(sw.specs)
    assert len(states["done"]) == len(sw.specs), {k: [s.run_id for s in v] for k, v in states.items() if v}
    for spec in sw.specs[:3]:
        rec = store.result(spec)
        assert rec["spec"]["run_id"] == spec.run_id and rec["result"], rec
        assert not list(store.run_dir(spec).glob("checkpoint-*.pt"))  # removed once the run is done
    # a second `run` finds nothing to do
    assert sweep_main(["run", chapter, "--out", str(out), "--dry-run", "--threads", "1"]) == 0
    monkeypatch.setenv(RESULTS_ENV, str(out))
    monkeypatch.setenv(DRY_RUN_ENV, "1")
    if sw.data:
        monkeypatch.setenv("EFFCOURSE_DATA", str(out / chapter / "synthetic-data"))
    ex = execute(find_chapter(chapter), "full", seed=0, out_dir=tmp_path / "executed", device="cpu", threads=1,
                 claims="report")
    record = json.loads(ex.metrics.read_text())
    assert record["scale"] == "full" and record["claims"], record.get("claims")

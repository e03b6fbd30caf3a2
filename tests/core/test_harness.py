import json

import pytest
import torch

from effcourse import ClaimFailed, Run, config, resolve_device, resolve_scale, seed_everything
from effcourse.book.notebooks import chapters
from effcourse.core.config import CHAPTER_PACKAGES, SCALES, package_name


def test_scale_resolution(monkeypatch):
    monkeypatch.delenv("EFFCOURSE_SCALE", raising=False)
    assert resolve_scale() == "book"
    monkeypatch.setenv("EFFCOURSE_SCALE", "full")
    assert resolve_scale() == "full"
    assert resolve_scale("smoke") == "smoke"
    with pytest.raises(ValueError, match="scale must be one of"):
        resolve_scale("huge")


def test_device_resolution():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            resolve_device("cuda")


def test_seeding_repeats_bit_for_bit():
    seed_everything(3)
    a = torch.nn.Linear(5, 5).weight.detach().clone(), torch.randn(4)
    seed_everything(3)
    b = torch.nn.Linear(5, 5).weight.detach().clone(), torch.randn(4)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(ValueError, match="seed"):
        seed_everything(-1)


def test_claims_record_assert_and_write(tmp_path, monkeypatch):
    monkeypatch.delenv("EFFCOURSE_CLAIMS", raising=False)
    path = tmp_path / "m.json"
    run = Run("08-avagrad", scale="smoke", seed=1, device="cpu", metrics_path=path)
    run.metric("x", torch.tensor(2.5))
    assert run.claim("easy", True, kind="math", thesis="t", ours="o", value=1.0) is True
    # below min_scale a failing claim is shown, not asserted
    assert run.claim("later", False, kind="empirical", thesis="t", ours="o", min_scale="book") is False
    # a reported claim is never asserted, at any scale
    run.claim("shown", False, kind="empirical", thesis="t", ours="o", assert_claim=False)
    with pytest.raises(ClaimFailed, match="hard"):
        run.claim("hard", False, kind="empirical", thesis="t", ours="o")
    rec = json.loads(path.read_text())  # written before the failure was raised
    assert rec["chapter"] == "08-avagrad" and rec["scale"] == "smoke" and rec["seed"] == 1
    assert [(c["name"], c["kind"], c["held"], c["asserted"], c["reported"]) for c in rec["claims"]] == [
        ("easy", "math", True, True, False), ("later", "empirical", False, False, False),
        ("shown", "empirical", False, False, True), ("hard", "empirical", False, True, False)]
    assert rec["metrics"] == {"x": 2.5, "claim/easy": 1.0}
    md = run.claims_markdown()
    assert "| easy |" in md and "not asserted at smoke" in md and "reported, not asserted" in md and "**no**" in md
    # empirical rows and checks of the mathematics are shown apart, empirical first
    assert md.index("Empirical claims") < md.index("| later |") < md.index("Checks of the mathematics") < md.index(
        "| easy |")
    with pytest.raises(TypeError, match="real number"):
        run.metric("bad", "1")
    with pytest.raises(ValueError, match="min_scale"):
        run.claim("x", True, kind="math", thesis="", ours="", min_scale="medium")
    with pytest.raises(ValueError, match="kind must be one of"):
        run.claim("x", True, kind="theory", thesis="", ours="")
    with pytest.raises(TypeError, match="kind"):
        run.claim("x", True, thesis="", ours="")


def test_report_mode_records_failed_claims_without_raising(tmp_path, monkeypatch):
    monkeypatch.setenv("EFFCOURSE_CLAIMS", "report")
    run = Run("08-avagrad", scale="smoke", seed=1, device="cpu", metrics_path=tmp_path / "m.json")
    assert run.claim("hard", False, kind="empirical", thesis="t", ours="o") is False
    rec = json.loads((tmp_path / "m.json").read_text())
    assert rec["claims"][0]["asserted"] and not rec["claims"][0]["held"]
    monkeypatch.setenv("EFFCOURSE_CLAIMS", "maybe")
    with pytest.raises(ValueError, match="EFFCOURSE_CLAIMS must be one of"):
        Run("08-avagrad", scale="smoke", seed=1, device="cpu")


def test_experiment_seeds_derive_from_the_base_seed_and_are_recorded(tmp_path):
    run = Run("08-avagrad", scale="smoke", seed=7, device="cpu", metrics_path=tmp_path / "m.json")
    assert run.seeds(3) == [7000, 7001, 7002]
    assert run.seeds(2, offset=10) == [7010, 7011]
    g = run.generator_for(20)
    assert torch.equal(torch.randn(3, generator=g), torch.randn(3, generator=torch.Generator().manual_seed(7020)))
    rec = json.loads((tmp_path / "m.json").read_text())
    assert rec["experiment_seeds"] == [7000, 7001, 7002, 7010, 7011, 7020]
    # two base seeds never share an experiment seed
    assert not set(Run("08-avagrad", scale="smoke", seed=8, device="cpu").seeds(999)) & set(run.seeds(999))
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="k must be a non-negative int"):
            run.seeds(bad)
    with pytest.raises(ValueError, match="at most 1000"):
        run.seeds(5, offset=998)


def test_threads_are_set_explicitly_and_recorded(tmp_path, monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("EFFCOURSE_THREADS", "2")
        run = Run("08-avagrad", scale="smoke", seed=0, device="cpu", metrics_path=tmp_path / "m.json")
        assert torch.get_num_threads() == 2 and run.threads == 2
        assert json.loads((tmp_path / "m.json").read_text())["env"]["threads"] == 2
        assert Run("08-avagrad", scale="smoke", device="cpu", threads=1).threads == 1 == torch.get_num_threads()
        for bad in ("0", "two", "1.5"):
            monkeypatch.setenv("EFFCOURSE_THREADS", bad)
            with pytest.raises(ValueError, match="threads must be a positive int"):
                Run("08-avagrad", scale="smoke", device="cpu")
    finally:
        torch.set_num_threads(before)


def test_every_written_chapter_has_three_scales_with_the_same_keys():
    for ch in chapters(written_only=True):
        cfgs = [config(ch.id, s) for s in SCALES]
        assert set(cfgs[0]) == set(cfgs[1]) == set(cfgs[2]), ch.id


def test_config_errors():
    assert package_name("06-continuous-sparsification") == "sparsification"
    assert package_name("continuous-sparsification") == "sparsification"
    with pytest.raises(ValueError, match="no chapter"):
        config("99-nothing", "book")
    with pytest.raises(ValueError, match="scale"):
        config("08-avagrad", "medium")
    cfg = config("08-avagrad", "smoke")
    with pytest.raises(AttributeError, match="no key"):
        _ = cfg.nonexistent
    with pytest.raises(AttributeError, match="read-only"):
        cfg.grid_epochs = 3
    assert cfg.replace(grid_epochs=7).grid_epochs == 7
    with pytest.raises(KeyError):
        cfg.replace(nonexistent=1)


def test_every_chapter_has_its_own_subpackage_with_its_config():
    import importlib

    assert list(CHAPTER_PACKAGES) == [c.id for c in chapters()]
    for pkg in CHAPTER_PACKAGES.values():
        assert importlib.import_module(f"effcourse.{pkg}.config").SMOKE


def test_run_table_renders_markdown():
    run = Run("08-avagrad", scale="smoke")
    t = run.table([{"a": 1, "b": 0.5}])
    assert t._repr_markdown_().splitlines()[0] == "| a | b |"


def test_full_scale_reads_the_sweep_and_names_the_command_when_it_is_missing(monkeypatch, tmp_path):
    from effcourse.sweep import SweepResultsMissing

    monkeypatch.delenv("EFFCOURSE_RESULTS", raising=False)
    monkeypatch.delenv("EFFCOURSE_DRY_RUN", raising=False)
    # chapter 8's full configuration is a sweep of thousands of WRN trainings: the notebook never starts them inline
    with pytest.raises(SweepResultsMissing, match="python -m effcourse.sweep run 08-avagrad --out results"):
        Run("08-avagrad", scale="full", device="cpu")
    monkeypatch.setenv("EFFCOURSE_RESULTS", str(tmp_path))
    with pytest.raises(SweepResultsMissing, match=f"no sweep of 08-avagrad in {tmp_path}"):
        Run("08-avagrad", scale="full", seed=2, device="cpu")
    with pytest.raises(ValueError, match="at scale 'full' only"):
        Run("08-avagrad", scale="smoke").sweep_results()


def test_configs_hold_seed_counts_never_seed_lists():
    """SEED is the one source of randomness: a configuration says how many seeds, ``run.seeds`` says which."""
    bad = []
    for chapter in CHAPTER_PACKAGES:
        for scale in SCALES:
            for key, value in config(chapter, scale).items():
                if "seed" in key.lower() and not (isinstance(value, int) and not isinstance(value, bool)):
                    bad.append(f"{chapter}/{scale}: {key}={value!r}")
    assert not bad, bad

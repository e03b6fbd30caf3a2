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


def test_claims_record_assert_and_write(tmp_path):
    path = tmp_path / "m.json"
    run = Run("08-avagrad", scale="smoke", seed=1, device="cpu", metrics_path=path)
    run.metric("x", torch.tensor(2.5))
    run.claim("easy", True, thesis="t", ours="o", value=1.0)
    # below min_scale a failing claim is shown, not asserted
    run.claim("later", False, thesis="t", ours="o", min_scale="book")
    with pytest.raises(ClaimFailed, match="hard"):
        run.claim("hard", False, thesis="t", ours="o")
    rec = json.loads(path.read_text())  # written before the failure was raised
    assert rec["chapter"] == "08-avagrad" and rec["scale"] == "smoke" and rec["seed"] == 1
    assert [(c["name"], c["held"], c["asserted"]) for c in rec["claims"]] == [
        ("easy", True, True), ("later", False, False), ("hard", False, True)]
    assert rec["metrics"] == {"x": 2.5, "claim/easy": 1.0}
    md = run.claims_markdown()
    assert "| easy |" in md and "not asserted at smoke" in md and "**no**" in md
    with pytest.raises(TypeError, match="real number"):
        run.metric("bad", "1")
    with pytest.raises(ValueError, match="min_scale"):
        run.claim("x", True, thesis="", ours="", min_scale="medium")


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

"""Deterministic kernels vs the GPU's fast paths, and fit's precision and memory format (effcourse.core.numerics)."""

import pytest
import torch
from torch import nn

from effcourse.core.data import Split
from effcourse.core.harness import Run
from effcourse.core.numerics import (
    Numerics,
    current_numerics,
    resolve_deterministic,
    set_deterministic,
    training_numerics,
)
from effcourse.core.train import fit


@pytest.fixture(autouse=True)
def _restore_kernels():
    yield
    set_deterministic(True)  # what the rest of the suite runs with


def test_deterministic_below_full_fast_at_full_and_the_environment_overrides(monkeypatch):
    monkeypatch.delenv("EFFCOURSE_DETERMINISTIC", raising=False)
    assert resolve_deterministic(None, "smoke") and resolve_deterministic(None, "book")
    assert not resolve_deterministic(None, "full")
    monkeypatch.setenv("EFFCOURSE_DETERMINISTIC", "on")
    assert resolve_deterministic(None, "full")
    assert resolve_deterministic(False, "smoke") is False and resolve_deterministic("0", "book") is False
    with pytest.raises(ValueError, match="EFFCOURSE_DETERMINISTIC"):
        resolve_deterministic("maybe", "full")


def test_set_deterministic_switches_every_flag(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    set_deterministic(False)
    assert not torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.benchmark
    assert torch.backends.cuda.matmul.fp32_precision == "tf32" and torch.backends.cudnn.conv.fp32_precision == "tf32"
    set_deterministic(True)
    assert torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.benchmark
    assert torch.backends.cudnn.deterministic and torch.backends.cuda.matmul.fp32_precision == "ieee"
    import os

    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    with pytest.raises(TypeError, match="on must be a bool"):
        set_deterministic("yes")


def test_run_resolves_and_records_the_switch(monkeypatch, tmp_path):
    monkeypatch.delenv("EFFCOURSE_DETERMINISTIC", raising=False)
    run = Run("04-scq", scale="smoke", metrics_path=tmp_path / "m.json", threads=1)
    assert run.deterministic is True and run.record()["env"]["deterministic"] is True
    assert torch.are_deterministic_algorithms_enabled()
    run = Run("04-scq", scale="smoke", metrics_path=tmp_path / "m.json", threads=1, deterministic=False)
    assert run.deterministic is False and not torch.are_deterministic_algorithms_enabled()


def _conv_data(device="cpu", n=64):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, 8, 8, generator=g)
    y = (x.mean((1, 2, 3)) > 0).long()
    return Split(x[:48].to(device), y[:48].to(device), x[48:].to(device), y[48:].to(device), 2)


def _conv_net(device="cpu"):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, 2)).to(device)


def _train(device="cpu", **kw):
    net, seen = _conv_net(device), {}

    def look(mod, args, out):
        seen.setdefault("dtype", out.dtype)
        seen.setdefault("channels_last", args[0].is_contiguous(memory_format=torch.channels_last)
                        and not args[0].is_contiguous())

    net[0].register_forward_hook(look)
    hist = fit(net, torch.optim.SGD(net.parameters(), lr=0.1), _conv_data(device), epochs=3, batch_size=16,
               generator=torch.Generator().manual_seed(1), eval_every=0, **kw)
    return net, hist, seen


def test_fit_in_bf16_autocasts_the_forward_and_keeps_fp32_weights():
    net, hist, seen = _train(precision="bf16")
    assert seen["dtype"] == torch.bfloat16 and all(p.dtype == torch.float32 for p in net.parameters())
    assert all(torch.isfinite(torch.tensor(hist.train_loss)))
    ref, ref_hist, ref_seen = _train()
    assert ref_seen["dtype"] == torch.float32
    assert hist.train_loss != ref_hist.train_loss  # bf16 rounds: not the fp32 trajectory bit for bit ...
    assert abs(hist.train_loss[-1] - ref_hist.train_loss[-1]) < 0.05  # ... but the same training


def test_fit_channels_last_feeds_channels_last_batches_and_trains_the_same():
    net, hist, seen = _train(channels_last=True)
    assert seen["channels_last"] and net[0].weight.is_contiguous(memory_format=torch.channels_last)
    ref, ref_hist, _ = _train()
    assert hist.train_loss == pytest.approx(ref_hist.train_loss, rel=1e-5)


def test_training_numerics_is_the_default_an_argument_overrides():
    assert current_numerics() == Numerics()
    with training_numerics(precision="bf16", channels_last=True) as n:
        assert current_numerics() == n == Numerics("bf16", True)
        _, _, seen = _train()
        assert seen == {"dtype": torch.bfloat16, "channels_last": True}
        _, _, seen = _train(precision="fp32", channels_last=False)
        assert seen == {"dtype": torch.float32, "channels_last": False}
    assert current_numerics() == Numerics()
    with pytest.raises(ValueError, match="precision must be one of"):
        _train(precision="fp16")
    with pytest.raises(TypeError, match="channels_last must be a bool"):
        Numerics("fp32", 1)


def test_a_sweep_records_numerics_and_names_their_flags():
    assert Numerics().record() == {} and Numerics().flags() == ""
    fast = Numerics("bf16", True)
    assert fast.record() == {"precision": "bf16", "channels_last": True}
    assert Numerics(**fast.record()) == fast and fast.flags() == " --precision bf16 --channels-last"
    assert Numerics(channels_last=True).flags() == " --channels-last"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_fast_paths_train_and_deterministic_runs_repeat():
    set_deterministic(True)
    a = _train("cuda")[1].train_loss
    b = _train("cuda")[1].train_loss
    assert a == b  # deterministic kernels: bit for bit
    set_deterministic(False)
    net, hist, seen = _train("cuda", precision="bf16", channels_last=True)
    assert seen == {"dtype": torch.bfloat16, "channels_last": True}
    assert abs(hist.train_loss[-1] - a[-1]) < 0.05

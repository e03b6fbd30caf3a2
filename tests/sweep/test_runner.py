"""The sweep runner on a toy chapter: plan, run, status, resume, waves, failures, engines and clear errors."""

from __future__ import annotations

import json
import os
import socket
import types

import pytest
import torch

import effcourse.sweep.runner as runner_mod
import effcourse.sweep.spec as spec_mod
from effcourse.core.data import digits
from effcourse.core.train import fit
from effcourse.sweep import (
    RunSpec,
    Store,
    Sweep,
    SweepResultsMissing,
    experiment_seeds,
    load_results,
    synthetic,
)
from effcourse.sweep.cli import main


def _toy_module(fail_lr: float | None = None):
    """A chapter module whose runs train a small MLP on digits; ``final`` reads the grid's best lr."""
    mod = types.ModuleType("toy_sweep")

    def plan(cfg, seed):
        grid = [RunSpec("grid", {"lr": lr}, s) for lr in (0.01, 0.1) for s in experiment_seeds(seed, 2, 100)]
        return grid + [RunSpec("final", {}, experiment_seeds(seed, 1, 200)[0], after=("grid",))]

    def execute(spec, ctx):
        if fail_lr is not None and spec.params.get("lr") == fail_lr:
            raise RuntimeError("this lr always fails")
        lr = spec.params.get("lr") or min((0.01, 0.1), key=lambda v: sum(
            r["err"] for _, r in ctx.results.where("grid", lr=v)))
        data = digits()
        torch.manual_seed(spec.seed)
        net = torch.nn.Sequential(torch.nn.Linear(data.num_features, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10))
        h = fit(net, torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9), data, epochs=3, batch_size=128,
                generator=ctx.generator(), checkpoint=ctx.fit_checkpoint())
        return {"err": h.final_err, "loss": h.train_loss, "lr": lr}

    mod.plan, mod.execute, mod.DRY_RUN, mod.DATA = plan, execute, {}, ()
    mod.flops = lambda spec, cfg: 3.6e17  # one GPU-hour at 1e14 FLOP/s
    return mod


@pytest.fixture
def toy(monkeypatch):
    mod = _toy_module()
    monkeypatch.setattr(runner_mod, "chapter_module", lambda ch: mod)
    monkeypatch.setattr(spec_mod, "chapter_module", lambda ch: mod)
    return mod


def test_run_ids_are_readable_unique_folder_names():
    a = RunSpec("grid", {"method": "adam", "eps": 1e-8, "lr": 0.5}, 100)
    assert a.run_id == "grid/method=adam_eps=1e-8_lr=0.5_s=100"
    long = RunSpec("grid", {f"k{i}": i * 1.5 for i in range(30)}, 1)
    assert len(long.run_id) < 120 and long.run_id != RunSpec("grid", {f"k{i}": i for i in range(30)}, 1).run_id
    assert RunSpec.from_dict(a.as_dict()) == a
    with pytest.raises(ValueError, match="experiment must be a lower-case name"):
        RunSpec("Grid/x")
    with pytest.raises(ValueError, match="params of 'grid' must be JSON values"):
        RunSpec("grid", {"lr": float("nan")})
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        RunSpec("grid", {}, -1)


def test_plan_run_status_and_the_results_a_notebook_reads(toy, tmp_path, capsys):
    assert main(["plan", "08-avagrad"]) == 0
    assert "08-avagrad: 5 runs, ~5.0 GPU-hours" in capsys.readouterr().out
    assert main(["run", "08-avagrad", "--out", str(tmp_path), "--threads", "1"]) == 0
    assert main(["status", "08-avagrad", "--out", str(tmp_path)]) == 0
    assert "5 done, 0 running, 0 failed, 0 interrupted, 0 pending" in capsys.readouterr().out
    res = load_results("08-avagrad", tmp_path)
    assert len(res) == 5 and len(res.where("grid", lr=0.1)) == 2
    best = min((0.01, 0.1), key=lambda v: sum(r["err"] for _, r in res.where("grid", lr=v)))
    assert res.one("final")["lr"] == best  # the final run waited for the grid and read it
    manifest = json.loads((tmp_path / "08-avagrad" / "manifest.json").read_text())
    assert manifest["config_hash"] == Sweep("08-avagrad").hash and len(manifest["runs"]) == 5


def test_a_failed_run_is_recorded_the_others_go_on_and_dependents_wait(monkeypatch, tmp_path, capsys):
    mod = _toy_module(fail_lr=0.1)
    monkeypatch.setattr(runner_mod, "chapter_module", lambda ch: mod)
    monkeypatch.setattr(spec_mod, "chapter_module", lambda ch: mod)
    assert main(["run", "08-avagrad", "--out", str(tmp_path), "--threads", "1"]) == 1
    out = capsys.readouterr().out
    assert "FAILED grid/lr=0.1_s=100: RuntimeError: this lr always fails" in out
    assert "1 runs wait for unfinished experiments ['grid']" in out
    sw, store = Sweep("08-avagrad"), Store(tmp_path, "08-avagrad")
    states = store.states(sw.specs)
    assert [len(states[k]) for k in ("done", "failed", "pending")] == [2, 2, 1]
    err = json.loads((store.run_dir(states["failed"][0]) / "error.json").read_text())
    assert "this lr always fails" in err["traceback"]
    with pytest.raises(SweepResultsMissing, match=r"(?s)not finished \(2 done, 2 failed, 1 pending.*"
                                                    r"sweep run 08-avagrad.* --retry-failed"):
        load_results("08-avagrad", tmp_path)
    # fixed: --retry-failed re-runs the failures, then the final run
    good = _toy_module()
    monkeypatch.setattr(runner_mod, "chapter_module", lambda ch: good)
    monkeypatch.setattr(spec_mod, "chapter_module", lambda ch: good)
    assert main(["run", "08-avagrad", "--out", str(tmp_path), "--threads", "1"]) == 1  # failures left alone
    assert main(["run", "08-avagrad", "--out", str(tmp_path), "--threads", "1", "--retry-failed"]) == 0
    assert len(load_results("08-avagrad", tmp_path)) == 5


def test_an_out_folder_never_mixes_two_configurations(toy, tmp_path, capsys):
    assert main(["run", "08-avagrad", "--out", str(tmp_path), "--only", "grid/lr=0.01*", "--threads", "1"]) == 0
    h0 = Sweep("08-avagrad").hash
    assert main(["run", "08-avagrad", "--out", str(tmp_path), "--seed", "1", "--threads", "1"]) == 2
    err = capsys.readouterr().err
    assert f"holds results of another configuration (config hash {h0}: base seed 0" in err
    assert f"this sweep's is {Sweep('08-avagrad', seed=1).hash} (base seed 1" in err


def test_precision_and_memory_format_reach_the_training_and_are_never_mixed(toy, tmp_path, capsys):
    """--precision bf16 --channels-last: the runs train under training_numerics, the manifest and each result say
    so, and a folder made with other numerics is refused."""
    seen = []
    execute = toy.execute

    def spy(spec, ctx):
        from effcourse.core.numerics import current_numerics

        seen.append(current_numerics())
        return execute(spec, ctx)

    toy.execute = spy
    assert main(["run", "08-avagrad", "--out", str(tmp_path), "--only", "grid/lr=0.01*", "--threads", "1",
                 "--precision", "bf16", "--channels-last"]) == 0
    assert len(seen) == 2 and all((n.precision, n.channels_last) == ("bf16", True) for n in seen)
    manifest = json.loads((tmp_path / "08-avagrad" / "manifest.json").read_text())
    assert manifest["numerics"] == {"precision": "bf16", "channels_last": True}
    with pytest.raises(SweepResultsMissing, match=r"sweep run 08-avagrad .* --precision bf16 --channels-last"):
        load_results("08-avagrad", tmp_path)  # the command to finish it keeps its numerics
    assert main(["run", "08-avagrad", "--out", str(tmp_path), "--threads", "1"]) == 2
    assert "holds runs made with numerics {'precision': 'bf16', 'channels_last': True}" in capsys.readouterr().err


def test_bad_chapter_and_pattern_are_clear_errors(toy, tmp_path, capsys):
    assert main(["plan", "09-nope"]) == 2
    assert "no chapter '09-nope'; chapters: ['01-implicit-models'" in capsys.readouterr().err
    assert main(["run", "08-avagrad", "--out", str(tmp_path), "--only", "gird/*"]) == 2
    assert "--only 'gird/*' matches no run of 08-avagrad; its experiments are ['final', 'grid']" in \
        capsys.readouterr().err
    assert main(["status", "08-avagrad", "--out", str(tmp_path / "empty")]) == 2
    assert "no sweep of 08-avagrad" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["local", "ray"])
def test_real_runs_on_two_local_workers_and_through_a_local_ray(engine, tmp_path, monkeypatch):
    """Chapter 8's dry run, SGD's lr cells: two spawned worker processes (as for two GPUs), or tasks of a Ray
    started here; every run done, as the one-process engine would leave it."""
    monkeypatch.delenv("EFFCOURSE_DATA", raising=False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    if engine == "ray":
        pytest.importorskip("ray", reason="Ray comes with the test extra: pip install -e '.[test]'")
    extra = ["--devices", "cpu,cpu"] if engine == "local" else ["--engine", "ray"]
    assert main(["run", "08-avagrad", "--dry-run", "--out", str(tmp_path), "--only", "tune-sgd/*", "--threads", "1",
                 *extra]) == 0
    sw = Sweep("08-avagrad", dry_run=True)
    picked = [s for s in sw.specs if s.experiment == "tune-sgd"]
    states = Store(tmp_path, "08-avagrad").states(picked)
    assert len(states["done"]) == len(picked) == 2


def test_missing_and_truncated_data_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="folder .*cifar10 not found"):
        synthetic.check("cifar10", tmp_path)
    synthetic.write(tmp_path, ["cifar10", "mnist", "glue-sst2"], n=4)
    for name in ("cifar10", "mnist", "glue-sst2"):
        synthetic.check(name, tmp_path)
    (tmp_path / "cifar10" / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="lacks data_batch_3"):
        synthetic.check("cifar10", tmp_path)
    img = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    img.write_bytes(img.read_bytes()[:40])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz"):
        synthetic.check("mnist", tmp_path)
    with pytest.raises(ValueError, match="data set must be one of"):
        synthetic.write(tmp_path, ["imagenet"])


def test_a_dry_run_refuses_a_data_folder_with_a_truncated_file(tmp_path, capsys):
    data = synthetic.write(tmp_path / "data", ["cifar10"], n=4)
    batch = data / "cifar10" / "test_batch"
    batch.write_bytes(batch.read_bytes()[:100])
    assert main(["run", "08-avagrad", "--dry-run", "--out", str(tmp_path / "out"), "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert "08-avagrad needs data set 'cifar10'" in err
    assert "test_batch: not a CIFAR-10 batch: pickle data was truncated" in err


def test_an_unreachable_ray_address_fails_fast_naming_it(tmp_path, capsys):
    pytest.importorskip("ray")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["run", "08-avagrad", "--dry-run", "--out", str(tmp_path), "--engine", "ray", "--ray-address",
                 f"127.0.0.1:{port}", "--only", "tune-sgd/*"]) == 2
    assert f"cannot reach a Ray cluster at '127.0.0.1:{port}'" in capsys.readouterr().err
    assert main(["run", "08-avagrad", "--dry-run", "--out", str(tmp_path), "--engine", "ray", "--ray-address",
                 "nonsense", "--only", "tune-sgd/*"]) == 2
    assert "--ray-address must look like HOST:PORT" in capsys.readouterr().err


def test_gpu_check_says_why_it_cannot_run_without_cuda(capsys):
    from effcourse.sweep import gpucheck

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the gpu-marked test below runs the check")
    assert gpucheck.main(["08-avagrad"]) == 2
    assert "gpu-check needs CUDA" in capsys.readouterr().err


@pytest.mark.gpu
def test_gpu_check_runs_a_chapter_on_cuda(capsys):
    from effcourse.sweep import gpucheck

    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    assert gpucheck.main(["08-avagrad"]) == 0
    assert "FLOP/s" in capsys.readouterr().out


def test_a_run_in_this_process_leaves_its_environment_as_it_found_it(tmp_path, monkeypatch):
    """The local engine runs in the caller's process: pointing the loaders at a data folder must not outlive it."""
    monkeypatch.delenv("EFFCOURSE_DATA", raising=False)
    assert main(["run", "08-avagrad", "--dry-run", "--out", str(tmp_path), "--only", "tune-sgd/*lr=0.001*",
                 "--threads", "1"]) == 0
    assert "EFFCOURSE_DATA" not in os.environ


def test_a_step_checkpoint_saves_and_restores_a_loop_and_its_random_streams(tmp_path):
    from effcourse.core.config import config
    from effcourse.sweep import RunContext

    ctx = RunContext(RunSpec("grid", {}, 3), config("08-avagrad", "smoke"), torch.device("cpu"), tmp_path)
    ck = ctx.step_checkpoint("loop", every=5)
    assert ck.every == 5 and ck.load() is None
    torch.manual_seed(0)
    ck.save(10, w=torch.arange(3.0))
    expected = torch.rand(2)
    assert ck.load()[0] == 10 and torch.equal(ck.load()[1]["w"], torch.arange(3.0))
    assert torch.equal(torch.rand(2), expected)  # load restored the stream as it was at the save
    with pytest.raises(ValueError, match="every must be a positive int"):
        ctx.step_checkpoint("loop", every=0)

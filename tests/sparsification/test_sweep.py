"""Chapter 6's sweep (effcourse.sparsification.sweep): the plan against the thesis's protocol (Savarese 2025, 4.3.3,
Tables 4.1-4.2, Figs 4.5-4.10), the full configuration's fixes, one dry-run run, collection, and kill-and-resume."""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from pathlib import Path

import pytest
import torch

from effcourse.core.config import config
from effcourse.core.data import Split
from effcourse.core.harness import experiment_seeds
from effcourse.sparsification import experiments as ex
from effcourse.sparsification import sweep
from effcourse.sparsification.models import VGG16, masked_layers
from effcourse.sweep import RunContext, RunSpec, synthetic
from effcourse.sweep.spec import sweep_config
from effcourse.sweep.testing import dry_run_cli, resume_and_rerun

CH = "06-continuous-sparsification"
FULL = config(CH, "full")


def _images(n: int = 4) -> Split:
    x = torch.zeros(n, 3, 32, 32)
    y = torch.zeros(n, dtype=torch.long)
    return Split(x, y, x, y, 10)


def test_plan_runs_the_thesis_protocol_for_both_networks_and_every_seed():
    specs = sweep.plan(FULL, 0)
    count = Counter((s.experiment, s.params.get("net")) for s in specs)
    for net in ("resnet20", "vgg16"):  # VGG-16 is the thesis's second network (Tables 4.1-4.2)
        assert count["oneshot-mp", net] == 3 and count["tickets-imp", net] == 3 and count["tickets-impc", net] == 3
        assert count["oneshot-gmp", net] == 3 * len(FULL.gmp_sparsities)
        assert count["oneshot-cs", net] == 3 * len(FULL.cs_oneshot)
        assert count["tickets-cs", net] == 3 * 11  # 11 values of s_init, 3 seeds (4.3.3)
    assert {s.seed for s in specs} == set(experiment_seeds(0, 3, 0)) == {0, 1, 2}
    assert {s.seed for s in sweep.plan(FULL, 2)} == {2000, 2001, 2002}  # the notebook's run.seeds(3) at SEED=2
    s_inits = sorted(s.params["s_init"] for s in specs if s.experiment == "tickets-cs" and s.seed == 0
                     and s.params["net"] == "vgg16")
    assert s_inits[0] == -0.3 and s_inits[-1] == 0.3 and len(s_inits) == 11
    hp = {(s.params["lam"], s.params["beta_final"]) for s in specs if s.experiment == "hp" and s.seed == 0}
    assert len(hp) == 7 and (1e-8, 200.0) in hp and (0.0, 200.0) in hp and (1e-8, 50.0) in hp  # shared point once
    assert len({s.run_id for s in specs}) == len(specs) == 270


def test_full_fixes_the_oneshot_schedule_and_the_gmp_window():
    p = ex.Protocol(FULL, _images(), [0])
    pre, ft, total = ex.oneshot_specs(p)
    # Table 4.1's protocol: 200 epochs, lr / 10 at epochs 80 and 120, masks fixed at 160, 40 epochs at 1e-3
    assert (pre.epochs, ft.epochs, total.epochs) == (160, 40, 200)
    assert [pre.lr_factor(e) for e in (79, 80, 119, 120, 159)] == pytest.approx([1, 0.1, 0.1, 0.01, 0.01])
    assert [total.lr_factor(e) for e in (79, 80, 120, 199)] == pytest.approx([1, 0.1, 0.01, 0.01])
    assert ft.lr == 0.001 and ft.milestones == () and pre.lr * pre.lr_factor(159) == pytest.approx(ft.lr)
    begin, end = FULL.gmp_window
    assert end * total.epochs == pytest.approx(160) and begin < end  # GMP prunes for the last time at epoch 160
    # the ticket-search rounds keep the thesis's 56 and 71 of 85
    rnd = p.spec(FULL.round_epochs)
    assert [rnd.lr_factor(e) for e in (55, 56, 70, 71)] == pytest.approx([1, 0.1, 0.1, 0.01])
    with pytest.raises(ValueError, match="oneshot_lr_drops"):
        ex.oneshot_specs(ex.Protocol(FULL.replace(oneshot_lr_drops=[180]), _images(), [0]))


def test_full_supermasks_use_conv6_with_their_own_grid_and_vgg16_its_batch():
    assert FULL.sm_model == "conv6" and FULL.sm_epochs == 100 and FULL.sm_lr == 3e-4 and FULL.sm_ss_lr == 100.0
    conv6_ticket_grid = [round(-0.2 + 0.02 * i, 2) for i in range(16)]  # Fig. 4.11's CS grid, not the supermasks'
    assert FULL.sm_ss_s_inits != conv6_ticket_grid and FULL.sm_cs_s_inits != conv6_ticket_grid
    assert 1.0 in FULL.sm_ss_s_inits and min(FULL.sm_cs_s_inits) == -0.3 and max(FULL.sm_cs_s_inits) == 0.3
    vgg = sweep.net_config(FULL, "vgg16")
    assert vgg.model == "vgg16" and vgg.batch_size == 64 and sweep.net_config(FULL, "resnet20").batch_size == 128
    with pytest.raises(ValueError, match="net must be one of"):
        sweep.net_config(FULL, "wrn")
    with torch.device("meta"):
        model = VGG16()
    assert len(masked_layers(model)) == 13 and sum(p.numel() for p in model.parameters()) > 14_000_000


def test_flops_grow_with_the_network_and_the_rounds():
    specs = {(s.experiment, s.params.get("net")): s for s in sweep.plan(FULL, 0) if s.seed == 0}
    r20, vgg = sweep.flops(specs["tickets-imp", "resnet20"], FULL), sweep.flops(specs["tickets-imp", "vgg16"], FULL)
    assert 0 < r20 < vgg
    # IMP-C re-trains each ticket besides continuing: twice IMP's rounds, within one round
    ratio = sweep.flops(specs["tickets-impc", "resnet20"], FULL) / r20
    assert 1.9 < ratio < 2.0


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    root = synthetic.write(tmp_path_factory.mktemp("data"), ["cifar10"], seed=0)
    old = os.environ.get("EFFCOURSE_DATA")
    os.environ["EFFCOURSE_DATA"] = str(root)
    yield root
    if old is None:
        os.environ.pop("EFFCOURSE_DATA")
    else:
        os.environ["EFFCOURSE_DATA"] = old


class _Results:
    """The part of effcourse.sweep.Results the collectors use, over in-memory results."""

    def __init__(self, pairs):
        self.pairs = pairs

    def where(self, experiment, **params):
        return [(s, r) for s, r in self.pairs
                if s.experiment == experiment and all(s.params.get(k) == v for k, v in params.items())]


def test_execute_returns_what_the_inline_driver_returns(cifar, tmp_path):
    cfg = sweep_config(CH, dry_run=True)
    specs = [s for s in sweep.plan(cfg, 0) if s.experiment.startswith("tickets") and s.params["net"] == "resnet20"]
    assert len(specs) == 2 + len(cfg.cs_s_inits)
    pairs = []
    for s in specs:
        ctx = RunContext(s, cfg, torch.device("cpu"), tmp_path / s.run_id.replace("/", "_"), dry_run=True)
        ctx.dir.mkdir(parents=True)
        res = sweep.execute(s, ctx)
        json.dumps(res, allow_nan=False)
        assert set(res) >= {"tickets"} and list(ctx.dir.glob("checkpoint-round-0.pt")) == (
            [] if s.experiment == "tickets-cs" else [ctx.dir / "checkpoint-round-0.pt"])
        pairs.append((s, res))
    got = sweep.collect_tickets(_Results(pairs), cfg, [0])
    inline = ex.ticket_search(sweep.protocol(cfg, 0))[0]
    for meth in ("IMP", "IMP-C"):
        assert [(k.round, k.remaining, k.accuracy) for k in got[0][meth]] == \
            [(k.round, k.remaining, k.accuracy) for k in inline[meth]]
    assert list(got[0]["CS"]) == list(inline["CS"]) == cfg.cs_s_inits
    for s0, res in inline["CS"].items():
        assert [(k.remaining, k.accuracy) for k in got[0]["CS"][s0].tickets] == \
            [(k.remaining, k.accuracy) for k in res.tickets]
        assert got[0]["CS"][s0].soft_fraction == res.soft_fraction
    with pytest.raises(ValueError, match="spec.experiment"):
        sweep.execute(RunSpec("grid", {}, 0), ctx)


def _run(out: Path, run_id: str, kill: bool) -> subprocess.CompletedProcess:
    # the finished runs keep their checkpoints, so that the trained weights themselves can be compared
    return dry_run_cli(CH, out, run_id, kill_after=1 if kill else None, extra=["--keep-checkpoints"], timeout=300)


def _final_states(run_dir: Path) -> dict[str, dict]:
    out = {}
    for f in sorted(run_dir.glob("checkpoint-*.pt")):
        st = torch.load(f, map_location="cpu", weights_only=False)["state"]
        out[f.name] = {"model": st["model"], "history": st["history"], "epoch": st["epoch"]}
    return out


@pytest.mark.parametrize("run_id", [
    "oneshot-mp/net=resnet20_s=0",     # killed inside the two-epoch dense phase, then MP's fine-tuning
    "tickets-impc/net=resnet20_s=0",   # killed between rounds: theta_hat must come back for the ticket
])
@pytest.mark.slow
def test_a_killed_run_resumes_to_the_uninterrupted_result(cifar, tmp_path, run_id):
    assert run_id in {s.run_id for s in sweep.plan(sweep_config(CH, dry_run=True), 0)}
    killed = _run(tmp_path / "a", run_id, kill=True)
    assert killed.returncode == -9, killed.stderr[-2000:]
    run_dir = tmp_path / "a" / CH / run_id
    assert list(run_dir.glob("checkpoint-*.pt")) and not (run_dir / "result.json").exists()
    a, b = resume_and_rerun(CH, tmp_path / "a", tmp_path / "b", run_id, extra=["--keep-checkpoints"])
    assert a["result"] == b["result"]
    sa, sb = _final_states(run_dir), _final_states(tmp_path / "b" / CH / run_id)
    assert list(sa) == list(sb) and len(sa) >= 2  # every phase, bit for bit
    for name in sa:
        assert sa[name]["history"] == sb[name]["history"] and sa[name]["epoch"] == sb[name]["epoch"]
        assert all(torch.equal(sa[name]["model"][k], sb[name]["model"][k]) for k in sb[name]["model"]), name

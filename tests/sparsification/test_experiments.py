"""The chapter's experiment drivers, tables and figures (effcourse.sparsification.experiments), on a tiny protocol."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest
import torch

from effcourse.core.config import config
from effcourse.core.data import Split
from effcourse.sparsification import experiments as ex
from effcourse.sparsification.masks import Ticket, TrainSpec

matplotlib.use("Agg")


def _toy(n: int = 96, d: int = 8, seed: int = 0) -> Split:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    return Split(x[:64], y[:64], x[64:], y[64:], 2)


def _protocol(seeds=(0, 1)) -> ex.Protocol:
    cfg = config("06-continuous-sparsification", "smoke").replace(
        hidden=[16], batch_size=16, round_epochs=2, rewind_epoch=1, oneshot_epochs=2, finetune_epochs=1,
        hp_epochs=2, sm_epochs=1)
    return ex.Protocol(cfg, _toy(), list(seeds))


@pytest.fixture(scope="module")
def results():
    p = _protocol()
    return {"p": p, "oneshot": ex.oneshot_pruning(p), "tickets": ex.ticket_search(p),
            "hp": ex.hyperparameter_sweep(p), "supermask": ex.supermasks(p)}


def test_seeded_resets_both_generators():
    g1 = ex.seeded(3)
    a, x1 = torch.rand(2), torch.rand(2, generator=g1)
    g2 = ex.seeded(3)
    assert torch.equal(a, torch.rand(2)) and torch.equal(x1, torch.rand(2, generator=g2))


def test_protocol_builds_specs_and_models_from_the_configuration():
    p = _protocol()
    spec = p.spec(6)
    assert isinstance(spec, TrainSpec) and spec.epochs == 6 and spec.lr == p.cfg.lr and spec.batch_size == 16
    assert spec.milestones == tuple(p.cfg.milestones)
    ft = p.spec(2, lr=0.005, milestones=[])
    assert ft.lr == 0.005 and ft.milestones == ()
    assert p.make_model()(p.data.x_train).shape == (64, 2)
    assert p.n_prunable() == (8 * 16, ["0"])  # the classifier stays dense
    with pytest.raises(ValueError, match="seeds"):
        ex.Protocol(p.cfg, p.data, [])


def test_oneshot_pruning_is_reproducible_and_summarized(results):
    oneshot, p = results["oneshot"], results["p"]
    assert list(oneshot) == [0, 1]
    res = oneshot[0]
    assert len(res["MP"]) == len(p.cfg.mp_sparsities) and len(res["GMP"]) == len(p.cfg.gmp_sparsities)
    assert [q for q, _ in res["MP"]] == pytest.approx(p.cfg.mp_sparsities, abs=1e-2)
    assert all(0 <= a <= 1 for meth in ("MP", "GMP", "CS") for _, a in res[meth])
    assert ex.oneshot_pruning(ex.Protocol(p.cfg, p.data, [0]))[0] == res  # each run re-seeds: same numbers
    sparsest = ex.oneshot_sparsest(oneshot)
    assert set(sparsest) == {"MP", "GMP", "CS"} and all(len(v) == 2 for v in sparsest.values())
    rows = ex.oneshot_rows(oneshot, sparsest)
    assert [r["run"] for r in rows] == ["seed 0", "seed 1", "thesis, ResNet-20", "thesis, VGG-16"]
    assert rows[0]["MP"] == f"{100 * sparsest['MP'][0]:.1f} %"


def test_ticket_search_and_its_tables(results):
    tickets, p = results["tickets"], results["p"]
    t = tickets[0]
    assert [k.round for k in t["IMP"]] == list(range(p.cfg.imp_rounds + 1))
    assert [k.round for k in t["IMP-C"]] == list(range(p.cfg.impc_rounds + 1))
    assert list(t["CS"]) == p.cfg.cs_s_inits and all(len(r.tickets) == p.cfg.cs_rounds for r in t["CS"].values())
    summary = ex.ticket_summary(t)
    assert summary["dense"] == t["IMP"][0].accuracy
    sparsest, best = summary["IMP"]
    assert best.accuracy == max(k.accuracy for k in t["IMP"][1:])
    assert sparsest is None or sparsest.accuracy >= summary["dense"]
    rows = ex.ticket_rows(tickets)
    assert rows[0]["ticket"] == "dense" and rows[0]["weights remaining"] == "100 %" and rows[1]["seed"] is None
    assert sum(r["ticket"] == "dense" for r in rows) == 2
    rem, s_rows = ex.s_init_rows(tickets)
    assert set(rem) == set(p.cfg.cs_s_inits) and len(s_rows) == len(p.cfg.cs_s_inits)


def test_rounds_to_and_imp_rounds_to():
    assert ex.imp_rounds_to(0.01, 0.2) == 21 and 0.8 ** 21 <= 0.01 < 0.8 ** 20
    with pytest.raises(ValueError, match="target"):
        ex.imp_rounds_to(1.5)

    class Res:
        tickets = [Ticket("CS", r, {}, rem) for r, rem in ((1, 0.2), (2, 0.009), (3, 0.005))]

    assert ex.rounds_to(Res(), 0.01) == 2 and ex.rounds_to(Res(), 0.001) is None


def test_ticket_rounds_reads_imp_and_cs(results):
    tickets = results["tickets"]
    tr = ex.ticket_rounds(tickets, imp_rounds=2, target=0.7)
    assert tr["imp_r"] == 2 and tr["imp_ok"]  # 0.8 > 0.7 >= 0.64
    assert len(tr["imp_at_r"]) == 2 and tr["imp_at_r"][0] == tickets[0]["IMP"][2].accuracy
    assert ex.ticket_rounds(tickets, imp_rounds=21)["imp_r"] is None  # the runs stopped before round 21


def test_hyperparameters_and_supermasks(results):
    hp, sm, p = results["hp"], results["supermask"], results["p"]
    assert list(hp["beta"]) == p.cfg.hp_beta_finals and all(len(v) == 2 for v in hp["lam"].values())
    rows = ex.hyperparameter_rows(hp, -0.1)
    assert len(rows) == len(p.cfg.hp_beta_finals) + len(p.cfg.hp_lams)
    assert list(rows[0])[0] == "one round, $s_{init}$ = -0.1"
    assert len(sm["CS"]) == 2 * len(p.cfg.sm_cs_lams) and len(sm["SS"]) == 2 * len(p.cfg.sm_ss_s_inits)
    assert all(0 <= q <= 1 and 0 <= a <= 1 for q, a, _ in sm["CS"] + sm["SS"])


def test_reproduction_rows(results):
    sparsest = ex.oneshot_sparsest(results["oneshot"])
    rem, _ = ex.s_init_rows(results["tickets"])
    rows = ex.reproduction_rows(sparsest, rem, results["tickets"], results["supermask"])
    assert len(rows) == 6 and set(rows[0]) == {"thesis statement", "thesis", "this book"}
    ordered = [rem[s] for s in sorted(rem)]
    monotone = all(a <= b + 1e-12 for a, b in zip(ordered, ordered[1:]))
    assert rows[1]["this book"].startswith(f"monotone over our sweep: {monotone} (")
    gap = 100 * (sparsest["CS"][0] - sparsest["GMP"][0])
    assert rows[0]["this book"].startswith(f"CS - GMP = {gap:+.1f}")


def test_figures_have_their_panels(results):
    import matplotlib.pyplot as plt

    figs = [ex.plot_soft_steps(), ex.plot_oneshot(results["oneshot"]), ex.plot_tickets(results["tickets"]),
            ex.plot_hyperparameters(results["hp"], results["tickets"], -0.1),
            ex.plot_supermasks(results["supermask"], 1)]
    assert [sum(1 for a in f.axes if a.get_label() != "<colorbar>") for f in figs] == [2, 1, 2, 5, 1]  # 2 twins
    assert not math.isnan(figs[1].axes[0].get_ylim()[0])
    for f in figs:
        plt.close(f)


def test_supermask_best_by_seed_splits_the_runs_in_order(results):
    sm = results["supermask"]
    best = ex.supermask_best_by_seed(sm, 2)
    n_cs = len(sm["CS"]) // 2
    assert len(best) == 2 and best[1][0] == max(sm["CS"][n_cs:], key=lambda t: t[1])
    with pytest.raises(ValueError, match="n_seeds"):
        ex.supermask_best_by_seed({"CS": sm["CS"][:1], "SS": sm["SS"]}, 2)


def test_findings_follow_the_numbers_and_the_claims(results):
    p, oneshot, tickets = results["p"], results["oneshot"], results["tickets"]
    sparsest = ex.oneshot_sparsest(oneshot)
    for beats in (True, False):
        text = ex.oneshot_findings(oneshot, sparsest, p.cfg.cs_oneshot, p.cfg.lam, beats, beats)
        assert ("as in Table 4.1" in text) == beats and ("Against the thesis" in text) != beats
        assert ("matches or beats CS here" in text) != beats
        assert f"{100 * float(np.median(sparsest['MP'])):.1f} % sparse for MP" in text
        assert ("grow monotonically" in ex.s_init_findings(tickets, beats)) == beats
        rep = ex.reproduction_findings(sparsest, tickets, beats, beats)
        assert ("clear miss" in rep) != beats and ("as the thesis finds" in rep) == beats
    hp = ex.hyperparameter_findings(results["hp"], p.cfg.lam)
    assert "beta_{final} = 50$" in hp and "$\\lambda = 1e-08$ against $\\lambda = 0$" not in hp  # smoke sweeps 0, 1e-4

"""The chapter's drivers on tiny configurations: model factory, measures, sweeps, folding, shortest paths, tables."""

from __future__ import annotations

import pytest
import torch

from effcourse.core.data import Split
from effcourse.core.models import WideResNet
from effcourse.soft_sharing import experiments as ex
from effcourse.soft_sharing.residual_cnn import SharedResidualCNN
from effcourse.soft_sharing.swrn import SWRN

TINY = dict(dataset="digits", channels=4, depth=3, swrn_widen=1, dropout=0.0, epochs=2, batch_size=32, lr=0.1,
            weight_decay=5e-4, milestones=[0.5], gamma=0.2, n_seeds=2, sweep_ks=[2, 1], claim_ks=[1],
            reg_k=2, reg_lam=0.05, reg_epochs=2, reg_n_seeds=2, asserted_ks=[1], fold_k=2, fold_tau=0.95,
            path_size=8, path_train=32, path_test=16, path_phases=[2, 3], path_epochs=1, path_channels=4,
            path_depth=3, path_lr=0.01, path_lam=0.01, path_n_seeds=2, path_batch=16)
SEEDS = [0, 1]


def _data(n=64):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 1, 8, 8, generator=g)
    y = (x.mean((1, 2, 3)) > 0).long()
    return Split(x, y, x[:32], y[:32], 10)


def test_parameter_rows_match_the_printed_tables():
    rows = ex.swrn_parameter_rows()
    assert [r["model"] for r in rows] == [p[0] for p in ex.PRINTED_PARAMETERS]
    assert all(r["truncated ours == thesis"] for r in rows)
    assert ex.truncate_like(17_149_999, "17.1") == 17.1 and ex.truncate_like(36_479_194, "36") == 36.0


def test_make_classifier_picks_the_model_of_the_data_set():
    assert isinstance(ex.make_classifier(TINY, 2, 10), SharedResidualCNN)
    assert ex.make_classifier(TINY, None, 10).bank is None
    cifar = dict(TINY, dataset="cifar10", depth=16)
    assert isinstance(ex.make_classifier(cifar, None, 10), WideResNet)
    assert ex.make_classifier(cifar, 2, 10).templates == 2
    with pytest.raises(ValueError, match="dataset"):
        ex.make_classifier(dict(TINY, dataset="mnist1d"), None, 10)


def test_group_lsm_and_stack_parameters_of_every_model():
    torch.manual_seed(0)
    shared = SharedResidualCNN(4, 3, 3)
    torch.testing.assert_close(ex.group_lsm(shared), torch.eye(3), atol=1e-5, rtol=0)  # orthogonal init, k = L
    assert ex.stack_parameters(shared) == 3 * 16 * 9 + 3 * 3
    unshared = SharedResidualCNN(4, 3, None)
    assert ex.group_lsm(unshared).shape == (3, 3) and ex.stack_parameters(unshared) == 3 * 16 * 9
    wrn = WideResNet(16, 1)  # n = 2 blocks per stage: one C->C block after the first of each stage
    assert ex.group_lsm(wrn).shape == (2, 2)
    assert ex.stack_parameters(wrn) == 2 * (16 * 16 + 32 * 32 + 64 * 64) * 9
    swrn = SWRN(16, 1, 1)
    assert ex.group_lsm(swrn).shape == (2, 2) and float(ex.group_lsm(swrn).min()) == pytest.approx(1.0)
    assert ex.stack_parameters(swrn) == (16 * 16 + 32 * 32 + 64 * 64) * 9 + 3 * 2
    with pytest.raises(ValueError, match="model must be"):
        ex.group_lsm(torch.nn.Linear(2, 2))


def test_sweep_regularizer_and_fold_drivers():
    data = _data()
    models, acc = ex.template_sweep(TINY, data, SEEDS)
    assert set(models) == {(None, 0), (2, 0), (1, 0), (None, 1), (1, 1), (2, 1)}
    assert all(0.0 <= a <= 100.0 for a in acc.values())
    again, acc_again = ex.train_variant(TINY, data, 2, 0)  # seeded: the same run twice
    assert acc_again == acc[2, 0] and torch.equal(again.bank.templates, models[2, 0].bank.templates)
    rows = ex.sweep_rows(models, acc, SEEDS, initial=ex.initial_lsms(TINY, [None, 2, 1], 0, 10))
    assert [r["model"] for r in rows] == ["unshared", "k = 2", "k = 1"]
    assert rows[2]["at initialization"] == pytest.approx(1.0) and "at initialization" not in ex.sweep_rows(
        models, acc, SEEDS)[0]
    assert rows[2]["mean off-diagonal LSM"] == pytest.approx(1.0) and rows[0]["stack parameters"].endswith("(100%)")
    reg_models, reg_acc = ex.regularized_runs(TINY, data, SEEDS)
    assert set(reg_models) == {0, 1} and set(reg_acc) == {0, 1}
    fold_rows, drops_scaled, drops_naive = ex.fold_experiment(models, acc, TINY, data, SEEDS)
    assert [r["seed"] for r in fold_rows] == [0, 1] and len(drops_scaled) == len(drops_naive) == 2
    assert drops_scaled[0] == pytest.approx(acc[2, 0] - fold_rows[0]["scaled + BN recal. %"])
    summary = ex.program_summary(models[2, 0], 0.95, data.x_test)
    assert summary["program == in-place fold"] is True and summary["unshared stack"] == f"{3 * 16 * 9:,}"
    assert ex.program_summary(models[None, 0], 0.95, data.x_test) is None
    with pytest.raises(ValueError, match="seeds"):
        ex.template_sweep(TINY, data, [])


def test_initial_lsms_show_what_the_construction_sets():
    init = ex.initial_lsms(TINY, [None, 3, 1], 0, 10)
    torch.testing.assert_close(init[3], torch.eye(3), atol=1e-5, rtol=0)  # k = L: orthogonal, the identity
    assert float(init[1].min()) == pytest.approx(1.0)  # one template: every layer the same up to scale
    again = ex.initial_lsms(TINY, [2], 0, 10)[2]
    assert torch.equal(again, ex.initial_lsms(TINY, [2], 0, 10)[2])
    torch.manual_seed(0)
    torch.testing.assert_close(again, ex.group_lsm(ex.make_classifier(TINY, 2, 10)))  # the model train_variant builds


def test_path_experiment_and_its_tables():
    f1, lsm = ex.path_experiment(TINY, SEEDS, torch.Generator().manual_seed(0))
    assert set(f1) == {(n, s) for n in ("CNN", "SCNN", "SCNN+R") for s in (0, 1)}
    assert all(len(v) == 2 for v in f1.values()) and set(lsm) == {(n, s) for n in ("SCNN", "SCNN+R") for s in (0, 1)}
    fake = {("CNN", 0): [0.5, 0.5], ("CNN", 1): [0.5, 0.5], ("SCNN", 0): [0.6, 0.7], ("SCNN", 1): [0.4, 0.6],
            ("SCNN+R", 0): [0.7, 0.4], ("SCNN+R", 1): [0.7, 0.8]}
    rows = ex.path_f1_rows(fake, [2, 4], [0, 1])
    assert rows[1] == {"model": "SCNN", "d <= 2": "0.500 (0.400-0.600)", "d <= 4": "0.650 (0.600-0.700)"}
    verdicts = [r["reproduced here?"] for r in ex.fig_3_9_rows(fake, [0, 1])]
    assert verdicts == ["yes, on all 2 seeds", "yes, on all 2 seeds", "mixed: 1 of 2 seeds"]
    diffs = ex.fig_3_9_differences(fake, [0, 1])
    assert list(diffs) == ["SCNN - CNN, phases 2 on", "SCNN+R - SCNN, phase 1", "SCNN - SCNN+R, phases 2 on"]
    assert diffs["SCNN+R - SCNN, phase 1"].tolist() == pytest.approx([0.1, 0.3])

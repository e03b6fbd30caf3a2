"""The chapter's experiment drivers, on a tiny configuration: seeding, what they return, and the summaries."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from effcourse.core.data import Split
from effcourse.smol import count_quantized, make_model, quantized_names, smol_pipeline
from effcourse.smol import experiments as ex

CFG = dict(model="mlp", hidden=8, channels=2, batch_size=32, momentum=0.9, weight_decay=0.0, p_init=8.0, lr_s=1e-2,
           samples=1, milestones=[], ft_milestones=[], lr_w=0.5, lr_ft=0.1, precision_epochs=2, finetune_epochs=1,
           n_seeds=2, lam_d=[0.03, 0.3], uniform_bits=[1, 2], layer_lam_d=[0.1], cnn_lam_d=[0.1], n_cnn_seeds=1,
           cnn_epochs=[1, 1], cnn_lr=[0.5, 0.1], split_total=3, split_fracs=[1 / 3, 2 / 3], act_lam=0.1,
           act_epochs=[1, 1], split_lam_d=None, sens_samples=2048)


def _flat(n=96):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(n, 6, generator=g)
    y = (x[:, 0] > 0).long() + 2 * (x[:, 1] > 0).long()
    return Split(x, y, x[:32], y[:32], 4)


def _images(n=64):
    g = torch.Generator().manual_seed(6)
    x = torch.randn(n, 1, 8, 8, generator=g)
    y = (x.mean((1, 2, 3)) > 0).long()
    return Split(x, y, x[:16], y[:16], 10)


def test_check_quantizer_passes():
    assert ex.check_quantizer(n=2000, max_bits=5, seed=1) == {"closed_form": True, "zpa_never_up": True,
                                                              "zpa_rule": True}


def test_with_generator_draws_from_the_given_generator():
    def aug(x, generator=None):
        return x + torch.rand(x.shape, generator=generator)

    assert ex.with_generator(None, torch.Generator()) is None
    a = ex.with_generator(aug, torch.Generator().manual_seed(0))(torch.zeros(3))
    b = ex.with_generator(aug, torch.Generator().manual_seed(0))(torch.zeros(3))
    assert torch.equal(a, b)
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        ex.with_generator(aug, 0)


@pytest.fixture(scope="module")
def sweep():
    return ex.compare_with_uniform(CFG, _flat(), [0, 1], progress=False)


def test_sweep_matches_a_direct_pipeline_call(sweep):
    data = _flat()
    gen = torch.Generator().manual_seed(1)
    model = make_model(CFG, data, 1, "cpu")
    ex.uniform_pipeline(model, data, CFG["uniform_bits"], weights=quantized_names(model), generator=gen,
                        **ex._budget(CFG))
    model = make_model(CFG, data, 1, "cpu")
    r = smol_pipeline(model, data, 0.03 / count_quantized(model), weights=quantized_names(model),
                      generator=gen, **ex._smol_options(CFG), **ex._budget(CFG))
    assert r["bpp"] == sweep.smol[0.03][1]["bpp"] and r["err_after"] == sweep.smol[0.03][1]["err_after"]


def test_sweep_shapes_and_table(sweep):
    assert len(sweep.uniform) == 2 and all(len(v) == 2 for v in sweep.smol.values())
    rows = sweep.rows()
    assert len(rows) == 1 + 2 + 3 * 2 and rows[0]["run"] == "full precision" and rows[0]["bpp"] == 32.0
    assert rows[-1]["test err after FT %"] is None  # the shuffled control is not fine-tuned
    assert sweep.shuffle_gaps().shape == (2, 2) and sweep.shuffle_loss_gaps().shape == (2, 2)
    assert set(sweep.layer_means()[0.03]) == {"0.weight", "2.weight", "4.weight"}
    assert sweep.zpa_never_up()
    assert sweep.per_seed("bpp", 0.03).shape == (2,) and sweep.per_seed("err_u2_before").shape == (2,)
    assert np.allclose(sweep.bpp_steps()[0], sweep.per_seed("bpp", 0.03) - sweep.per_seed("bpp", 0.3))
    assert sweep.layer_margins().shape == (2, 2)


def test_the_seeds_drive_the_sweep():
    data, small = _flat(), {**CFG, "lam_d": [0.03], "uniform_bits": [2]}
    a = ex.compare_with_uniform(small, data, [7], progress=False)
    b = ex.compare_with_uniform(small, data, [7], progress=False)
    c = ex.compare_with_uniform(small, data, [8], progress=False)
    assert a.seeds == [7] and a.per_seed("train_loss_before", 0.03) == b.per_seed("train_loss_before", 0.03)
    assert a.per_seed("train_loss_before", 0.03) != c.per_seed("train_loss_before", 0.03)
    with pytest.raises(ValueError, match="seeds and cfg"):
        ex.compare_with_uniform(small, data, [], progress=False)


def test_sweep_summaries_on_known_numbers():
    def r(bpp, bpp_zpa, err, err_zpa):
        return {"bpp": bpp, "bpp_zpa": bpp_zpa, "err_after": err, "err_zpa_after": err_zpa, "zpa_error_never_up": True}

    s = ex.Sweep([0.1, 1.0], [0, 1], [2], [], {0.1: [r(3.0, 2.5, 0.1, 0.1), r(2.6, 2.0, 0.1, 0.12)],
                                               1.0: [r(1.9, 1.5, 0.2, 0.2), r(2.7, 2.0, 0.2, 0.2)]})
    assert s.bpp() == [2.8, 2.3] and s.nearest(2.0) == 1.0 and s.below(2.5) == [1.0]
    assert not s.bpp_decreasing()  # the mean falls, but seed 1 goes from 2.6 to 2.7
    assert s.zpa_savings() == pytest.approx({0.1: 0.55, 1.0: 0.55})
    assert s.zpa_error_change() == pytest.approx({0.1: 1.0, 1.0: 0.0})


def test_section_five_drivers():
    data = _flat()
    rows = ex.layerwise_comparison(CFG, data, seed=0)
    assert len(rows) == 1 and rows[0]["sensitivity bpp"] <= max(rows[0]["bpp"], 1.0) + 1e-9
    assert set(ex.LAYER_COLUMNS) < set(rows[0]) and 0 <= rows[0]["sensitivity_err_after"] <= 1
    cnn = ex.cnn_comparison(CFG, _images(), [0])
    assert len(cnn) == 1 and list(cnn[0]) == ex.CNN_COLUMNS
    split = ex.budget_split(CFG, data, 0.1, seed=0)
    assert [s["precision_epochs"] for s in split] == [1, 2]
    acts = ex.activation_comparison(CFG, data, seed=0)
    assert [a["activations"] for a in acts] == ["SMOL-A", "PACT 2-bit", "PACT 3-bit"]
    assert acts[1]["bits per activation"] == 2.0 and list(acts[0]) == [*ex.ACTIVATION_COLUMNS, "err_after"]
    assert ex.activation_comparison({**CFG, "act_epochs": [0, 0]}, data, seed=0) == []
    with pytest.raises(ValueError, match="split_fracs"):
        ex.budget_split({**CFG, "split_fracs": [2.0]}, data, 0.1, seed=0)


def test_cost_rows_count_bits_and_bops():
    data = _flat()
    model = make_model(CFG, data, 0, "cpu")
    prec = {n: torch.full(dict(model.named_parameters())[n].shape, 3) for n in quantized_names(model)}
    rows = ex.cost_rows(model, data.x_test[:2], prec, uniform_bits=2, activation_bits=8)
    total = rows[-1]
    assert total["layer"] == "all" and total["weights"] == 6 * 8 + 8 * 8 + 8 * 4
    assert total["SMOL bits"] == 3 * total["weights"] and total["uniform 2-bit bits"] == 2 * total["weights"]
    assert np.isclose(total["SMOL kBOPs"], 1.5 * total["uniform 2-bit kBOPs"])  # linear layers: one use per weight

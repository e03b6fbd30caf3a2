"""Precision training and fine-tuning (Algorithm 5) through the one loop of the library."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from effcourse.core.data import Split
from effcourse.core.train import batches
from effcourse.smol import SMOL, add_activation_smol, finetune, precision_training, smol_pipeline


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))


def _data(n=256):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 5, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    return Split(x, y, x[:64], y[:64], 3)


def _reference_loop(model, smol, data, epochs, batch_size, w_opt, s_opt, lam, samples, acts, lam_act, gen, sched):
    """The chapter's former private loop, kept here to pin precision_training's results bit for bit."""
    smol.set_mode("noise")
    for a in acts:
        a.mode = "noise"
    model.train()
    history, n = [], data.x_train.shape[0]
    for _ in range(epochs):
        total = torch.zeros(())
        for idx in batches(n, batch_size, gen):
            xb, yb = data.x_train[idx], data.y_train[idx]
            task = sum(F.cross_entropy(model(xb), yb) for _ in range(samples)) / samples
            loss = task + lam * smol.penalty()
            if acts:
                loss = loss + lam_act * sum(a.penalty() for a in acts)
            w_opt.zero_grad(set_to_none=True)
            s_opt.zero_grad(set_to_none=True)
            loss.backward()
            w_opt.step()
            s_opt.step()
            smol.clip_()
            total += task.detach() * idx.numel()
        history.append(float(total) / n)
        sched.step()
    return history


def _setup():
    model = _mlp()
    acts = add_activation_smol(model, torch.zeros(2, 5), alpha=2.0, p_init=6.0)
    smol = SMOL(model)
    w_opt = torch.optim.SGD(smol.model_parameters(), lr=0.1, momentum=0.9)
    s_opt = torch.optim.Adam(smol.precision_parameters() + [a.s for a in acts], lr=0.05)
    sched = torch.optim.lr_scheduler.MultiStepLR(w_opt, [2], 0.1)
    return model, acts, smol, w_opt, s_opt, sched


def test_precision_training_is_bit_identical_to_the_former_loop():
    data = _data()
    results = []
    for train in (_reference_loop, None):
        model, acts, smol, w_opt, s_opt, sched = _setup()
        torch.manual_seed(3)
        gen = torch.Generator().manual_seed(0)
        if train is None:
            hist = precision_training(model, smol, data, 3, 32, w_opt, s_opt, 1e-3, samples=2, activations=acts,
                                      lam_act=1e-2, generator=gen, scheduler=sched)
        else:
            hist = train(model, smol, data, 3, 32, w_opt, s_opt, 1e-3, 2, acts, 1e-2, gen, sched)
        results.append((hist, [p.detach().clone() for p in model.parameters()]))
    (h0, p0), (h1, p1) = results
    assert h0 == h1 and len(h1) == 3
    assert all(torch.equal(a, b) for a, b in zip(p0, p1))


def test_precision_training_lowers_bits_with_lambda():
    data = _data()
    bpp = []
    for lam in (1e-4, 1e-1):
        model = _mlp()
        smol = SMOL(model)
        w_opt = torch.optim.SGD(smol.model_parameters(), lr=0.1)
        s_opt = torch.optim.Adam(smol.precision_parameters(), lr=0.05)
        hist = precision_training(model, smol, data, 5, 32, w_opt, s_opt, lam, samples=2,
                                  generator=torch.Generator().manual_seed(0))
        assert len(hist) == 5 and all(math.isfinite(v) for v in hist)
        bound = 2 - torch.sigmoid(smol.parametrization("0.weight").s)
        assert bool((smol.grid_weight("0.weight").abs() <= bound + 1e-6).all())
        smol.allocate()
        bpp.append(smol.bits_per_parameter())
    assert bpp[1] < bpp[0]


def test_finetune_trains_quantized_weights_and_returns_the_test_error():
    data = _data()
    model = _mlp()
    smol = SMOL(model).set_precisions(2)
    before = smol.grid_weight("0.weight").detach().clone()
    err = finetune(model, smol.model_parameters(), data, 2, 32, lr=0.05, generator=torch.Generator().manual_seed(0))
    assert 0.0 <= err <= 1.0
    assert not torch.equal(before, smol.grid_weight("0.weight").detach())
    assert smol.precisions()["0.weight"].unique().tolist() == [2]  # fine-tuning keeps the precisions


def test_smol_pipeline_reports_every_number():
    r = smol_pipeline(_mlp(), _data(), 1e-3, precision_epochs=2, finetune_epochs=1, batch_size=64, lr_w=0.1,
                      generator=torch.Generator().manual_seed(0))
    for key in ("bpp", "bpp_zpa", "err_before", "err_after", "err_zpa_before", "err_zpa_after",
                "err_shuffled_before", "train_loss_before", "train_loss_shuffled_before"):
        assert math.isfinite(r[key]), key
    assert r["zpa_error_never_up"] and r["bpp_zpa"] <= r["bpp"]
    assert set(r["precisions"]) == {"0.weight", "2.weight"}


def test_errors():
    data = _data(8)
    model = _mlp()
    smol = SMOL(model)
    opt = torch.optim.SGD(smol.model_parameters(), lr=0.1)
    with pytest.raises(ValueError, match="samples"):
        precision_training(model, smol, data, 1, 2, opt, opt, 0.1, samples=0)
    with pytest.raises(ValueError, match="lam and lam_act must be >= 0"):
        precision_training(model, smol, data, 1, 2, opt, opt, -0.1)
    with pytest.raises(ValueError, match="nothing to train"):
        precision_training(model, None, data, 1, 2, opt, opt, 0.1)
    with pytest.raises(ValueError, match="lr must be positive"):
        finetune(model, smol.model_parameters(), data, 1, 2, lr=0.0)

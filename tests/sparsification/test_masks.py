"""Mask infrastructure (effcourse.sparsification.masks): which weights, snapshots, accounting, training, tickets."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from effcourse.core.data import Split
from effcourse.core.models import MLP
from effcourse.core.train import batches
from effcourse.sparsification import masks as mk
from effcourse.sparsification.cs import ContinuousSparsifier


def _toy(n: int = 96, d: int = 8, seed: int = 0) -> Split:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = (x[:, 0] - x[:, 2] > 0).long()
    return Split(x[:64], y[:64], x[64:], y[64:], 2)


def test_prunable_layers_leave_the_classifier_dense():
    net = MLP([8, 16, 16, 4])
    assert list(mk.prunable_layers(net)) == ["0", "2"]
    assert list(mk.prunable_layers(net, include_output=True)) == ["0", "2", "4"]
    assert list(mk.prunable_layers(net, exclude=lambda n, m: n == "0")) == ["2"]
    with pytest.raises(ValueError, match="no nn.Linear"):
        mk.prunable_layers(nn.ReLU())


def test_snapshot_moves_between_parametrized_and_pruned_models():
    torch.manual_seed(0)
    a = MLP([6, 10, 3])
    ContinuousSparsifier(a, s_init=0.2)
    snap = mk.snapshot(a)
    assert set(snap) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    b = MLP([6, 10, 3])
    mk.apply_masks(mk.prunable_layers(b))
    mk.load_snapshot(b, snap)
    assert torch.equal(b[0].weight_orig, a[0].parametrizations.weight.original)
    with pytest.raises(KeyError):
        mk.load_snapshot(b, {"9.weight": torch.zeros(1)})


def test_sparsest_within_and_train_spec():
    pts = [(0.5, 0.97), (0.9, 0.96), (0.95, 0.94), (0.99, 0.5)]
    assert mk.sparsest_within(pts, 0.97) == 0.9  # 0.94 is 3 points below
    assert mk.sparsest_within(pts, 0.96) == 0.95
    assert mk.sparsest_within(pts, 1.5) == 0.0
    spec = mk.TrainSpec(epochs=85, milestones=(56 / 85, 71 / 85))
    assert [spec.lr_factor(e) for e in (0, 55, 56, 70, 71, 84)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    with pytest.raises(ValueError, match="epochs"):
        mk.TrainSpec(epochs=-1)
    with pytest.raises(ValueError, match="optimizer"):
        mk.TrainSpec(epochs=1, optimizer="lbfgs")




def _reference_loop(model, data, spec, generator, groups, penalty, on_step, on_epoch):
    """The loop train_masked ran before it went through core.train.fit, kept to pin bit-identical results."""
    opt = spec.make_optimizer(groups)
    base = [g["lr"] for g in opt.param_groups]
    n = data.x_train.shape[0]
    total, step = spec.epochs * math.ceil(n / spec.batch_size), 0
    model.train()
    for epoch in range(spec.epochs):
        for g, b in zip(opt.param_groups, base):
            g["lr"] = b * spec.lr_factor(epoch)
        for idx in batches(n, spec.batch_size, generator):
            loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx]) + penalty()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            on_step(step, total)
        on_epoch(epoch + 1)
    return mk.accuracy(model, data)


def test_train_masked_is_bit_identical_to_the_former_loop():
    data = _toy()
    spec = mk.TrainSpec(epochs=4, lr=0.1, batch_size=16, milestones=(0.5, 0.75))
    out = []
    for use_fit in (True, False):
        torch.manual_seed(0)
        net = MLP([8, 16, 2])
        sp = ContinuousSparsifier(net, s_init=0.1)
        groups = [{"params": sp.weight_parameters()}, {"params": sp.mask_parameters(), "lr": 2.0, "weight_decay": 0}]
        seen = []

        def on_step(step, total, sp=sp):
            sp.beta = 1.0 + step / total

        kw = dict(generator=torch.Generator().manual_seed(3), groups=groups, penalty=lambda sp=sp: 1e-3 * sp.penalty(),
                  on_step=on_step, on_epoch=seen.append)
        if use_fit:
            acc = mk.train_masked(net, data, spec, **kw)
        else:
            acc = _reference_loop(net, data, spec, kw["generator"], groups, kw["penalty"], on_step, seen.append)
        out.append((acc, [p.detach().clone() for p in net.parameters()], seen, sp.beta))
    (a1, p1, e1, b1), (a2, p2, e2, b2) = out
    assert a1 == a2 and e1 == e2 == [1, 2, 3, 4] and b1 == b2 == 2.0
    assert all(torch.equal(x, y) for x, y in zip(p1, p2))


def test_apply_and_remove_masks_and_sparsity_report():
    torch.manual_seed(0)
    net = MLP([6, 10, 10, 3])
    layers = mk.prunable_layers(net)
    masks = {n: (torch.rand_like(m.weight) > 0.5).float() for n, m in layers.items()}
    mk.apply_masks(layers, masks)
    rep = mk.sparsity_report(layers)
    assert rep["global"]["kept"] == sum(int(m.sum()) for m in masks.values())
    assert rep["0"]["remaining"] == pytest.approx(float(masks["0"].mean()))
    raw = net[0].weight_orig.detach().clone()
    mk.remove_masks(layers)
    assert not hasattr(net[0], "weight_orig") and isinstance(net[0].weight, nn.Parameter)
    assert torch.equal(net[0].weight, raw * masks["0"])
    with pytest.raises(ValueError, match="exactly one"):
        mk.sparsity_report()


def test_retrain_ticket_starts_from_theta_hat_under_the_mask():
    data = _toy()
    torch.manual_seed(0)
    make = lambda: MLP([8, 16, 2])  # noqa: E731
    theta_hat = mk.snapshot(make())
    masks = {"0": torch.zeros(16, 8)}  # everything pruned: the hidden layer outputs its bias only
    acc = mk.retrain_ticket(make, theta_hat, masks, data, mk.TrainSpec(epochs=0))
    ref = make()
    mk.load_snapshot(ref, theta_hat)
    with torch.no_grad():
        ref[0].weight.zero_()
    assert acc == pytest.approx(mk.accuracy(ref, data))

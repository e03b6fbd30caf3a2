"""Pruning baselines and sparsity accounting (effcourse.sparsification.pruning)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from effcourse.core.data import Split
from effcourse.core.models import MLP, ResNet20
from effcourse.sparsification import pruning as pr
from effcourse.sparsification.cs import ContinuousSparsifier
from effcourse.sparsification.models import VGG16, Conv6, sparsifiable_layers


def _toy(n: int = 96, d: int = 8, seed: int = 0) -> Split:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = (x[:, 0] - x[:, 2] > 0).long()
    return Split(x[:64], y[:64], x[64:], y[64:], 2)


def test_prunable_layers_leave_the_classifier_dense():
    net = MLP([8, 16, 16, 4])
    assert list(pr.prunable_layers(net)) == ["0", "2"]
    assert list(pr.prunable_layers(net, include_output=True)) == ["0", "2", "4"]
    assert list(pr.prunable_layers(net, exclude=lambda n, m: n == "0")) == ["2"]
    with pytest.raises(ValueError, match="no nn.Linear"):
        pr.prunable_layers(nn.ReLU())


def test_global_magnitude_masks_compound_and_remove_the_smallest():
    torch.manual_seed(0)
    net = MLP([20, 50, 40, 3])
    layers = pr.prunable_layers(net)
    total = sum(m.weight.numel() for m in layers.values())
    for r in range(1, 6):
        masks = pr.magnitude_masks(layers, 0.2, "global")
        kept = sum(int(m.sum()) for m in masks.values())
        assert abs(kept - total * 0.8 ** r) <= r  # one weight of rounding per round at most
    w = torch.cat([m.weight_orig.detach().abs().flatten() for m in layers.values()])
    keep = torch.cat([m.weight_mask.flatten() for m in layers.values()]).bool()
    assert w[keep].min() >= w[~keep].max()
    rep = pr.sparsity_report(layers)
    assert rep["global"]["kept"] == int(keep.sum()) and rep["global"]["total"] == total
    assert rep["global"]["remaining"] == pytest.approx(keep.float().mean().item())


def test_layerwise_magnitude_masks_prune_each_layer_equally():
    torch.manual_seed(0)
    net = MLP([20, 50, 40, 3])
    layers = pr.prunable_layers(net)
    pr.magnitude_masks(layers, 0.5, "layer")
    rep = pr.sparsity_report(layers)
    assert rep["0"]["sparsity"] == pytest.approx(0.5) and rep["2"]["sparsity"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="amount"):
        pr.magnitude_masks(layers, 1.0)
    with pytest.raises(ValueError, match="scope"):
        pr.magnitude_masks(layers, 0.1, "row")


def test_snapshot_moves_between_parametrized_and_pruned_models():
    torch.manual_seed(0)
    a = MLP([6, 10, 3])
    ContinuousSparsifier(a, s_init=0.2)
    snap = pr.snapshot(a)
    assert set(snap) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    b = MLP([6, 10, 3])
    pr.apply_masks(pr.prunable_layers(b))
    pr.load_snapshot(b, snap)
    assert torch.equal(b[0].weight_orig, a[0].parametrizations.weight.original)
    with pytest.raises(KeyError):
        pr.load_snapshot(b, {"9.weight": torch.zeros(1)})


def test_gmp_schedule_is_cubic():
    assert pr.gmp_sparsity(0, 0.9, 10, 110) == 0.0
    assert pr.gmp_sparsity(110, 0.9, 10, 110) == 0.9
    assert pr.gmp_sparsity(60, 0.9, 10, 110) == pytest.approx(0.9 - 0.9 * 0.5 ** 3)
    assert pr.gmp_sparsity(35, 0.8, 10, 110, initial=0.2) == pytest.approx(0.8 - 0.6 * 0.75 ** 3)
    with pytest.raises(ValueError):
        pr.gmp_sparsity(5, 0.5, 10, 10)


def test_gradual_magnitude_pruning_reaches_the_target():
    data = _toy()
    torch.manual_seed(0)
    net = MLP([8, 32, 32, 2])
    layers = pr.prunable_layers(net)
    acc = pr.gradual_magnitude_pruning(net, layers, data, pr.TrainSpec(epochs=4, batch_size=16), 0.9,
                                       prune_every=2, generator=torch.Generator().manual_seed(0))
    assert pr.sparsity_report(layers)["global"]["sparsity"] == pytest.approx(0.9, abs=2e-3)
    assert 0 <= acc <= 1


def test_imp_follows_point_eight_to_the_r_and_rewinds():
    data = _toy()
    torch.manual_seed(0)
    make = lambda: MLP([8, 32, 2])  # noqa: E731
    spec = pr.TrainSpec(epochs=2, batch_size=16)
    tickets = pr.iterative_magnitude_pruning(make, data, spec, rounds=4, rewind_epoch=1,
                                             generator=torch.Generator().manual_seed(0))
    assert [t.round for t in tickets] == [0, 1, 2, 3, 4]
    for t in tickets:
        assert t.remaining == pytest.approx(0.8 ** t.round, abs=2e-3)
        assert 0 <= t.accuracy <= 1
    impc = pr.iterative_magnitude_pruning(make, data, spec, rounds=2, rewind=False, rewind_epoch=1,
                                          generator=torch.Generator().manual_seed(0))
    assert [t.remaining for t in impc] == pytest.approx([1.0, 0.8, 0.64], abs=2e-3)
    assert all(0 <= t.accuracy <= 1 for t in impc)
    with pytest.raises(ValueError, match="rate"):
        pr.iterative_magnitude_pruning(make, data, spec, rounds=2, rate=1.5)


def test_one_shot_pruning_leaves_the_model_alone():
    data = _toy()
    torch.manual_seed(0)
    net = MLP([8, 32, 32, 2])
    before = [p.detach().clone() for p in net.parameters()]
    acc, sp = pr.one_shot_magnitude_pruning(net, pr.prunable_layers(net), data, 0.75, pr.TrainSpec(epochs=1))
    assert sp == pytest.approx(0.75, abs=1e-3) and 0 <= acc <= 1
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
    assert not hasattr(net[0], "weight_mask")


def test_bernoulli_mask_straight_through_and_frozen_supermask():
    torch.manual_seed(0)
    bm = pr.BernoulliMask((50, 4), s_init=0.0)
    w = torch.ones(50, 4, requires_grad=True)
    out = bm(w)
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    out.sum().backward()
    assert torch.allclose(bm.s.grad, torch.full((50, 4), 0.25))  # STE: d/ds sigma(s) at 0 = 1/4
    data = _toy()
    net = MLP([8, 32, 2])
    w0 = net[0].weight.detach().clone()
    out = pr.stochastic_sparsification(net, pr.prunable_layers(net, include_output=True), data,
                                       pr.TrainSpec(epochs=2, batch_size=16), rounds=2, s_init=1.0,
                                       generator=torch.Generator().manual_seed(0))
    assert torch.equal(net[0].parametrizations.weight.original, w0)  # supermask: weights never move
    net.eval()
    assert torch.equal(net[0].weight, w0 * out["masks"]["0"])
    assert 0 < out["remaining"] <= 1


def test_sparsest_within_and_train_spec():
    pts = [(0.5, 0.97), (0.9, 0.96), (0.95, 0.94), (0.99, 0.5)]
    assert pr.sparsest_within(pts, 0.97) == 0.9  # 0.94 is 3 points below
    assert pr.sparsest_within(pts, 0.96) == 0.95
    assert pr.sparsest_within(pts, 1.5) == 0.0
    spec = pr.TrainSpec(epochs=85, milestones=(56 / 85, 71 / 85))
    assert [spec.lr_factor(e) for e in (0, 55, 56, 70, 71, 84)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    with pytest.raises(ValueError, match="epochs"):
        pr.TrainSpec(epochs=-1)
    with pytest.raises(ValueError, match="optimizer"):
        pr.TrainSpec(epochs=1, optimizer="lbfgs")


def test_thesis_models_and_their_sparsifiable_layers():
    r = ResNet20()
    lay = sparsifiable_layers(r)
    assert len(lay) == 19 and all(m.kernel_size == (3, 3) for m in lay.values())  # 1 + 18 convs, no shortcuts
    assert len(sparsifiable_layers(VGG16())) == 13
    c6 = sparsifiable_layers(Conv6())
    assert len(c6) == 8 and "classifier.4" not in c6
    assert r(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(TypeError):
        sparsifiable_layers(MLP([2, 2]))

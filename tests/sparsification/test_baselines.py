"""Pruning baselines (effcourse.sparsification.baselines): MP, GMP, IMP / IMP-C and stochastic masks."""

from __future__ import annotations

import pytest
import torch

from effcourse.core.data import Split
from effcourse.core.models import MLP
from effcourse.sparsification import baselines as bl
from effcourse.sparsification import masks as mk


def _toy(n: int = 96, d: int = 8, seed: int = 0) -> Split:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = (x[:, 0] - x[:, 2] > 0).long()
    return Split(x[:64], y[:64], x[64:], y[64:], 2)


def test_global_magnitude_masks_compound_and_remove_the_smallest():
    torch.manual_seed(0)
    net = MLP([20, 50, 40, 3])
    layers = mk.prunable_layers(net)
    total = sum(m.weight.numel() for m in layers.values())
    for r in range(1, 6):
        masks = bl.magnitude_masks(layers, 0.2, "global")
        kept = sum(int(m.sum()) for m in masks.values())
        assert abs(kept - total * 0.8 ** r) <= r  # one weight of rounding per round at most
    w = torch.cat([m.weight_orig.detach().abs().flatten() for m in layers.values()])
    keep = torch.cat([m.weight_mask.flatten() for m in layers.values()]).bool()
    assert w[keep].min() >= w[~keep].max()
    rep = mk.sparsity_report(layers)
    assert rep["global"]["kept"] == int(keep.sum()) and rep["global"]["total"] == total
    assert rep["global"]["remaining"] == pytest.approx(keep.float().mean().item())


def test_layerwise_magnitude_masks_prune_each_layer_equally():
    torch.manual_seed(0)
    net = MLP([20, 50, 40, 3])
    layers = mk.prunable_layers(net)
    bl.magnitude_masks(layers, 0.5, "layer")
    rep = mk.sparsity_report(layers)
    assert rep["0"]["sparsity"] == pytest.approx(0.5) and rep["2"]["sparsity"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="amount"):
        bl.magnitude_masks(layers, 1.0)
    with pytest.raises(ValueError, match="scope"):
        bl.magnitude_masks(layers, 0.1, "row")


def test_gmp_schedule_is_cubic():
    assert bl.gmp_sparsity(0, 0.9, 10, 110) == 0.0
    assert bl.gmp_sparsity(110, 0.9, 10, 110) == 0.9
    assert bl.gmp_sparsity(60, 0.9, 10, 110) == pytest.approx(0.9 - 0.9 * 0.5 ** 3)
    assert bl.gmp_sparsity(35, 0.8, 10, 110, initial=0.2) == pytest.approx(0.8 - 0.6 * 0.75 ** 3)
    with pytest.raises(ValueError):
        bl.gmp_sparsity(5, 0.5, 10, 10)


def test_gradual_magnitude_pruning_reaches_the_target():
    data = _toy()
    torch.manual_seed(0)
    net = MLP([8, 32, 32, 2])
    layers = mk.prunable_layers(net)
    acc = bl.gradual_magnitude_pruning(net, layers, data, mk.TrainSpec(epochs=4, batch_size=16), 0.9,
                                       prune_every=2, generator=torch.Generator().manual_seed(0))
    assert mk.sparsity_report(layers)["global"]["sparsity"] == pytest.approx(0.9, abs=2e-3)
    assert 0 <= acc <= 1


def test_imp_follows_point_eight_to_the_r_and_rewinds():
    data = _toy()
    torch.manual_seed(0)
    make = lambda: MLP([8, 32, 2])  # noqa: E731
    spec = mk.TrainSpec(epochs=2, batch_size=16)
    tickets = bl.iterative_magnitude_pruning(make, data, spec, rounds=4, rewind_epoch=1,
                                             generator=torch.Generator().manual_seed(0))
    assert [t.round for t in tickets] == [0, 1, 2, 3, 4]
    for t in tickets:
        assert t.remaining == pytest.approx(0.8 ** t.round, abs=2e-3)
        assert 0 <= t.accuracy <= 1
    impc = bl.iterative_magnitude_pruning(make, data, spec, rounds=2, rewind=False, rewind_epoch=1,
                                          generator=torch.Generator().manual_seed(0))
    assert [t.remaining for t in impc] == pytest.approx([1.0, 0.8, 0.64], abs=2e-3)
    assert all(0 <= t.accuracy <= 1 for t in impc)
    with pytest.raises(ValueError, match="rate"):
        bl.iterative_magnitude_pruning(make, data, spec, rounds=2, rate=1.5)


def test_one_shot_pruning_leaves_the_model_alone():
    data = _toy()
    torch.manual_seed(0)
    net = MLP([8, 32, 32, 2])
    before = [p.detach().clone() for p in net.parameters()]
    acc, sp = bl.one_shot_magnitude_pruning(net, mk.prunable_layers(net), data, 0.75, mk.TrainSpec(epochs=1))
    assert sp == pytest.approx(0.75, abs=1e-3) and 0 <= acc <= 1
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
    assert not hasattr(net[0], "weight_mask")


def test_bernoulli_mask_straight_through_and_frozen_supermask():
    torch.manual_seed(0)
    bm = bl.BernoulliMask((50, 4), s_init=0.0)
    w = torch.ones(50, 4, requires_grad=True)
    out = bm(w)
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    out.sum().backward()
    assert torch.allclose(bm.s.grad, torch.full((50, 4), 0.25))  # STE: d/ds sigma(s) at 0 = 1/4
    data = _toy()
    net = MLP([8, 32, 2])
    w0 = net[0].weight.detach().clone()
    out = bl.stochastic_sparsification(net, mk.prunable_layers(net, include_output=True), data,
                                       mk.TrainSpec(epochs=2, batch_size=16), rounds=2, s_init=1.0,
                                       generator=torch.Generator().manual_seed(0))
    assert torch.equal(net[0].parametrizations.weight.original, w0)  # supermask: weights never move
    net.eval()
    assert torch.equal(net[0].weight, w0 * out["masks"]["0"])
    assert 0 < out["remaining"] <= 1




def test_stochastic_sparsification_through_fit_matches_the_former_two_optimizer_loop():
    import torch.nn.functional as F
    from torch.nn.utils import parametrize

    from effcourse.core.train import batches

    data = _toy()
    spec = mk.TrainSpec(epochs=2, batch_size=16, milestones=())
    torch.manual_seed(0)
    a = MLP([8, 16, 2])
    b = MLP([8, 16, 2])
    b.load_state_dict(a.state_dict())
    torch.manual_seed(5)
    out = bl.stochastic_sparsification(a, mk.prunable_layers(a), data, spec, s_init=1.0, lam=1e-3, mask_lr=10.0,
                                       train_weights=True, generator=torch.Generator().manual_seed(1))
    # the former loop: SGD on s and the spec's optimizer on the weights, stepped in that order
    torch.manual_seed(5)
    bm = bl.BernoulliMask(b[0].weight.shape, 1.0)
    parametrize.register_parametrization(b[0], "weight", bm)
    w_params = [p for p in b.parameters() if p is not bm.s]
    opt_w, opt_s = spec.make_optimizer([{"params": w_params}]), torch.optim.SGD([bm.s], lr=10.0)
    g = torch.Generator().manual_seed(1)
    for _ in range(spec.epochs):
        for idx in batches(64, 16, g):
            loss = F.cross_entropy(b(data.x_train[idx]), data.y_train[idx]) + 1e-3 * torch.sigmoid(bm.s).sum()
            opt_s.zero_grad(set_to_none=True)
            opt_w.zero_grad(set_to_none=True)
            loss.backward()
            opt_s.step()
            opt_w.step()
    assert torch.equal(bm.s, a[0].parametrizations.weight[0].s)
    assert torch.equal(b[0].parametrizations.weight.original, a[0].parametrizations.weight.original)
    assert torch.equal(bm.freeze(g), out["masks"]["0"])

"""Continuous Sparsification (effcourse.sparsification): the relaxation, the schedule, the reset, the algorithms."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from effcourse.core.data import Split
from effcourse.core.models import MLP, SmallCNN
from effcourse.sparsification import cs
from effcourse.sparsification.masks import TrainSpec, snapshot, sparsity_report


def _toy(n: int = 96, d: int = 8, seed: int = 0) -> Split:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    return Split(x[:64], y[:64], x[64:], y[64:], 2)


@pytest.mark.parametrize("kind", ["sigmoid", "erf", "power", "arctan"])
def test_soft_steps_tend_to_heaviside_away_from_zero(kind):
    s = torch.tensor([-1.0, -0.1, 0.1, 1.0], dtype=torch.float64)
    far = cs.soft_step(s, 1e8, kind)
    assert torch.allclose(far, cs.heaviside(s), atol=1e-6)
    near = cs.soft_step(s, 1.0, kind)
    assert ((near > 0) & (near < 1)).all()  # smooth, not yet binary, at beta = 1
    for beta in (0.5, 1.0, 100.0, 1e6):
        assert float(cs.soft_step(torch.zeros((), dtype=torch.float64), beta, kind)) == 0.5


def test_printed_arctan_family_overshoots_and_corrected_one_does_not():
    s = torch.tensor([1.0], dtype=torch.float64)
    assert float(cs.soft_step(s, 1e9, "arctan_as_printed")) == pytest.approx((1 + math.pi ** 2 / 4) / 2, abs=1e-6)
    assert float(cs.soft_step(s, 1e9, "arctan")) == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="kind"):
        cs.soft_step(s, 1.0, "tanh")


def test_temperature_schedule_is_exponential_and_reaches_beta_final():
    T, bf = 37, 200.0
    b = [cs.temperature(t, T, bf) for t in range(T + 1)]
    assert b[0] == 1.0 and b[-1] == pytest.approx(bf, rel=1e-12)
    ratios = [b[t + 1] / b[t] for t in range(T)]
    assert max(ratios) - min(ratios) < 1e-10 and ratios[0] == pytest.approx(bf ** (1 / T))
    assert cs.temperature(T + 5, T, bf) == pytest.approx(bf)  # clamped past the end
    with pytest.raises(ValueError, match="total"):
        cs.temperature(1, 0, bf)
    with pytest.raises(ValueError, match="beta_final"):
        cs.temperature(1, 5, -1.0)


def test_round_reset_keeps_suppressed_gates_and_resets_survivors():
    g = torch.Generator().manual_seed(0)
    s = 0.1 * torch.randn(1000, generator=g, dtype=torch.float64)
    for s_init in (-0.1, 0.0, 0.05):
        beta = 150.0
        new = cs.round_reset(s, beta, s_init)
        kept = beta * s <= s_init
        assert torch.equal(torch.sigmoid(new[kept]), torch.sigmoid(beta * s[kept]))
        assert (new[~kept] == s_init).all()


def test_soft_mask_parametrization_matches_manual_computation_and_trains_both():
    torch.manual_seed(0)
    net = MLP([8, 16, 2])
    theta = net[0].weight.detach().clone()
    sp = cs.ContinuousSparsifier(net, s_init=0.3)
    assert list(sp.layers) == ["0"]  # the classifier stays dense by default
    sp.beta = 7.0
    with torch.no_grad():
        sp.masks["0"].s.copy_(torch.randn_like(theta))
    expected = torch.sigmoid(7.0 * sp.masks["0"].s) * theta
    assert torch.allclose(net[0].weight, expected)
    x = torch.randn(5, 8)
    loss = net(x).square().sum() + 1e-2 * sp.penalty()
    loss.backward()
    assert sp.masks["0"].s.grad is not None and sp.masks["0"].s.grad.abs().sum() > 0
    assert net[0].parametrizations.weight.original.grad.abs().sum() > 0
    expected_penalty = float(torch.sigmoid(7.0 * sp.masks["0"].s.detach()).sum())
    assert float(sp.penalty().detach()) == pytest.approx(expected_penalty, rel=1e-6)
    sp.set_hard(True)
    assert torch.equal(net[0].weight, cs.heaviside(sp.masks["0"].s) * theta)
    assert not sp.masks["0"].s.requires_grad


def test_sparsifier_reset_and_remove():
    torch.manual_seed(1)
    net = MLP([6, 12, 12, 3])
    sp = cs.ContinuousSparsifier(net, s_init=-0.05)
    assert set(sp.layers) == {"0", "2"}
    with torch.no_grad():
        for sm in sp.masks.values():
            sm.s.copy_(0.1 * torch.randn_like(sm.s))
    sp.beta = 80.0
    before = {n: sm.s.detach().clone() for n, sm in sp.masks.items()}
    hard_before = sp.hard_masks()
    sp.reset()
    assert sp.beta == 1.0
    for n, sm in sp.masks.items():
        assert torch.equal(sm.s, torch.minimum(80.0 * before[n], torch.tensor(-0.05)))
    # reading the mask after the reset would prune everything: that is why tickets are read before it
    assert sp.remaining() == 0.0 and 0 < sparsity_report(masks=hard_before)["global"]["remaining"] < 1
    raw = net[0].parametrizations.weight.original.detach().clone()
    sp.remove()
    assert not hasattr(net[0], "parametrizations")
    assert torch.equal(net[0].weight, raw * cs.heaviside(torch.minimum(80.0 * before["0"], torch.tensor(-0.05))))


def test_soft_mask_on_convolutions():
    torch.manual_seed(0)
    net = SmallCNN(channels=4)
    sp = cs.ContinuousSparsifier(net, s_init=0.1)
    assert set(sp.layers) == {"features.0", "features.3"}
    out = net(torch.randn(3, 1, 8, 8))
    assert out.shape == (3, 10)
    assert sum(p.numel() for p in sp.mask_parameters()) == 4 * 9 + 8 * 4 * 9


def test_ticket_search_reads_masks_before_reset_and_rewinds():
    data = _toy()
    spec = TrainSpec(epochs=3, lr=0.1, batch_size=16)
    make = lambda: MLP([8, 32, 2])  # noqa: E731
    torch.manual_seed(0)
    res = cs.cs_ticket_search(make, data, spec, rounds=3, s_init=-0.05, mask_lr_mult=20.0, rewind_epoch=1,
                              generator=torch.Generator().manual_seed(0))
    assert [t.round for t in res.tickets] == [1, 2, 3]
    rem = [t.remaining for t in res.tickets]
    assert all(0 < r < 1 for r in rem), rem
    assert rem[-1] <= rem[0], "rounds keep sparsifying"
    assert all(0 <= t.accuracy <= 1 for t in res.tickets)
    assert res.theta_hat is not None and set(res.theta_hat) == set(snapshot(make()))


def test_one_round_cs_with_frozen_weights_only_moves_the_mask():
    data = _toy()
    torch.manual_seed(0)
    net = MLP([8, 32, 2])
    for p in net.parameters():
        p.requires_grad_(False)
    w0 = net[0].weight.detach().clone()
    spec = TrainSpec(epochs=2, lr=0.05, optimizer="adam", weight_decay=0.0, milestones=())
    sp, acc = cs.continuous_sparsification(net, data, spec, s_init=0.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(net[0].parametrizations.weight.original, w0)
    assert (sp.masks["0"].s != 0).any() and 0 <= acc <= 1
    assert sp.beta == pytest.approx(200.0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_soft_mask_on_cuda():
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)).cuda()
    sp = cs.ContinuousSparsifier(net, s_init=0.1)
    sp.beta = 3.0
    out = net(torch.randn(2, 4, device="cuda"))
    out.sum().backward()
    assert sp.masks["0"].s.grad.device.type == "cuda"
    sp.reset()
    assert sp.masks["0"].beta.device.type == "cuda" and sp.beta == 1.0

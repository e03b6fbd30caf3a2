"""MeZO, MeZO-SVRG, ZO-SVRG, Alg. 6 and the trajectory rebuild (effcourse.mezo.optim)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from effcourse.mezo.optim import ZOSVRG, LossAnnealer, MeZO, MeZOSVRG, QueryCounter, Trajectory, rebuild


def _problem(dtype=torch.float32, device="cpu"):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(64, 10, generator=g).to(device, dtype)
    y = (X @ torch.randn(10, 1, generator=g).to(device, dtype)).squeeze(1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 16), nn.Tanh(), nn.Linear(16, 1)).to(device, dtype)

    def loss(idx=None):
        xi, yi = (X, y) if idx is None else (X[idx], y[idx])
        return F.mse_loss(model(xi).squeeze(1).float(), yi.float())

    return model, loss


def _batches(seed=0, steps=40, b=8):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 64, (b,), generator=g) for _ in range(steps)]


def test_mezo_decreases_the_loss_and_counts_forward_passes():
    model, loss = _problem()
    opt = MeZO(model.parameters(), lr=2e-3, mu=1e-3, seed=0)
    counter = QueryCounter()
    start = float(loss().detach())
    for idx in _batches(steps=300):
        opt.step(counter.wrap(lambda idx=idx: loss(idx), len(idx)))
    assert float(loss().detach()) < 0.7 * start
    assert opt.forward_calls == 600 and counter.queries == 600 * 8


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("anchor_estimator", ["store", "regenerate"])
def test_mezo_svrg_decreases_loss_and_its_trajectory_rebuilds_bit_for_bit(shared, anchor_estimator):
    model, loss = _problem()
    start_w = [p.detach().clone() for p in model.parameters()]
    traj = Trajectory()
    opt = MeZOSVRG(model.parameters(), lr_full=1e-2, lr_mini=2e-3, q=2, shared_direction=shared,
                   anchor_estimator=anchor_estimator, seed=1, trajectory=traj)
    start = float(loss().detach())
    for idx in _batches(steps=100):
        opt.step(lambda idx=idx: loss(idx), loss)
    assert float(loss().detach()) < 0.8 * start
    assert opt.forward_calls == 50 * 2 + 50 * 4
    replay = [w.clone() for w in start_w]
    rebuild(replay, traj)
    assert all(torch.equal(a, b) for a, b in zip(replay, model.parameters()))
    mid = [w.clone() for w in start_w]
    rebuild(mid, traj, steps=10)
    assert not torch.equal(mid[0], replay[0])
    assert traj.nbytes() < 30_000


def test_mezo_rebuild_is_exact_and_tiny():
    model, loss = _problem()
    w0 = [p.detach().clone() for p in model.parameters()]
    traj = Trajectory()
    opt = MeZO(model.parameters(), lr=1e-3, seed=3, trajectory=traj)
    for idx in _batches(steps=50):
        opt.step(lambda idx=idx: loss(idx))
    rebuild(w0, traj)
    assert all(torch.equal(a, b) for a, b in zip(w0, model.parameters()))
    with pytest.raises(ValueError, match="steps"):
        rebuild(w0, traj, steps=51)


def test_anchor_is_a_real_copy_that_stays_put_between_anchor_steps():
    model, loss = _problem()
    opt = MeZOSVRG(model.parameters(), lr_full=1e-2, lr_mini=1e-2, q=5, seed=0)
    batches = _batches(steps=5)
    opt.step(lambda: loss(batches[0]), loss)
    anchor = [a.clone() for a in opt.anchor()]
    assert all(a.data_ptr() != p.data_ptr() for a, p in zip(opt.anchor(), model.parameters()))
    moved = [p.detach().clone() for p in model.parameters()]
    for idx in batches[1:]:
        opt.step(lambda idx=idx: loss(idx))
    # the in-place +mu, -2mu, +mu cycle on the anchor is exact up to rounding, never by a learning-rate step
    drift = max(float((a - b).abs().max()) for a, b in zip(opt.anchor(), anchor))
    step = max(float((p.detach() - m).abs().max()) for p, m in zip(model.parameters(), moved))
    assert drift < 1e-6 and step > 1e-4
    # the bug of a shallow anchor (the same tensors) would make the anchor move with the weights
    assert not all(torch.equal(a, p) for a, p in zip(opt.anchor(), model.parameters()))


def test_store_and_regenerate_give_the_same_trajectory():
    out = []
    for mode in ("store", "regenerate"):
        model, loss = _problem(dtype=torch.float64)
        opt = MeZOSVRG(model.parameters(), lr_full=1e-2, lr_mini=1e-3, q=2, anchor_estimator=mode, seed=4)
        for idx in _batches(steps=20):
            opt.step(lambda idx=idx, loss=loss: loss(idx), loss)
        out.append(torch.cat([p.flatten() for p in model.parameters()]))
        if mode == "regenerate":
            assert all("g" not in opt.state[p] for p in model.parameters())
    assert torch.allclose(out[0], out[1], atol=1e-12)


def test_partial_fine_tuning_touches_only_the_given_tensors():
    model, loss = _problem()
    frozen = model[0].weight.detach().clone()
    opt = MeZO(list(model[2].parameters()), lr=1e-2, seed=0)
    for idx in _batches(steps=5):
        opt.step(lambda idx=idx: loss(idx))
    assert torch.equal(model[0].weight, frozen)


def test_bf16_mezo_runs_and_keeps_dtype():
    model, loss = _problem(dtype=torch.bfloat16)
    opt = MeZO(model.parameters(), lr=1e-3, mu=1e-2)
    for idx in _batches(steps=3):
        opt.step(lambda idx=idx: loss(idx))
    assert all(p.dtype == torch.bfloat16 and torch.isfinite(p).all() for p in model.parameters())


def test_zo_svrg_naive_baseline_descends():
    model, loss = _problem(dtype=torch.float64)
    opt = ZOSVRG(model.parameters(), lr=2e-3, q=2, seed=0)
    start = float(loss().detach())
    for idx in _batches(steps=30, b=4):
        opt.step(lambda i: loss(torch.tensor([i])), idx.tolist(), range(0, 64, 4))
    assert float(loss().detach()) < start
    assert len(opt.state[next(model.parameters())]) == 4  # anchor, g, g_hat, g_bar (plus theta: 5d)


def test_annealer_divides_by_exactly_alpha_on_rising_losses():
    model, _ = _problem()
    opt = MeZOSVRG(model.parameters(), lr_full=1e-2, lr_mini=1e-3)
    ann = LossAnnealer(opt, window=4, kappa=1.05, alpha=5)
    fired = [ann.observe(v) for v in [1.0] * 4 + [0.9] * 4]
    assert not any(fired) and opt.param_groups[0]["lr_full"] == 1e-2
    fired = [ann.observe(v) for v in [1.2] * 4]
    assert fired[-1] and opt.param_groups[0]["lr_full"] == pytest.approx(2e-3)
    assert opt.param_groups[0]["lr_mini"] == pytest.approx(2e-4)


def test_bad_arguments_are_named():
    model, _ = _problem()
    with pytest.raises(ValueError, match="lr"):
        MeZO(model.parameters(), lr=0)
    with pytest.raises(ValueError, match="q"):
        MeZOSVRG(model.parameters(), 1e-3, 1e-4, q=0)
    with pytest.raises(ValueError, match="anchor_estimator"):
        MeZOSVRG(model.parameters(), 1e-3, 1e-4, anchor_estimator="keep")
    opt = MeZOSVRG(model.parameters(), 1e-3, 1e-4)
    with pytest.raises(ValueError, match="anchor_closure"):
        opt.step(lambda: torch.tensor(0.0))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_mezo_svrg_on_cuda_bf16_rebuilds_exactly():
    model, loss = _problem(dtype=torch.bfloat16, device="cuda")
    w0 = [p.detach().clone() for p in model.parameters()]
    traj = Trajectory()
    opt = MeZOSVRG(model.parameters(), lr_full=1e-2, lr_mini=1e-3, mu=1e-2, trajectory=traj)
    for idx in _batches(steps=10):
        idx = idx.cuda()
        opt.step(lambda idx=idx: loss(idx), loss)
    rebuild(w0, traj)
    assert all(torch.equal(a, b) for a, b in zip(w0, model.parameters()))

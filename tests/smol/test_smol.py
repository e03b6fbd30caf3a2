"""SMOL (Savarese 2025, ch. 5): s <-> p maps, the parametrization, allocation, ZPA, and the quadratic optimum."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from effcourse.core.data import Split
from effcourse.smol import fixed_point as qz
from effcourse.smol import smol as sm


def test_s_p_maps():
    assert math.isclose(float(sm.precision_to_s(8.0)), -math.log(127), rel_tol=1e-6)
    assert math.isclose(float(torch.sigmoid(sm.precision_to_s(8.0))), 2 ** -7, rel_tol=1e-5)
    p = torch.linspace(1.1, 20, 50, dtype=torch.float64)
    assert torch.allclose(sm.s_to_precision(sm.precision_to_s(p)), p)
    s = torch.randn(200, dtype=torch.float64) * 5
    # sigma(s) = 2^(1 - p)
    assert torch.allclose(torch.sigmoid(s), torch.exp2(1 - sm.s_to_precision(s)))
    assert torch.allclose(sm.precision_penalty(s), (sm.s_to_precision(s) - 1).sum())
    assert torch.allclose(sm.precision_penalty(s, group_size=7), 7 * (sm.s_to_precision(s) - 1).sum())


def test_integer_precision_rounding():
    s = sm.precision_to_s(torch.tensor([2.4, 2.6, 3.0001]))
    assert sm.integer_precision(s).tolist() == [2, 2, 3]
    assert sm.integer_precision(s, "round").tolist() == [2, 3, 3]
    assert sm.integer_precision(s, "ceil").tolist() == [3, 3, 4]
    assert int(sm.integer_precision(torch.tensor(50.0))) == 1  # huge noise: one bit, never fewer


def test_penalty_gradient_pushes_towards_fewer_bits():
    s = torch.zeros(3, requires_grad=True)
    sm.precision_penalty(s).backward()
    assert bool((s.grad < 0).all())  # descent raises s, i.e. widens the noise


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))


def test_attaching_keeps_the_function_and_separates_parameters():
    model = _mlp()
    x = torch.randn(4, 5)
    before = model(x)
    smol = sm.SMOL(model).set_mode("fp")
    assert smol.names == ["0.weight", "2.weight"]
    assert torch.allclose(model(x), before, atol=1e-6)
    s_ids = {id(p) for p in smol.precision_parameters()}
    assert len(s_ids) == 2 and not s_ids & {id(p) for p in smol.model_parameters()}
    assert len(smol.model_parameters()) == 4  # two weights (as originals) and two biases
    c = smol.parametrization("0.weight").scale
    assert float(smol.grid_weight("0.weight").detach().abs().max()) <= 1.0 and float(torch.log2(c)) % 1 == 0


def test_noise_quant_and_eval_modes():
    model = _mlp()
    smol = sm.SMOL(model, p_init=3.0)
    par, w = smol.parametrization("0.weight"), smol.grid_weight("0.weight")
    model.train()
    noisy = model[0].weight / par.scale
    assert not torch.allclose(noisy, w)
    assert bool(((noisy - w).abs() <= 2.0 ** (1 - 3.0) + 1e-6).all())  # sigma(s_init) = 2^(1 - p_init)
    model.eval()
    assert torch.allclose(model[0].weight / par.scale, w)  # no noise at evaluation
    smol.set_precisions(2)
    assert torch.allclose(model[0].weight, qz.quantize(w, 2) * par.scale)


def test_granularity_shapes_and_penalty():
    model = nn.Conv2d(3, 4, 3)
    for gran, shape, group in [("weight", (4, 3, 3, 3), 1), ("channel", (4, 1, 1, 1), 27),
                               ("layer", (1, 1, 1, 1), 108)]:
        m = nn.Conv2d(3, 4, 3)
        smol = sm.SMOL(m, granularity=gran, p_init=4.0)
        par = smol.parametrization("weight")
        assert tuple(par.s.shape) == shape and par.group_size == group
        # every granularity charges 3 bits above 1 for each of the 108 weights at p_init = 4, and maps back to 4
        assert math.isclose(float(smol.penalty().detach()), 108 * 3.0, rel_tol=1e-5)
        p = smol.allocate()
        assert p["weight"].shape == model.weight.shape and set(p["weight"].unique().tolist()) == {4}


def test_clip_keeps_noisy_weights_in_domain():
    model = _mlp()
    smol = sm.SMOL(model)
    with torch.no_grad():
        smol.grid_weight("0.weight").fill_(5.0)
        smol.parametrization("0.weight").s.fill_(0.0)
    smol.clip_()
    assert torch.allclose(smol.grid_weight("0.weight"), torch.full((8, 5), 1.5))  # 2 - sigmoid(0)


def test_allocate_zpa_and_shuffle():
    model = _mlp()
    smol = sm.SMOL(model)
    with torch.no_grad():
        smol.parametrization("2.weight").s.copy_(torch.randn(3, 8) * 3)
    real = smol.real_precisions()["2.weight"]
    p = smol.allocate()
    assert torch.equal(p["2.weight"], torch.floor(real).long())
    err_before = smol.quantization_errors()
    pz = smol.zero_precision_allocation()
    err_after = smol.quantization_errors()
    assert all(bool((err_after[n] <= err_before[n]).all()) for n in smol.names)
    assert smol.bits_per_parameter() <= qz.bits_per_parameter(p)
    before = {n: t.flatten().sort().values for n, t in pz.items()}
    shuffled = smol.shuffle_precisions(torch.Generator().manual_seed(0))
    assert all(torch.equal(shuffled[n].flatten().sort().values, before[n]) for n in smol.names)


def test_one_dimensional_quadratic_optimum():
    """E[h/2 (w + sigma eps - c)^2] - lam log2 sigma is minimal at sigma^2 = 3 lam / (h ln 2)."""

    class Quad(nn.Module):
        def __init__(self, h):
            super().__init__()
            self.register_buffer("h", torch.tensor(h))
            self.weight = nn.Parameter(torch.full((len(h),), 0.3))

        def forward(self):
            return 0.5 * (self.h * (self.weight - 0.3) ** 2).sum()

    torch.manual_seed(0)
    h, lam = [3.0, 300.0], 1e-3
    quad = Quad(h)
    smol = sm.SMOL(quad, ["weight"], scale=1.0)
    s_opt = torch.optim.Adam(smol.precision_parameters(), lr=2e-2)
    for _ in range(1500):
        loss = sum(quad() for _ in range(8)) / 8 + lam * smol.penalty()
        s_opt.zero_grad()
        loss.backward()
        s_opt.step()
    p_star = 1 + 0.5 * torch.log2(torch.tensor(h) * math.log(2) / (3 * lam))
    assert torch.allclose(smol.real_precisions()["weight"], p_star, atol=0.2)


def test_precision_training_lowers_bits_with_lambda():
    torch.manual_seed(0)
    x = torch.randn(256, 5)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    data = Split(x, y, x, y, 3)
    bpp = []
    for lam in (1e-4, 1e-1):
        model = _mlp()
        smol = sm.SMOL(model)
        w_opt = torch.optim.SGD(smol.model_parameters(), lr=0.1)
        s_opt = torch.optim.Adam(smol.precision_parameters(), lr=0.05)
        hist = sm.precision_training(model, smol, data, 5, 32, w_opt, s_opt, lam, samples=2,
                                     generator=torch.Generator().manual_seed(0))
        assert len(hist) == 5 and all(math.isfinite(v) for v in hist)
        bound = 2 - torch.sigmoid(smol.parametrization("0.weight").s)
        assert bool((smol.grid_weight("0.weight").abs() <= bound + 1e-6).all())
        smol.allocate()
        bpp.append(smol.bits_per_parameter())
    assert bpp[1] < bpp[0]


def test_activation_smol():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    acts = sm.add_activation_smol(model, torch.randn(3, 4), alpha=1.0, p_init=3.0)
    assert len(acts) == 1 and isinstance(model[1], sm.ActivationSMOL) and tuple(acts[0].s.shape) == (6,)
    x = torch.randn(50, 6) * 3
    a = acts[0].eval()
    y = a(x)
    assert float(y.detach().min()) >= 0 and float(y.detach().max()) <= 1.0
    a.precision.fill_(2)
    a.mode = "quant"
    levels = torch.unique(a(x))  # 2 bits: 4 levels 0, 1/3, 2/3, 1 on [0, alpha]
    assert len(levels) <= 4 and torch.allclose(levels * 3, torch.round(levels * 3), atol=1e-5)


def test_sensitivity_allocation_meets_budget():
    torch.manual_seed(0)
    model = _mlp()
    smol = sm.SMOL(model).set_mode("fp")
    x = torch.randn(64, 5)
    y = torch.randint(0, 3, (64,))
    alloc = sm.sensitivity_allocation(smol, x, y, budget_bpp=3.0)
    assert set(alloc) == set(smol.names)
    assert smol.bits_per_parameter() <= 3.0
    assert F.cross_entropy(model(x), y).isfinite()


def test_errors():
    with pytest.raises(ValueError, match="p must be > 1"):
        sm.precision_to_s(1.0)
    with pytest.raises(ValueError, match="rounding must be one of"):
        sm.integer_precision(torch.zeros(1), "nearest")
    with pytest.raises(ValueError, match="granularity must be one of"):
        sm.SMOL(_mlp(), granularity="row")
    with pytest.raises(KeyError, match="is not a parameter"):
        sm.SMOL(_mlp(), ["0.wieght"])
    with pytest.raises(ValueError, match="p_init must be a number > 1"):
        sm.SMOL(_mlp(), p_init=1)
    with pytest.raises(ValueError, match="mode must be one of"):
        sm.SMOL(_mlp()).set_mode("train")
    with pytest.raises(ValueError, match="group_size must be a positive int"):
        sm.precision_penalty(torch.zeros(2), 0)
    with pytest.raises(ValueError, match="shape must list positive sizes"):
        sm.ActivationSMOL(())
    with pytest.raises(ValueError, match="no nn.ReLU"):
        sm.add_activation_smol(nn.Linear(2, 2), torch.zeros(1, 2))
    data = Split(torch.zeros(4, 5), torch.zeros(4, dtype=torch.long), torch.zeros(4, 5),
                 torch.zeros(4, dtype=torch.long), 3)
    model = _mlp()
    smol = sm.SMOL(model)
    opt = torch.optim.SGD(smol.model_parameters(), lr=0.1)
    with pytest.raises(ValueError, match="samples"):
        sm.precision_training(model, smol, data, 1, 2, opt, opt, 0.1, samples=0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_smol_on_cuda():
    model = _mlp().cuda()
    smol = sm.SMOL(model)
    x = torch.randn(4, 5, device="cuda")
    model(x).sum().backward()
    assert smol.parametrization("0.weight").s.grad is not None
    smol.allocate(zpa=True)
    assert model(x).isfinite().all()

"""SMOL attached to a model's weights: modes, granularities, clipping, allocation, ZPA and shuffling."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from effcourse.smol import SMOL
from effcourse.smol import fixed_point as qz


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))


def test_attaching_keeps_the_function_and_separates_parameters():
    model = _mlp()
    x = torch.randn(4, 5)
    before = model(x)
    smol = SMOL(model).set_mode("fp")
    assert smol.names == ["0.weight", "2.weight"]
    assert torch.allclose(model(x), before, atol=1e-6)
    s_ids = {id(p) for p in smol.precision_parameters()}
    assert len(s_ids) == 2 and not s_ids & {id(p) for p in smol.model_parameters()}
    assert len(smol.model_parameters()) == 4  # two weights (as originals) and two biases
    c = smol.parametrization("0.weight").scale
    assert float(smol.grid_weight("0.weight").detach().abs().max()) <= 1.0 and float(torch.log2(c)) % 1 == 0


def test_noise_quant_and_eval_modes():
    model = _mlp()
    smol = SMOL(model, p_init=3.0)
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
        smol = SMOL(m, granularity=gran, p_init=4.0)
        par = smol.parametrization("weight")
        assert tuple(par.s.shape) == shape and par.group_size == group
        # every granularity charges 3 bits above 1 for each of the 108 weights at p_init = 4, and maps back to 4
        assert math.isclose(float(smol.penalty().detach()), 108 * 3.0, rel_tol=1e-5)
        p = smol.allocate()
        assert p["weight"].shape == model.weight.shape and set(p["weight"].unique().tolist()) == {4}


def test_clip_keeps_noisy_weights_in_domain():
    model = _mlp()
    smol = SMOL(model)
    with torch.no_grad():
        smol.grid_weight("0.weight").fill_(5.0)
        smol.parametrization("0.weight").s.fill_(0.0)
    smol.clip_()
    assert torch.allclose(smol.grid_weight("0.weight"), torch.full((8, 5), 1.5))  # 2 - sigmoid(0)


def test_allocate_zpa_and_shuffle():
    model = _mlp()
    smol = SMOL(model)
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
    smol = SMOL(quad, ["weight"], scale=1.0)
    s_opt = torch.optim.Adam(smol.precision_parameters(), lr=2e-2)
    for _ in range(1500):
        loss = sum(quad() for _ in range(8)) / 8 + lam * smol.penalty()
        s_opt.zero_grad()
        loss.backward()
        s_opt.step()
    p_star = 1 + 0.5 * torch.log2(torch.tensor(h) * math.log(2) / (3 * lam))
    assert torch.allclose(smol.real_precisions()["weight"], p_star, atol=0.2)


def test_remove_bakes_quantized_weights():
    model = _mlp()
    smol = SMOL(model)
    smol.set_precisions(1)
    w = model[0].weight.detach().clone()
    plain = smol.remove()
    assert not hasattr(plain[0], "parametrizations") or "weight" not in plain[0].parametrizations
    assert torch.equal(plain[0].weight.detach(), w) and w.abs().unique().numel() == 1  # 1 bit: +-scale


def test_errors():
    with pytest.raises(ValueError, match="granularity must be one of"):
        SMOL(_mlp(), granularity="row")
    with pytest.raises(KeyError, match="is not a parameter"):
        SMOL(_mlp(), ["0.wieght"])
    with pytest.raises(ValueError, match="p_init must be a number > 1"):
        SMOL(_mlp(), p_init=1)
    with pytest.raises(ValueError, match="mode must be one of"):
        SMOL(_mlp()).set_mode("train")
    with pytest.raises(TypeError, match="model must be an nn.Module"):
        SMOL("mlp")
    with pytest.raises(ValueError, match="scale must be 'pow2' or a positive number"):
        SMOL(_mlp(), scale=-1.0)
    with pytest.raises(ValueError, match="precisions for"):
        SMOL(_mlp()).set_precisions(40)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_smol_on_cuda():
    model = _mlp().cuda()
    smol = SMOL(model)
    x = torch.randn(4, 5, device="cuda")
    model(x).sum().backward()
    assert smol.parametrization("0.weight").s.grad is not None
    smol.allocate(zpa=True)
    assert model(x).isfinite().all()

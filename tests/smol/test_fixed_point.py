"""The fixed-point quantizer, zero-precision allocation and cost accounting (Savarese 2025, 5.2)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from effcourse.smol import fixed_point as qz


def test_grids_match_the_thesis():
    assert qz.fixed_point_grid(1).tolist() == [-1.0, 1.0]
    assert qz.fixed_point_grid(2).tolist() == [-1.5, -0.5, 0.5, 1.5]
    assert qz.fixed_point_grid(3).tolist() == [-1.75, -1.25, -0.75, -0.25, 0.25, 0.75, 1.25, 1.75]
    assert qz.fixed_point_grid(0).tolist() == [0.0]


def test_worked_example():
    assert float(qz.quantize(torch.tensor(0.2), 2)) == 0.5
    assert float(qz.quantize(torch.tensor(0.2), 0)) == 0.0
    # ZPA fires on it: error 0.2 at p = 0 against 0.3 at p = 2
    assert int(qz.zero_precision_allocation(torch.tensor(0.2), torch.tensor(2))) == 0


@pytest.mark.parametrize("p", range(1, 9))
def test_closed_form_is_nearest_grid_point(p):
    w = torch.rand(5000, dtype=torch.float64, generator=torch.Generator().manual_seed(p)) * 5 - 2.5
    grid = qz.fixed_point_grid(p)
    nearest_err = (w[:, None] - grid[None, :]).abs().min(1).values
    q = qz.quantize(w, p)
    assert torch.allclose((w - q).abs(), nearest_err)
    assert bool(torch.isin(q, grid).all())  # every output is a representable value
    inside = w.abs() <= 2
    assert bool(((w - q).abs()[inside] <= 2.0 ** (1 - p) + 1e-12).all())


def test_vectorized_over_per_weight_precisions():
    w = torch.tensor([0.2, 0.2, -0.2, 1.0, 3.0, -3.0])
    p = torch.tensor([2, 0, 1, 3, 2, 1])
    expected = torch.stack([qz.quantize(w[i], int(p[i])) for i in range(len(w))])
    assert torch.equal(qz.quantize(w, p), expected)
    assert qz.quantize(w, p).tolist() == [0.5, 0.0, -1.0, 1.25, 1.5, -1.0]


def test_scale_measures_weights_in_grid_units():
    w = torch.tensor([0.05, -0.02, 0.1])
    c = qz.power_of_two_scale(w)
    assert float(c) == 0.125
    assert torch.allclose(qz.quantize(w, 2, c), c * qz.quantize(w / c, 2))


def test_zpa_never_raises_error_and_fires_iff_small():
    gen = torch.Generator().manual_seed(0)
    w = torch.rand(20000, generator=gen, dtype=torch.float64) * 4 - 2
    p = torch.randint(1, 9, w.shape, generator=gen)
    pz = qz.zero_precision_allocation(w, p)
    assert bool((qz.quantization_error(w, pz) <= qz.quantization_error(w, p)).all())
    assert torch.equal(pz == 0, w.abs() <= 2.0 ** (-p.double()))
    assert bool((pz[pz != 0] == p[pz != 0]).all())
    assert int((pz == 0).sum()) > 0


def test_ste_passes_gradient_through():
    w = torch.tensor([0.3, -0.7], requires_grad=True)
    y = qz.quantize_ste(w, 2)
    assert y.tolist() == [0.5, -0.5]
    y.sum().backward()
    assert w.grad.tolist() == [1.0, 1.0]


def test_bits_and_bops():
    ps = {"a": torch.tensor([[1, 2], [3, 0]]), "b": torch.full((4,), 2)}
    assert qz.model_bits(ps) == 14
    assert qz.bits_per_parameter(ps) == 14 / 8
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Flatten(), nn.Linear(2 * 16, 3))
    prec = {"0": torch.full((2, 1, 3, 3), 2), "2": torch.ones(3, 32, dtype=torch.long)}
    b = qz.bops(model, torch.zeros(5, 1, 4, 4), prec, activation_bits=4)
    assert b["0"] == 2 * 18 * 16 * 4  # each weight used at 16 positions
    assert b["2"] == 96 * 4


def test_errors():
    with pytest.raises(TypeError, match="p must hold integers"):
        qz.quantize(torch.zeros(3), torch.tensor([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match=r"p must lie in \[0, 32\]"):
        qz.quantize(torch.zeros(3), -1)
    with pytest.raises(TypeError, match="w must be a floating-point tensor"):
        qz.quantize(torch.zeros(3, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="scale must be positive"):
        qz.quantize(torch.zeros(3), 2, scale=0.0)
    with pytest.raises(ValueError, match="p must be an int in"):
        qz.fixed_point_grid(17)
    with pytest.raises(ValueError, match="precisions is empty"):
        qz.bits_per_parameter([])
    with pytest.raises(KeyError, match="lacks"):
        qz.bops(nn.Linear(2, 2), torch.zeros(1, 2), {"nope": torch.tensor(1)})
    with pytest.raises(ValueError, match="activation_bits must be positive"):
        qz.bops(nn.Linear(2, 2), torch.zeros(1, 2), {"": torch.tensor(1)}, activation_bits=0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_quantize_on_cuda_matches_cpu():
    w = torch.randn(1000) * 0.8
    p = torch.randint(0, 9, (1000,))
    assert torch.equal(qz.quantize(w.cuda(), p.cuda()).cpu(), qz.quantize(w, p))

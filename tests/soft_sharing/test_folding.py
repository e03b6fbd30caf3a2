"""Proposition 3.1, the thesis's least-squares rounding (eqs. 3.15-3.18, with its erratum), our scaled rounding,
folding a bank in place, and batch-norm recalibration."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from effcourse.soft_sharing.folding import (
    fold_bank,
    group_layers,
    least_squares_rounding,
    program_order,
    recalibrate_batchnorm,
    reparameterize,
    scaled_rounding,
)
from effcourse.soft_sharing.similarity import layer_similarity
from effcourse.soft_sharing.templates import SConv2d, TemplateBank, stack_coefficients

# The worked example of eqs. 3.15-3.18 (columns = layers).
ALPHA = torch.tensor([[0.8, 0.1, -1.2, 0.2, -0.4],
                      [-0.2, 0.6, 0.3, 1.2, -0.3],
                      [0.6, -0.2, -0.9, -0.4, 0.7],
                      [0.2, 1.2, -0.3, 2.4, -0.1]], dtype=torch.float64)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="threshold"):
        group_layers(torch.eye(3), 1.5)
    with pytest.raises(ValueError, match="groups"):
        least_squares_rounding(ALPHA, torch.tensor([0, 2, 0, 2, 1, 1]))
    with pytest.raises(ValueError, match="b must be"):
        reparameterize(ALPHA, torch.randn(4, 7, dtype=torch.float64), torch.eye(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="mode"):
        fold_bank([SConv2d(TemplateBank(2, (3, 3, 3, 3)))], torch.tensor([0]), "round")


def test_worked_example_lsm_and_corrected_b():
    s = layer_similarity(ALPHA)
    assert round(float(s[0, 1]), 4) == 0.0566 and round(float(s[0, 4]), 4) == 0.1556
    assert round(float(s[1, 4]), 4) == 0.4075
    torch.testing.assert_close(s[0, 2], torch.tensor(1.0, dtype=torch.float64))
    groups = group_layers(s, 0.99)
    assert groups.tolist() == [0, 1, 0, 1, 2]
    onehot, b = least_squares_rounding(ALPHA, groups)
    assert onehot.tolist() == [[1, 0, 1, 0, 0], [0, 1, 0, 1, 0], [0, 0, 0, 0, 1]]
    want = torch.tensor([[-0.2, 0.05, -0.15, -0.05], [0.15, 0.9, -0.3, 1.8], [-0.4, -0.3, 0.7, -0.1]],
                        dtype=torch.float64)
    torch.testing.assert_close(b, want)  # B[2, 1] = -0.3: the printed +0.3 is a sign erratum


def test_proposition_3_1():
    g = torch.Generator().manual_seed(0)
    alpha = torch.randn(4, 9, generator=g, dtype=torch.float64)
    t = torch.randn(4, 30, generator=g, dtype=torch.float64)
    b = torch.randn(4, 4, generator=g, dtype=torch.float64) + 3 * torch.eye(4, dtype=torch.float64)
    a2, t2 = reparameterize(alpha, t, b)
    assert float((a2.T @ t2 - alpha.T @ t).abs().max()) < 1e-12
    assert float((a2 - alpha).abs().max()) > 1e-3  # the coefficients did change


def test_naive_rounding_not_function_preserving_scaled_is():
    t = torch.randn(4, 20, dtype=torch.float64)
    groups = torch.tensor([0, 1, 0, 1, 2])
    _, b = least_squares_rounding(ALPHA, groups)
    naive = (b @ t)[groups]
    exact = ALPHA.T @ t
    rel = ((naive - exact).norm(dim=1) / exact.norm(dim=1))
    assert rel[:4].min() > 0.2 and float(rel[4]) < 1e-12
    u, scale = scaled_rounding(ALPHA, groups)
    torch.testing.assert_close(u[:, groups] * scale, ALPHA)
    assert scale[0] > 0 and scale[2] == pytest.approx(-1.5 * float(scale[0]))


def test_fold_bank_exact_on_tied_coefficients():
    torch.manual_seed(0)
    bank = TemplateBank(3, (4, 4, 3, 3), dtype=torch.float64)
    layers = [SConv2d(bank, padding=1) for _ in range(6)]
    with torch.no_grad():  # tie 3=5 (scaled by -2) and 4=6 (scaled by 0.5)
        layers[4].coefficients.copy_(-2 * layers[2].coefficients)
        layers[5].coefficients.copy_(0.5 * layers[3].coefficients)
    x = torch.randn(2, 4, 5, 5, dtype=torch.float64)
    before = [m(x) for m in layers]
    groups = group_layers(layer_similarity(stack_coefficients(layers).detach()), 0.999)
    assert program_order(groups) == [1, 2, 3, 4, 3, 4]
    new = fold_bank(layers, groups, "scaled")
    assert new.k == 4 and all(m.bank is new for m in layers)
    for m, y in zip(layers, before):
        torch.testing.assert_close(m(x), y)


def test_fold_bank_naive_breaks_scaled_copies():
    torch.manual_seed(1)
    bank = TemplateBank(2, (3, 3, 3, 3), dtype=torch.float64)
    layers = [SConv2d(bank, padding=1) for _ in range(2)]
    with torch.no_grad():
        layers[1].coefficients.copy_(-layers[0].coefficients)
    x = torch.randn(1, 3, 4, 4, dtype=torch.float64)
    fold_bank(layers, torch.tensor([0, 0]), "naive")
    assert float(layers[0](x).detach().abs().max()) < 1e-12  # opposite signs averaged to zero


def test_recalibrate_batchnorm_matches_data_statistics():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    x = torch.randn(500, 3) * 3 + 1
    recalibrate_batchnorm(net, x, batch_size=100)
    with torch.no_grad():
        h = net[0](x)
    torch.testing.assert_close(net[1].running_mean, h.mean(0), atol=1e-5, rtol=0)
    assert net[1].momentum == 0.1 and net.training


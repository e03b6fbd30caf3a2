"""Where separability breaks: constant inputs, and the share of ||eta||^2 held by a few coordinates."""

import pytest
import torch

from effcourse.avagrad import AvaGrad, model_factory, pitfall
from effcourse.core.data import Split, dataset, holdout


def test_raw_digits_keep_the_constant_pixels_the_factory_drops():
    raw, clean = pitfall.raw_digits(), dataset("digits", flat=True)
    n = pitfall.constant_columns(raw)
    assert n >= 3 and raw.num_features == clean.num_features + n
    assert pitfall.constant_columns(clean) == 0
    with pytest.raises(ValueError, match="flat"):
        pitfall.constant_columns(Split(*(torch.zeros(2, 1, 2, 2), torch.zeros(2)) * 2, 2))


def test_a_gradient_free_coordinate_dominates_eta_at_small_eps():
    w = torch.zeros(200, requires_grad=True)
    opt = AvaGrad([w], lr=0.1, eps=1e-8)
    for _ in range(3):
        w.grad = torch.ones(200)
        w.grad[0] = 0.0  # never any gradient: eta_0 stays 1/eps
        opt.step()
    share, ratio = pitfall.eta_concentration(opt, [w], top=0.01)
    assert share > 0.99 and ratio == 0.0
    with pytest.raises(ValueError, match="top"):
        pitfall.eta_concentration(opt, [w], top=0.0)


def test_trained_concentration_runs_through_fit():
    d = holdout(pitfall.raw_digits(), 0.2)
    make = model_factory(dict(model="mlp", hidden=8), d)
    small, large = (pitfall.trained_concentration(make, d, 1.0, e, epochs=1, batch_size=64) for e in (1e-8, 1.0))
    assert small[0] > large[0] and 0 < large[0] <= 1


def test_drop_constant_columns_removes_what_the_training_part_never_varies():
    x = torch.randn(6, 4)
    x[:, 2] = 0.0
    d = Split(x, torch.zeros(6, dtype=torch.long), torch.randn(3, 4), torch.zeros(3, dtype=torch.long), 2)
    out = pitfall.drop_constant_columns(d)
    assert out.num_features == 3 and pitfall.constant_columns(out) == 0
    assert torch.equal(out.x_test, d.x_test[:, [0, 1, 3]])
    images = Split(torch.zeros(2, 1, 2, 2), torch.zeros(2), torch.zeros(2, 1, 2, 2), torch.zeros(2), 2)
    assert pitfall.drop_constant_columns(images) is images

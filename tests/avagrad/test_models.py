"""The network of each scale: an MLP sized by the data, WRN-28-4 for tuning and WRN-28-widen for the report."""

import pytest
import torch

from effcourse.avagrad import model_factory
from effcourse.core.data import Split
from effcourse.core.models import MLP, WideResNet


def _split(shape):
    x = torch.zeros(4, *shape)
    return Split(x, torch.zeros(4, dtype=torch.long), x, torch.zeros(4, dtype=torch.long), 10)


def test_mlp_is_sized_by_the_data():
    net = model_factory(dict(model="mlp", hidden=16), _split((61,)))()
    assert isinstance(net, MLP) and net(torch.zeros(2, 61)).shape == (2, 10)
    assert net[0].in_features == 61 and net[0].out_features == 16


def test_wrn_is_narrow_for_tuning_and_wide_when_final():
    cfg = dict(model="wrn", widen=10)
    tune, final = model_factory(cfg, _split((3, 32, 32)))(), model_factory(cfg, _split((3, 32, 32)), final=True)()
    assert isinstance(tune, WideResNet) and isinstance(final, WideResNet)
    n = [sum(p.numel() for p in m.parameters()) for m in (tune, final)]
    assert n[1] > 5 * n[0]


def test_unknown_model_names_the_choices():
    with pytest.raises(ValueError, match="mlp"):
        model_factory(dict(model="vit"), _split((4,)))

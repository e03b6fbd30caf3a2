"""AvaGrad's update (Alg. 7): the premise of Theorem 6.3, the first step, the gradient scale, Delayed Adam."""

import pytest
import torch

from effcourse.avagrad import AvaGrad, properties


def test_every_property_holds():
    props = properties.update_properties()
    assert props["premise"] and props["first_step"] and props["delayed_adam"]
    assert max(props["premise_err"], props["first_step_err"], props["delayed_adam_err"]) <= props["tol"] == 1e-12
    assert properties.update_properties(seed=1234)["premise"]  # any seed's gradients
    assert props["adam_scale"] == pytest.approx(1.0, abs=1e-3)
    assert props["avagrad_scale"] == pytest.approx(10.0, rel=1e-3)
    with pytest.raises(ValueError, match="steps"):
        properties.update_properties(steps=1)


def test_apply_gradients_returns_each_update():
    g = [torch.ones(3, dtype=torch.float64), 2 * torch.ones(3, dtype=torch.float64)]
    ups = properties.apply_gradients(torch.optim.SGD, g, lr=0.5)
    assert [u.tolist() for u in ups] == [[-0.5] * 3, [-1.0] * 3]
    first = properties.apply_gradients(AvaGrad, g[:1], lr=0.1, eps=1e-3)[0]
    assert torch.allclose(first, torch.full((3,), -0.01, dtype=torch.float64))
    with pytest.raises(ValueError, match="grads"):
        properties.apply_gradients(AvaGrad, [])

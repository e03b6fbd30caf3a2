"""The comparison's optimizers (Table 6.1) behind one constructor, and the factory the sweeps use."""

import pytest
import torch

from effcourse.avagrad import OPTIMIZERS, THESIS_CIFAR10_ERR, AvaGrad, make_optimizer, optimizer_factory


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_comparison_optimizer_takes_a_step(name):
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 1)
    before = [p.detach().clone() for p in net.parameters()]
    opt = make_optimizer(name, net.parameters(), lr=0.01)
    for _ in range(12):  # AdaShift only starts updating once its gradient queue (10) is full
        opt.zero_grad()
        net(torch.randn(4, 3)).pow(2).mean().backward()
        opt.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))
    with pytest.raises(ValueError, match="name must be one of"):
        make_optimizer("lion", net.parameters(), lr=0.1)


def test_optimizer_factory_applies_weight_decay_to_every_method():
    net = torch.nn.Linear(3, 1)
    ava = optimizer_factory("avagrad", weight_decay=0.01)(net.parameters(), 0.5, 1e-3)
    assert isinstance(ava, AvaGrad)
    assert ava.param_groups[0]["lr"] == 0.5 and ava.param_groups[0]["eps"] == 1e-3
    assert ava.param_groups[0]["weight_decay"] == 0.01
    shift = optimizer_factory("adashift", weight_decay=0.01)(net.parameters(), 0.5, None)
    assert shift.param_groups[0]["weight_decay"] == 0.01
    with pytest.raises(ValueError, match="name must be one of"):
        optimizer_factory("lion")


def test_thesis_table_covers_every_optimizer():
    assert set(THESIS_CIFAR10_ERR) == set(OPTIMIZERS)
    assert min(THESIS_CIFAR10_ERR, key=THESIS_CIFAR10_ERR.get) == "adam"


def test_adashift_weight_decay_is_l2_on_the_gradient():
    """AdaShiftL2(wd) steps exactly as the package's AdaShift fed grad + wd * p (the thesis's L2 for AdaShift)."""
    import pytorch_optimizer as po

    from effcourse.avagrad.zoo import AdaShiftL2

    g = torch.Generator().manual_seed(0)
    w0 = torch.randn(5, generator=g)
    grads = [torch.randn(5, generator=g) for _ in range(15)]  # > keep_num = 10: both phases of AdaShift
    a, b = w0.clone().requires_grad_(), w0.clone().requires_grad_()
    opt_a, opt_b = AdaShiftL2([a], weight_decay=0.1, lr=0.01), po.AdaShift([b], lr=0.01)
    for gr in grads:
        a.grad = gr.clone()
        b.grad = gr + 0.1 * b.detach()
        opt_a.step()
        opt_b.step()
    assert not torch.equal(a, w0)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-7)
    with pytest.raises(ValueError, match="weight_decay must be a non-negative number"):
        AdaShiftL2([a], weight_decay=-1.0)

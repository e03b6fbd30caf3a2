"""Shared WRNs (parameter counts of Tables 3.1/3.3), the digits residual CNN, and exact folding."""

from __future__ import annotations

import pytest
import torch

from effcourse.core.data import Split
from effcourse.core.models import count_parameters
from effcourse.soft_sharing.swrn import (
    SWRN,
    FoldedResidualCNN,
    SharedResidualCNN,
    fold,
    swrn_parameter_count,
    train_classifier,
)
from effcourse.soft_sharing.templates import fold_bank, group_layers, layer_similarity, stack_coefficients

# (depth, widen, templates) -> parameters in millions as printed in Tables 3.1 / 3.3 (truncated, not rounded).
PRINTED = {(28, 10, 1): 12, (28, 10, 2): 17.1, (28, 10, None): 36.4, (28, 14, 2): 33.5, (28, 14, None): 71.4,
           (28, 18, 2): 55, (28, 18, None): 118, (28, 4, 2): 2.7, (28, 6, 2): 6.1}


@pytest.mark.parametrize("row", sorted(PRINTED, key=str))
def test_swrn_parameter_counts_match_tables(row):
    n = swrn_parameter_count(*row) / 1e6
    printed = PRINTED[row]
    digits = len(str(printed).split(".")[1]) if "." in str(printed) else 0
    assert printed <= n < printed + 10 ** -digits, (row, n)


def test_compression_ratios_and_no_reduction_row():
    wrn = swrn_parameter_count(28, 10, None)
    assert round(wrn / swrn_parameter_count(28, 10, 1), 1) == 3.0
    assert round(wrn / swrn_parameter_count(28, 10, 2), 1) == 2.1
    assert SWRN(28, 10, device="meta").templates == 6


def test_swrn_forward_small():
    torch.manual_seed(0)
    net = SWRN(16, 1, 2, num_classes=5)
    assert net(torch.randn(2, 3, 8, 8)).shape == (2, 5)
    assert len(net.shared_layers(1)) == 2
    with pytest.raises(ValueError, match="depth"):
        SWRN(27, 1)


def test_digits_model_counts():
    assert count_parameters(SharedResidualCNN(16, 8, None)) == 19034
    m = SharedResidualCNN(16, 8, 2)
    assert count_parameters(m) == 5226 and m.stack_parameters() == 2 * 2304 + 16
    assert m.alpha().shape == (2, 8)


def _tied_model(dtype=torch.float64):
    torch.manual_seed(0)
    m = SharedResidualCNN(6, 6, 4).to(dtype)
    with torch.no_grad():  # layers 5, 6 repeat layers 3, 4 (with a sign flip and a scale), BN tied as well
        m.layers[4].conv.coefficients.copy_(-1.5 * m.layers[2].conv.coefficients)
        m.layers[5].conv.coefficients.copy_(2.0 * m.layers[3].conv.coefficients)
        for src, dst in ((2, 4), (3, 5)):
            m.layers[dst].bn.load_state_dict(m.layers[src].bn.state_dict())
    return m.eval()


def test_exact_fold_of_tied_stack_into_program():
    m = _tied_model()
    groups = group_layers(layer_similarity(m.alpha().detach()), 0.999)
    f = FoldedResidualCNN(m, groups, "scaled").eval()
    assert f.order.tolist() == [0, 1, 2, 3, 2, 3] and f.unique_layers == 4
    x = torch.randn(3, 1, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(f(x), m(x))
    # the naive (least-squares) fold averages -1.5 a and a: not function preserving
    n = FoldedResidualCNN(m, groups, "naive").eval()
    with torch.no_grad():
        assert float((n(x) - m(x)).abs().max()) > 1e-3
    # fold_bank on the module itself gives the same function as the program
    fold_bank(m.convs, groups, "scaled")
    torch.testing.assert_close(m(x), f(x))
    assert stack_coefficients(m.convs).shape == (4, 6)


def test_train_and_fold_smoke():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 1, 8, 8, generator=g)
    y = (x.mean((1, 2, 3)) > 0).long()
    data = Split(x, y, x, y, 10)
    torch.manual_seed(0)
    m = SharedResidualCNN(4, 3, 1)
    hist = train_classifier(m, data, epochs=2, batch_size=32, lam=0.01, generator=g)
    assert len(hist.test_err) == 1 and not hist.diverged
    f = fold(m, torch.zeros(3, dtype=torch.long), calibrate=x)
    assert f.unique_layers == 1 and f(x).shape == (64, 10)
    with pytest.raises(ValueError, match="soft-shared"):
        FoldedResidualCNN(SharedResidualCNN(4, 3, None), torch.zeros(3, dtype=torch.long))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_swrn_and_fold_on_cuda():
    torch.manual_seed(0)
    net = SWRN(16, 1, 2, num_classes=3, device="cuda")
    assert net(torch.randn(2, 3, 8, 8, device="cuda")).shape == (2, 3)
    m = _tied_model(torch.float32).cuda()
    groups = group_layers(layer_similarity(m.alpha().detach()), 0.999)
    f = FoldedResidualCNN(m, groups).eval()
    x = torch.randn(3, 1, 8, 8, device="cuda")
    torch.testing.assert_close(f(x), m(x), atol=1e-4, rtol=1e-4)

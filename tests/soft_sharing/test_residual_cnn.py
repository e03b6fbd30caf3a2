"""The digits-sized soft-shared residual CNN and the program it folds into (exact for tied coefficients)."""

from __future__ import annotations

import pytest
import torch

from effcourse.core.models import count_parameters
from effcourse.soft_sharing.folding import fold_bank, group_layers
from effcourse.soft_sharing.residual_cnn import FoldedResidualCNN, SharedResidualCNN, fold_program
from effcourse.soft_sharing.similarity import layer_similarity
from effcourse.soft_sharing.templates import stack_coefficients


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


def test_fold_program_calibrates_and_rejects_unshared():
    x = torch.randn(64, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    m = SharedResidualCNN(4, 3, 1)
    f = fold_program(m, torch.zeros(3, dtype=torch.long), calibrate=x)
    assert f.unique_layers == 1 and f(x).shape == (64, 10)
    assert f.bns[0].num_batches_tracked > 0 and not torch.equal(f.bns[0].running_mean, m.layers[0].bn.running_mean)
    with pytest.raises(ValueError, match="soft-shared"):
        FoldedResidualCNN(SharedResidualCNN(4, 3, None), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="mode"):
        FoldedResidualCNN(m, torch.zeros(3, dtype=torch.long), "round")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fold_on_cuda():
    m = _tied_model(torch.float32).cuda()
    groups = group_layers(layer_similarity(m.alpha().detach()), 0.999)
    f = FoldedResidualCNN(m, groups).eval()
    x = torch.randn(3, 1, 8, 8, device="cuda")
    torch.testing.assert_close(f(x), m(x), atol=1e-4, rtol=1e-4)

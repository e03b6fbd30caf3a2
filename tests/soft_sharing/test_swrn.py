"""Shared WRNs (Savarese 2025, Sec. 3.3.2): parameter counts of Tables 3.1/3.3 and a small forward pass."""

from __future__ import annotations

import pytest
import torch

from effcourse.soft_sharing.swrn import SWRN, swrn_parameter_count

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
    with pytest.raises(ValueError, match="templates"):
        SWRN(16, 1, 0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_swrn_on_cuda():
    torch.manual_seed(0)
    net = SWRN(16, 1, 2, num_classes=3, device="cuda")
    assert net(torch.randn(2, 3, 8, 8, device="cuda")).shape == (2, 3)

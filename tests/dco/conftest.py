"""Shared fixtures of the DCO tests: float64 everywhere (the closed forms are compared to machine precision)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)

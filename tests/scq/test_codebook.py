"""Unit tests of effcourse.scq.codebook (chapter 04-scq): initialization, nearest code (5.1), usage."""

from __future__ import annotations

import pytest
import torch

from effcourse.scq.codebook import codes_used, init_codebook, nearest_code, one_hot, perplexity


def test_nearest_code_matches_brute_force():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(50, 3, generator=g, dtype=torch.float64)
    c = torch.randn(7, 3, generator=g, dtype=torch.float64)
    brute = torch.cdist(z, c).argmin(1)
    assert torch.equal(nearest_code(z, c), brute)
    assert torch.equal(nearest_code(c, c), torch.arange(7))


def test_nearest_code_keeps_the_three_term_distance_floats():
    """The one-buffer distances give the argmin of |z|^2 - 2 z.c + |c|^2 written out of place, ties and all."""
    g = torch.Generator().manual_seed(3)
    z = torch.randn(4000, 16, generator=g) * 0.1
    c = (torch.rand(128, 16, generator=g) * 2 - 1) / 128
    ref = ((z * z).sum(1, keepdim=True) - 2.0 * z @ c.T + (c * c).sum(1)).argmin(1)
    assert torch.equal(nearest_code(z, c), ref)
    assert not nearest_code(z.requires_grad_(True), c).requires_grad


def test_one_hot_is_torch_one_hot_in_the_weights_dtype():
    idx = torch.tensor([2, 0, 2, 1])
    for dtype in (torch.float32, torch.float64, torch.bfloat16):
        w = one_hot(idx, 3, dtype)
        assert w.dtype == dtype and torch.equal(w, torch.nn.functional.one_hot(idx, 3).to(dtype))
    with pytest.raises(ValueError, match="idx must be a 1-d int64"):
        one_hot(idx.int(), 3)
    with pytest.raises(ValueError, match="idx must be a 1-d int64"):
        one_hot(idx[None], 3)
    with pytest.raises(ValueError, match="num_codes"):
        one_hot(idx, 0)


def test_init_codebook_scales():
    g = torch.Generator().manual_seed(0)
    u = init_codebook(128, 16, "uniform", g)
    assert u.shape == (128, 16) and u.abs().max() <= 1 / 128
    n = init_codebook(128, 16, "normal", g)
    assert 0.8 < float(n.std()) < 1.2


def test_perplexity_and_codes_used():
    onehot = torch.eye(4)[[0, 0, 1, 2]]  # usage 1/2, 1/4, 1/4, 0
    ent = -(0.5 * torch.log(torch.tensor(0.5)) + 0.5 * torch.log(torch.tensor(0.25)))
    assert torch.isclose(perplexity(onehot), torch.exp(ent))
    assert torch.isclose(perplexity(onehot, "soft"), perplexity(onehot))  # hard = soft for one-hot rows
    assert codes_used(onehot) == 3
    soft = torch.tensor([[0.6, 0.4, 0.0, 0.0], [0.7, 0.0, 0.3, 0.0]])
    assert codes_used(soft, "hard") == 1 and codes_used(soft, "soft") == 3
    assert float(perplexity(soft, "soft")) > float(perplexity(soft, "hard")) == 1.0


def test_codebook_errors():
    with pytest.raises(ValueError, match="init"):
        init_codebook(8, 2, "xavier")
    with pytest.raises(ValueError, match="num_codes"):
        init_codebook(0, 2)
    with pytest.raises(ValueError, match="kind"):
        perplexity(torch.eye(3), "entropy")
    with pytest.raises(ValueError, match="n x K"):
        codes_used(torch.ones(3))
    with pytest.raises(ValueError, match="same F"):
        nearest_code(torch.zeros(2, 3), torch.zeros(4, 2))

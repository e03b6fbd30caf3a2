"""Blocks with self-loops: Theorems 2 and 3 in both directions, and the argument checks."""

from __future__ import annotations

import pytest
import torch

from effcourse.implicit import selfloops as sl

D64 = torch.float64


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _r(g, *shape):
    return torch.randn(*shape, generator=g, dtype=D64)


def _self_loop_block(g, ni, n_prev, p):
    diag = torch.rand(ni, generator=g, dtype=D64) * 1.98 - 0.99
    return torch.triu(_r(g, ni, ni) * 0.5, diagonal=1) + torch.diag(diag), _r(g, ni, n_prev), _r(g, ni, p)



@pytest.mark.parametrize("ni", [1, 6])
def test_theorems_2_and_3_forward(ni):
    g = _gen(6 + ni)
    X_prev, U = torch.relu(_r(g, 60, 5)), _r(g, 60, 3)
    for _ in range(5):
        A_ii, A_prev, B_i = _self_loop_block(g, ni, 5, 3)
        X_impl = sl.implicit_block(A_ii, A_prev, B_i, X_prev, U)
        G = sl.nonstrict_to_strict(A_ii, A_prev, B_i)
        assert torch.equal(torch.tril(G[0]), torch.zeros_like(G[0]))
        X_expl = sl.explicit_block(*G, X_prev, U)
        assert float((X_impl - X_expl).abs().max()) <= 1e-10 * (1 + float(X_expl.abs().max()))
        # and the implicit equation really holds
        assert torch.allclose(X_impl, torch.relu(X_impl @ A_ii.t() + X_prev @ A_prev.t() + U @ B_i.t()),
                              atol=1e-9 * (1 + float(X_impl.abs().max())))


@pytest.mark.parametrize("eps", [0.3, 1.0, 1.7])
def test_theorem_3_converse_and_round_trip(eps):
    g = _gen(20)
    X_prev, U = torch.relu(_r(g, 50, 4)), _r(g, 50, 3)
    G_self, G_prev, Lam = torch.triu(_r(g, 5, 5) * 0.5, diagonal=1), _r(g, 5, 4), _r(g, 5, 3)
    X = sl.explicit_block(G_self, G_prev, Lam, X_prev, U)
    A_ii, A_prev, B_i = sl.strict_to_nonstrict(G_self, G_prev, Lam, eps)
    assert torch.allclose(torch.diagonal(A_ii), torch.full((5,), 1 - eps, dtype=D64))
    assert torch.allclose(X, torch.relu(X @ A_ii.t() + X_prev @ A_prev.t() + U @ B_i.t()), atol=1e-12)
    assert torch.allclose(sl.implicit_block(A_ii, A_prev, B_i, X_prev, U), X, atol=1e-9)
    for a, b in zip(sl.nonstrict_to_strict(A_ii, A_prev, B_i), (G_self, G_prev, Lam)):
        assert torch.allclose(a, b, atol=1e-14)


def test_theorem_map_errors():
    g = _gen(30)
    A_ii, A_prev, B_i = _self_loop_block(g, 3, 2, 2)
    with pytest.raises(ValueError, match="upper triangular"):
        sl.nonstrict_to_strict(A_ii.t().contiguous(), A_prev, B_i)
    bad = A_ii.clone()
    bad[0, 0] = 1.0
    with pytest.raises(ValueError, match=r"diag\(A_ii\)"):
        sl.nonstrict_to_strict(bad, A_prev, B_i)
    with pytest.raises(ValueError, match="eps"):
        sl.strict_to_nonstrict(torch.zeros(3, 3, dtype=D64), A_prev, B_i, eps=2.0)
    with pytest.raises(ValueError, match="strictly upper"):
        sl.strict_to_nonstrict(torch.eye(3, dtype=D64), A_prev, B_i, eps=0.5)
    with pytest.raises(ValueError, match="rows"):
        sl.nonstrict_to_strict(A_ii, A_prev[:2], B_i)


def test_implicit_block_accepts_a_rounding_level_limit_cycle():
    # converse instance of issue #16: diagonal -0.715 with large entries above it; Picard settles into a limit
    # cycle with steps ~3e-12 and never meets the plain relative test 1e-13 (1 + max|X|)
    g = torch.Generator().manual_seed(11)
    G_self = torch.triu(torch.randn(8, 8, generator=g, dtype=D64) * 0.5, diagonal=1)
    G_prev, Lam = torch.randn(8, 12, generator=g, dtype=D64), torch.randn(8, 5, generator=g, dtype=D64)
    X_prev = torch.relu(torch.randn(200, 12, generator=g, dtype=D64))
    U = torch.randn(200, 5, generator=g, dtype=D64)
    A_ii, A_prev, B_i = sl.strict_to_nonstrict(G_self, G_prev, Lam, 1.75)
    X = sl.explicit_block(G_self, G_prev, Lam, X_prev, U)
    amp = sl.picard_amplification(A_ii)
    assert amp > 1e3  # strongly non-normal
    X_impl = sl.implicit_block(A_ii, A_prev, B_i, X_prev, U)
    assert float((X_impl - X).abs().max()) <= 64 * 9 * torch.finfo(D64).eps * amp * (1 + float(X.abs().max()))
    with pytest.raises(RuntimeError, match="did not converge"):
        sl.implicit_block(A_ii, A_prev, B_i, X_prev, U, max_iter=20)
    with pytest.raises(ValueError, match="patience"):
        sl.implicit_block(A_ii, A_prev, B_i, X_prev, U, patience=0)


def test_picard_amplification():
    assert sl.picard_amplification(torch.zeros(3, 3, dtype=D64)) == pytest.approx(1.0)
    assert sl.picard_amplification(torch.diag(torch.tensor([0.5, -0.9], dtype=D64))) == pytest.approx(10.0)

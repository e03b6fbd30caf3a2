"""Strictly block-triangular models, Algorithm 1 / 2, Remark 5 counts, Theorems 2 and 3."""

from __future__ import annotations

import pytest
import torch

from effcourse.implicit import blockwise as bw
from effcourse.implicit import model as im

D64 = torch.float64


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _r(g, *shape):
    return torch.randn(*shape, generator=g, dtype=D64)


def test_partition():
    assert bw.partition(22, 4) == [5, 5, 5, 7]
    assert bw.partition(10, 10) == [1] * 10
    with pytest.raises(ValueError, match="L"):
        bw.partition(10, 1)
    with pytest.raises(ValueError, match="n"):
        bw.partition(3, 4)


def test_counts():
    # the digest's exact values of the formula
    for (L, n1, nL), want in {(5, 10, 13): 690, (4, 7, 7): 147, (6, 3, 8): 150}.items():
        sizes = [n1] * (L - 1) + [nL]
        assert bw.extra_nonzeros_vs_feedforward(sizes) == want
        assert bw.extra_nonzeros_formula(sum(sizes), L) == want
    sizes, m, p, q = [3, 3, 4], 50, 6, 2
    v = bw.subproblem_variables(sizes, m, p, q)
    assert v == [3 * (0 + m + p) + q * 3, 3 * (3 + m + p) + q * 6, 4 * (6 + m + p) + q * 10]
    assert bw.subproblem_weights(sizes, p, q) == bw.subproblem_variables(sizes, 0, p, q)
    assert bw.end_to_end_variables(10, m, p, q) == 10 * (10 + m + p + q)


def _random_model(sizes, p, q, seed=0):
    g = _gen(seed)
    model = bw.BlockTriangularModel(p, q, dtype=D64)
    for ni in sizes:
        model.add_block(_r(g, ni, model.n + p), _r(g, q, model.n + ni))
    return model


def test_block_model_is_a_nilpotent_implicit_model():
    sizes, p, q = [4, 4, 5], 3, 2
    model = _random_model(sizes, p, q)
    A, B, C = model.assemble()
    assert torch.equal(torch.linalg.matrix_power(A, 3), torch.zeros_like(A))
    assert not torch.equal(torch.linalg.matrix_power(A, 2), torch.zeros_like(A))
    u = _r(_gen(1), 30, p)
    res = im.fixed_point(A, u @ B.t(), tol=0.0)
    with torch.no_grad():
        assert res.converged and res.iterations == len(sizes) + 1
        assert torch.allclose(res.x, model.features(u), atol=1e-12)
        assert torch.allclose(model.to_implicit(tol=0.0)(u), model(u), atol=1e-12)
    with pytest.raises(ValueError, match="atilde"):
        model.add_block(torch.zeros(2, 5, dtype=D64), torch.zeros(q, 15, dtype=D64))


def _interp(m=80, seed=0):
    u = im.append_ones(torch.linspace(-2, 2, m, dtype=D64)[:, None])
    return u, torch.sin(2 * u[:, :1]) + 0.3 * u[:, :1]


def test_altmin_is_monotone_and_matches_its_model():
    u, y = _interp()
    res = bw.train_sequential(u, y, 16, 4, solver="altmin", alternations=2, steps=40, generator=_gen(2))
    obj = res.objectives
    assert len(obj) == 4 and all(b <= a * (1 + 1e-10) for a, b in zip(obj, obj[1:]))
    assert obj[-1] < 0.5 * obj[0]
    with torch.no_grad():
        direct = 0.5 * (res.model(u) - y).pow(2).sum(1).mean()
    assert abs(float(direct) - obj[-1]) < 1e-10
    assert [b.variables for b in res.blocks] == bw.subproblem_variables([4] * 4, 80, 2, 1)
    assert res.model.sizes == [4, 4, 4, 4]


def test_least_squares_is_optimal():
    g = _gen(3)
    X, Y = _r(g, 40, 6), _r(g, 40, 2)
    C = bw.least_squares(X, Y)
    grad = (X @ C.t() - Y).t() @ X  # normal equations
    assert grad.abs().max() < 1e-10
    Xd = torch.cat([X, X[:, :1]], dim=1)  # an exactly collinear column: still solved
    assert (Xd @ bw.least_squares(Xd, Y).t() - X @ C.t()).abs().max() < 1e-10


def test_local_search_cross_entropy_learns():
    g = _gen(4)
    x = _r(g, 120, 2)
    labels = (x[:, 0] * x[:, 1] > 0).long()
    u = im.append_ones(x)
    res = bw.train_sequential(u, labels, 12, 3, loss="ce", solver="local", steps=150, lr=3e-2, generator=_gen(5))
    with torch.no_grad():
        acc = float((res.model(u).argmax(1) == labels).double().mean())
    assert acc > 0.85
    assert res.objectives[-1] < res.objectives[0]


def test_sequential_errors():
    u, y = _interp(20)
    with pytest.raises(ValueError, match="Assumption 4"):
        bw.train_sequential(u, torch.zeros(20, dtype=torch.long), 8, 2, loss="ce", solver="altmin")
    with pytest.raises(ValueError, match="solver"):
        bw.train_sequential(u, y, 8, 2, solver="newton")
    with pytest.raises(ValueError, match="rows"):
        bw.train_sequential(u, y[:10], 8, 2)
    with pytest.raises(ValueError, match="integer labels"):
        bw.train_sequential(u, y, 8, 2, loss="ce", solver="local")


def _self_loop_block(g, ni, n_prev, p):
    diag = torch.rand(ni, generator=g, dtype=D64) * 1.98 - 0.99
    return torch.triu(_r(g, ni, ni) * 0.5, diagonal=1) + torch.diag(diag), _r(g, ni, n_prev), _r(g, ni, p)


@pytest.mark.parametrize("ni", [1, 6])
def test_theorems_2_and_3_forward(ni):
    g = _gen(6 + ni)
    X_prev, U = torch.relu(_r(g, 60, 5)), _r(g, 60, 3)
    for _ in range(5):
        A_ii, A_prev, B_i = _self_loop_block(g, ni, 5, 3)
        X_impl = bw.implicit_block(A_ii, A_prev, B_i, X_prev, U)
        G = bw.nonstrict_to_strict(A_ii, A_prev, B_i)
        assert torch.equal(torch.tril(G[0]), torch.zeros_like(G[0]))
        X_expl = bw.explicit_block(*G, X_prev, U)
        assert float((X_impl - X_expl).abs().max()) <= 1e-10 * (1 + float(X_expl.abs().max()))
        # and the implicit equation really holds
        assert torch.allclose(X_impl, torch.relu(X_impl @ A_ii.t() + X_prev @ A_prev.t() + U @ B_i.t()),
                              atol=1e-9 * (1 + float(X_impl.abs().max())))


@pytest.mark.parametrize("eps", [0.3, 1.0, 1.7])
def test_theorem_3_converse_and_round_trip(eps):
    g = _gen(20)
    X_prev, U = torch.relu(_r(g, 50, 4)), _r(g, 50, 3)
    G_self, G_prev, Lam = torch.triu(_r(g, 5, 5) * 0.5, diagonal=1), _r(g, 5, 4), _r(g, 5, 3)
    X = bw.explicit_block(G_self, G_prev, Lam, X_prev, U)
    A_ii, A_prev, B_i = bw.strict_to_nonstrict(G_self, G_prev, Lam, eps)
    assert torch.allclose(torch.diagonal(A_ii), torch.full((5,), 1 - eps, dtype=D64))
    assert torch.allclose(X, torch.relu(X @ A_ii.t() + X_prev @ A_prev.t() + U @ B_i.t()), atol=1e-12)
    assert torch.allclose(bw.implicit_block(A_ii, A_prev, B_i, X_prev, U), X, atol=1e-9)
    for a, b in zip(bw.nonstrict_to_strict(A_ii, A_prev, B_i), (G_self, G_prev, Lam)):
        assert torch.allclose(a, b, atol=1e-14)


def test_theorem_map_errors():
    g = _gen(30)
    A_ii, A_prev, B_i = _self_loop_block(g, 3, 2, 2)
    with pytest.raises(ValueError, match="upper triangular"):
        bw.nonstrict_to_strict(A_ii.t().contiguous(), A_prev, B_i)
    bad = A_ii.clone()
    bad[0, 0] = 1.0
    with pytest.raises(ValueError, match=r"diag\(A_ii\)"):
        bw.nonstrict_to_strict(bad, A_prev, B_i)
    with pytest.raises(ValueError, match="eps"):
        bw.strict_to_nonstrict(torch.zeros(3, 3, dtype=D64), A_prev, B_i, eps=2.0)
    with pytest.raises(ValueError, match="strictly upper"):
        bw.strict_to_nonstrict(torch.eye(3, dtype=D64), A_prev, B_i, eps=0.5)
    with pytest.raises(ValueError, match="rows"):
        bw.nonstrict_to_strict(A_ii, A_prev[:2], B_i)

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


def test_strict_nonzeros_and_model_weights_count_the_model():
    sizes, p, q = [3, 4, 5], 6, 2
    model = bw.BlockTriangularModel(p, q, dtype=D64)
    for ni in sizes:
        model.add_block(torch.randn(ni, model.n + p, dtype=D64), torch.randn(q, model.n + ni, dtype=D64))
    A, _, _ = model.assemble()
    assert bw.strict_nonzeros(sizes) == 3 * 4 + 3 * 5 + 4 * 5 == int((A != 0).sum())
    assert bw.model_weights(sizes, p, q) == sum(t.numel() for t in model.parameters())
    with pytest.raises(ValueError, match="sizes"):
        bw.strict_nonzeros([3, 0])


def test_is_monotone():
    def result(objs):
        r = bw.SequentialResult(bw.BlockTriangularModel(1, 1))
        r.blocks = [bw.BlockRecord(i, 1, o, 0.0, 0, 0) for i, o in enumerate(objs, 1)]
        return r

    assert result([3.0, 2.0, 2.0]).is_monotone()
    assert not result([3.0, 2.0, 2.5]).is_monotone()
    assert result([1.0, 1.0 + 1e-12]).is_monotone(rtol=1e-10)
    with pytest.raises(ValueError, match="rtol"):
        result([1.0]).is_monotone(rtol=-1)


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

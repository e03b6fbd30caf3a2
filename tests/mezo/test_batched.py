"""Vectorised zeroth-order runs on stacks of parameter vectors (effcourse.mezo.batched)."""

import pytest
import torch

from effcourse.mezo.batched import BatchedMLP, LeastSquares, digits_mlp, run_fo_sgd, run_mezo, run_mezo_svrg


def test_least_squares_optimum_and_gradient():
    ls = LeastSquares(n=200, d=10, seed=0)
    g = ls.grad(ls.theta_star[None])[0]
    assert g.abs().max() < 1e-10
    P = torch.randn(3, 10, dtype=torch.float64)
    assert torch.all(ls.loss(P) > ls.f_star)
    idx = torch.arange(200).expand(3, -1)
    assert torch.allclose(ls.loss(P, idx), ls.loss(P))


def test_full_batch_mezo_svrg_reaches_the_optimum_and_counts_queries():
    ls = LeastSquares(n=100, d=10, seed=1)
    gen = torch.Generator().manual_seed(0)
    tr = run_mezo_svrg(ls, ls.init(2), lr_full=1e-2, lr_mini=1e-2, mu=1e-3, q=2, batch_size=16, budget=200_000,
                       generator=gen)
    assert float((tr.final() / ls.f_star - 1).max()) < 1e-3
    assert tr.queries[-1] <= 200_000 and tr.queries[-1] % (2 * 100 + 4 * 16) == 0


def test_mezo_plateaus_above_the_optimum_while_sgd_descends():
    ls = LeastSquares(n=200, d=20, seed=2)
    gen = torch.Generator().manual_seed(0)
    mezo = run_mezo(ls, ls.init(2), lr=2e-3, mu=1e-3, batch_size=4, budget=80_000, generator=gen)
    fo = run_fo_sgd(ls, ls.init(2), lr=1e-2, batch_size=4, steps=2000, generator=gen)
    assert torch.all(mezo.final() < mezo.loss[0]) and torch.all(fo.final() < 1.5 * ls.f_star)
    assert torch.all(mezo.final() > fo.final())
    with pytest.raises(ValueError, match="budget"):
        run_mezo(ls, ls.init(1), lr=1e-3, mu=1e-3, batch_size=8, budget=4, generator=gen)


def test_batched_mlp_matches_a_loop_over_networks():
    x, y = torch.randn(20, 6), torch.randint(0, 3, (20,))
    mlp = BatchedMLP(x, y, sizes=(6, 5, 3))
    P = mlp.init(3, torch.Generator().manual_seed(0))
    P[:, -3:] = torch.randn(3, 3)  # non-zero output bias
    for k in range(3):
        W1 = P[k, :30].view(6, 5)
        b1 = P[k, 30:35]
        W2 = P[k, 35:50].view(5, 3)
        b2 = P[k, 50:53]
        ref = torch.nn.functional.cross_entropy(torch.relu(x @ W1 + b1) @ W2 + b2, y)
        assert torch.allclose(mlp.loss(P)[k], ref, atol=1e-6)
    assert mlp.dim == 53
    with pytest.raises(ValueError, match="x must be"):
        BatchedMLP(x, y, sizes=(7, 3))


def test_digits_mlp_has_the_thesis_hidden_sizes():
    prob, xt, yt = digits_mlp(128)
    assert prob.dim == 64 * 32 + 32 + 32 * 16 + 16 + 16 * 10 + 10 and prob.n == 128
    assert xt.shape[1] == 64 and float(xt.max()) <= 1.0
    with pytest.raises(ValueError, match="n_train"):
        digits_mlp(10_000)

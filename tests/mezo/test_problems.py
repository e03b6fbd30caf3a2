"""The vectorisable problems: least squares (3.14) and the batched MLP (effcourse.mezo.problems)."""

import pytest
import torch

from effcourse.core.data import dataset
from effcourse.mezo.problems import BatchedMLP, LeastSquares, digits_mlp


def test_least_squares_optimum_and_gradient():
    ls = LeastSquares(n=200, d=10, seed=0)
    g = ls.grad(ls.theta_star[None])[0]
    assert g.abs().max() < 1e-10
    P = torch.randn(3, 10, dtype=torch.float64)
    assert torch.all(ls.loss(P) > ls.f_star)
    idx = torch.arange(200).expand(3, -1)
    assert torch.allclose(ls.loss(P, idx), ls.loss(P))


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


def test_from_split_reads_widths_from_the_data_and_checks_its_arguments():
    sp = dataset("digits", flat=True, normalize="unit")
    prob = BatchedMLP.from_split(sp, 100)
    assert prob.sizes == (64, 32, 16, 10) and prob.n == 100
    assert torch.equal(prob.x, sp.x_train[:100])
    ref, _, _ = digits_mlp(100)
    assert torch.equal(ref.x, prob.x) and torch.equal(ref.y, prob.y)
    with pytest.raises(ValueError, match="n_train"):
        BatchedMLP.from_split(sp, 0)
    images = dataset("digits", flat=False, normalize="unit")
    with pytest.raises(ValueError, match="flat"):
        BatchedMLP.from_split(images, 10)

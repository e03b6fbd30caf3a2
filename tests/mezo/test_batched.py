"""Vectorised zeroth-order runs on stacks of parameter vectors (effcourse.mezo.batched)."""

import pytest
import torch

from effcourse.mezo.batched import run_fo_sgd, run_mezo, run_mezo_svrg, svrg_budget
from effcourse.mezo.problems import LeastSquares


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


@pytest.mark.parametrize("steps, q", [(10, 2), (11, 2), (9, 3), (1, 2)])
def test_svrg_budget_buys_the_requested_iterations(steps, q):
    ls = LeastSquares(n=40, d=3, seed=0)
    budget = svrg_budget(ls.n, 8, q, steps)
    assert budget == (2 * 40 + (q - 1) * 4 * 8) * max(1, steps // q)
    tr = run_mezo_svrg(ls, ls.init(1), lr_full=1e-3, lr_mini=1e-3, mu=1e-3, q=q, batch_size=8, budget=budget,
                       generator=torch.Generator().manual_seed(0))
    assert tr.steps[-1] == max(1, steps // q) * q and tr.queries[-1] == budget
    assert svrg_budget(40, 8, 2, 4, anchor_size=10) == (2 * 10 + 4 * 8) * 2
    with pytest.raises(ValueError, match="steps"):
        svrg_budget(40, 8, 2, 0)


def test_a_list_of_generators_gives_each_row_its_own_stream():
    ls = LeastSquares(n=60, d=5, seed=3)

    def gens(*seeds):
        return [torch.Generator().manual_seed(s) for s in seeds]

    for run in (lambda P, g: run_mezo(ls, P, lr=1e-3, mu=1e-3, batch_size=4, budget=400, generator=g),
                lambda P, g: run_mezo_svrg(ls, P, lr_full=1e-3, lr_mini=1e-3, mu=1e-3, q=2, batch_size=4,
                                           budget=2_000, generator=g, anchor_size=30),
                lambda P, g: run_fo_sgd(ls, P, lr=1e-2, batch_size=4, steps=20, generator=g)):
        both = run(ls.init(2), gens(5, 6)).theta
        alone = run(ls.init(1), gens(6)).theta
        assert torch.equal(both[1], alone[0]) and not torch.equal(both[0], both[1])
    with pytest.raises(ValueError, match="list of k=2"):
        run_mezo(ls, ls.init(2), lr=1e-3, mu=1e-3, batch_size=4, budget=400, generator=gens(1))

"""The fast exact simplex projection (issue #17): exactness against the sort, a cycling draw, rounds, backward."""

from __future__ import annotations

import inspect

import pytest
import torch

import effcourse.scq.simplex as simplex
from effcourse.scq.codebook import nearest_code
from effcourse.scq.quantizers import make_quantizer
from effcourse.scq.simplex import project_simplex, simplex_violation


def old_threshold_rounds(v: torch.Tensor) -> int:
    """The projection's threshold loop before issue #17 (non-monotone support, whole-batch stopping rule)."""
    k = v.shape[-1]
    theta = (v.sum(-1, keepdim=True) - 1.0) / k
    mask = v > theta
    for r in range(k):
        theta = ((v * mask).sum(-1, keepdim=True) - 1.0) / mask.sum(-1, keepdim=True)
        new = v > theta
        if torch.equal(new, mask):
            return r + 1
        mask = new
    return k


def scq_ridge_rows(seed: int, n_img: int = 128, side: int = 16, k: int = 128, dim: int = 16) -> torch.Tensor:
    """The rows SCQ projects (Alg. 9 step 3, as `scq_scalable` computes them) for the benchmark's draw ``seed``:
    z ~ 0.1 N(0, 1) of shape 128 x 16 x 16 x 16 (n = 32768), then VQ's codebook, then SCQ's (K = 128)."""
    torch.manual_seed(seed)
    z = torch.randn(n_img, dim, side, side) * 0.1
    make_quantizer("vq", k, dim)  # drawn first in the benchmark: it advances the RNG
    c = make_quantizer("scq", k, dim).codes().detach()
    zf = z.permute(0, 2, 3, 1).reshape(-1, dim)
    eye = torch.eye(k)
    m_inv = torch.linalg.solve(c @ c.T + 0.1 * eye, eye)
    return zf @ (m_inv @ c).T + 0.1 * m_inv[nearest_code(zf, c)]


def adversarial_rows(dtype: torch.dtype) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    k = 12
    rows = [torch.randn(64, k, generator=g, dtype=dtype) * s for s in (1e-6, 1e-3, 1.0, 1e3, 1e6)]
    rows += [
        torch.full((2, k), 5.0, dtype=dtype),                                           # all tied
        torch.tensor([[2.0, 2.0, 2.0, -1.0] * 3, [0.5, 0.5, 0.0, 0.0] * 3], dtype=dtype),  # tied tops
        torch.distributions.Dirichlet(torch.ones(k, dtype=dtype)).sample((16,)),       # already on the simplex
        torch.eye(k, dtype=dtype),                                                      # vertices
        torch.full((1, k), 1.0 / k, dtype=dtype) + 1e-3 * torch.randn(1, k, generator=g, dtype=dtype),  # full support
        -torch.rand(4, k, generator=g, dtype=dtype) * 100,                              # all negative
        torch.tensor([[1e6, -1e6] + [0.0] * (k - 2)], dtype=dtype),
    ]
    return rows


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_threshold_projection_equals_sort_on_random_and_adversarial_rows(dtype):
    for v in adversarial_rows(dtype):
        p = project_simplex(v)
        ref = project_simplex(v.double(), "sort")
        scale = max(1.0, float(v.abs().max()))
        # float32 rounds the threshold itself at ulp(max |v|); float64 meets 1e-6 at every scale here
        tol = 1e-6 if dtype == torch.float64 else max(1e-6, 4 * torch.finfo(dtype).eps * scale)
        assert (p.double() - ref).abs().max() <= tol, v
        if scale < 1e3 or dtype == torch.float64:  # a float32 row sum of K entries carries ~K ulps
            assert simplex_violation(p).max() <= max(tol, 4 * v.shape[-1] * torch.finfo(dtype).eps)


def test_threshold_projection_shapes_and_sizes():
    g = torch.Generator().manual_seed(4)
    v = torch.randn(3, 5, 40, generator=g, dtype=torch.float64)  # leading dims are batch dims
    assert torch.allclose(project_simplex(v), project_simplex(v, "sort"), atol=1e-12)
    wide = torch.randn(20, 1000, generator=g, dtype=torch.float64) * 0.01  # supports of hundreds of entries
    assert torch.allclose(project_simplex(wide), project_simplex(wide, "sort"), atol=1e-12)
    assert project_simplex(torch.zeros(0, 7)).shape == (0, 7)
    assert project_simplex(torch.tensor([[-3.0], [7.0]])).tolist() == [[1.0], [1.0]]


def test_cycling_draw_of_the_benchmark_needs_few_rounds():
    # 32768 x 128: the draw on which the old loop ran all 128 rounds.  One row (8453) cycles: its three largest
    # entries are 1.0327723, 0.0348929, 0.0338326; with the first two in the support the threshold rounds to
    # 0.03383255 < 0.0338326 (the third enters), with all three it rounds above the third (it leaves), forever.
    v = scq_ridge_rows(52)
    # Which rows cycle: after 20 old rounds (it needs about 8 elsewhere) their supports still change.
    theta = (v.sum(-1, keepdim=True) - 1.0) / v.shape[-1]
    mask = v > theta
    for _ in range(20):
        theta = ((v * mask).sum(-1, keepdim=True) - 1.0) / mask.sum(-1, keepdim=True)
        new = v > theta
        changing = (new != mask).any(-1)
        mask = new
    cycling = v[changing]
    assert 1 <= len(cycling) <= 4
    assert old_threshold_rounds(cycling) == v.shape[-1]  # all K = 128 rounds
    p, rounds = project_simplex(v, return_rounds=True)
    assert rounds <= 4  # was 128
    assert (p.double() - project_simplex(v.double(), "sort")).abs().max() < 1e-6
    assert project_simplex(cycling, return_rounds=True)[1] <= 4


def test_rounds_regression_and_start():
    g = torch.Generator().manual_seed(5)
    # VQ-like rows (one entry far ahead): the start max - 1 is exact, no round runs at all
    v = torch.rand(500, 64, generator=g) * 0.01
    v[:, 3] += 2.0
    assert project_simplex(v, return_rounds=True)[1] == 0
    # random Gaussian rows: a handful of rounds, far below K
    w = torch.randn(2000, 256, generator=g)
    p, rounds = project_simplex(w, return_rounds=True)
    assert 1 <= rounds <= 8
    assert (p.double() - project_simplex(w.double(), "sort")).abs().max() < 1e-6


def test_capped_rounds_fall_back_to_the_exact_sort():
    g = torch.Generator().manual_seed(6)
    v = torch.randn(300, 50, generator=g, dtype=torch.float64)
    ref = project_simplex(v, "sort")
    for cap in (0, 1, 3):
        p, rounds = project_simplex(v, max_rounds=cap, return_rounds=True)
        assert rounds <= cap
        assert torch.allclose(p, ref, atol=1e-12)
    with pytest.raises(ValueError, match="max_rounds"):
        project_simplex(v, max_rounds=-1)


def test_monotone_support_never_regrows():
    # Run the rounds by hand from the start max - 1: the support only shrinks and then stays put.
    g = torch.Generator().manual_seed(7)
    v = torch.randn(400, 30, generator=g)
    mask = torch.sign((v - (v.amax(-1, keepdim=True) - 1.0)).relu_())
    count = mask.sum(-1, keepdim=True)
    for _ in range(30):
        theta, new, count = simplex._round(v, mask, count, torch.empty_like(v))
        assert not (new > mask).any()  # no coordinate re-enters
        mask = new
    assert torch.equal(simplex._round(v, mask, count, torch.empty_like(v))[1], mask)  # a fixed point
    ref = project_simplex(v.double(), "sort")
    assert torch.equal(mask > 0, ref > 0)
    assert (torch.clamp(v - theta, min=0.0).double() - ref).abs().max() < 1e-6


def test_closed_form_backward_matches_autograd_of_the_sort_and_gradcheck():
    g = torch.Generator().manual_seed(8)
    v = (torch.randn(40, 9, generator=g, dtype=torch.float64) * 2).requires_grad_(True)
    assert torch.autograd.gradcheck(project_simplex, (v,), eps=1e-7, atol=1e-8)
    w = torch.randn(3, 40, 9, generator=g, dtype=torch.float64)
    for weights in w:  # g_v = m * (g - <g, m> / |m|) equals autograd through the sort-based threshold
        (g1,) = torch.autograd.grad((project_simplex(v) * weights).sum(), v)
        (g2,) = torch.autograd.grad((project_simplex(v, "sort") * weights).sum(), v)
        assert torch.allclose(g1, g2, atol=1e-12)
    # and the formula itself on one row
    x = torch.tensor([[0.9, 0.5, -2.0, 0.45]], dtype=torch.float64, requires_grad=True)
    gy = torch.tensor([[1.0, 2.0, 3.0, 4.0]], dtype=torch.float64)
    p = project_simplex(x)
    (gx,) = torch.autograd.grad(p, x, gy)
    m = (p > 0).double()
    assert torch.allclose(gx, m * (gy - (gy * m).sum() / m.sum()))


def test_projection_code_is_device_agnostic():
    src = inspect.getsource(simplex)
    for host_call in (".cpu()", ".item()", ".numpy()", ".tolist()"):
        assert host_call not in src
    if torch.cuda.is_available():
        v = torch.randn(1000, 64, device="cuda", requires_grad=True)
        p = project_simplex(v)
        assert p.device == v.device
        p.sum().backward()
        assert torch.allclose(p.cpu().double(), project_simplex(v.detach().cpu().double(), "sort"), atol=1e-6)

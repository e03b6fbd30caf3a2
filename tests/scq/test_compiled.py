"""Unit tests of effcourse.scq.compiled (chapter 04-scq): the torch.compile path of SCQ's layer against the eager one.

The compiled path adds in another order, so the comparisons are to rounding (float64), not bit for bit.  Every test
here uses the same shapes, so the kernels compile once for the module.
"""

from __future__ import annotations

import pytest
import torch

from effcourse.scq.compiled import _project, scq_quantize_compiled
from effcourse.scq.quantizers import SoftConvexQuantizer, make_quantizer
from effcourse.scq.simplex import project_simplex
from effcourse.scq.solvers import scq_quantize

N, F, K = 3000, 16, 64


def _draw(seed: int, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    z = (torch.randn(N, F, generator=g) * (0.1 if seed else 1.0)).to(dtype)
    c = ((torch.rand(K, F, generator=g) * 2 - 1) / K).to(dtype)
    return z, c, torch.randn(N, F, generator=g).to(dtype)


@pytest.mark.parametrize("seed", [0, 52])
def test_compiled_path_matches_the_eager_one_to_rounding(seed):
    z, c, up = _draw(seed)
    outs = []
    for fn in (scq_quantize_compiled, scq_quantize):
        zz, cc = z.clone().requires_grad_(True), c.clone().requires_grad_(True)
        zq, p = fn(zz, cc, 0.1)
        assert not p.requires_grad
        ((zq * up).sum() + (zq - zz).pow(2).mean()).backward()
        outs.append((p, zq.detach(), zz.grad, cc.grad))
    for a, b in zip(*outs):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-13), (a - b).abs().max()
    p = outs[0][0]
    assert ((p > 0).sum(1) > 1).float().mean() > 0.05  # soft rows: threshold rounds ran
    assert torch.allclose(p.sum(1), torch.ones(N, dtype=p.dtype)) and p.min() >= 0


def test_threshold_rounds_give_the_exact_projection_at_every_scale():
    # rows from nearly one-hot to nearly uniform: from no rounds to many, so the loop narrows to its stragglers
    g = torch.Generator().manual_seed(3)
    scales = torch.logspace(-3, 1, N, dtype=torch.float64).unsqueeze(1)
    v = torch.randn(N, K, generator=g, dtype=torch.float64) * scales
    theta = v.amax(-1, keepdim=True) - 1.0
    p = (v - theta).clamp_min(0.0)
    count = (p > 0).sum(-1)
    assert (count > 8).any() and (count == 1).any()
    _project(v, p, theta, count)
    exact = project_simplex(v, method="sort")
    assert torch.allclose(p, exact, rtol=0, atol=1e-12), (p - exact).abs().max()


def test_layer_picks_its_path():
    torch.manual_seed(0)
    z4 = torch.randn(12, F, 5, 50, dtype=torch.float64)  # n = 3000 latent rows
    eager = SoftConvexQuantizer(K, F).double()
    compiled = make_quantizer("scq", K, F, compiled=True).double()
    auto = SoftConvexQuantizer(K, F).double()
    compiled.load_state_dict(eager.state_dict())
    auto.load_state_dict(eager.state_dict())
    assert eager.compiled is None and not eager._use_compiled(z4)  # on a CPU the default is the eager path
    a, b, d = eager(z4), compiled(z4), auto(z4)
    assert torch.equal(a.z_q, d.z_q) and torch.allclose(a.z_q, b.z_q, rtol=1e-10, atol=1e-13)
    with pytest.raises(TypeError, match="compiled"):
        SoftConvexQuantizer(K, F, compiled="yes")
    with pytest.raises(ValueError, match="compiled applies to kind 'scq'"):
        make_quantizer("vq", K, F, compiled=True)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_compiled_path_matches_the_eager_cpu_one():
    z, c, up = _draw(52)
    torch.use_deterministic_algorithms(False)
    q = SoftConvexQuantizer(K, F, device="cuda").double()
    assert q._use_compiled(z.cuda())  # the full-scale default on an accelerator
    ref = scq_quantize(z, c, 0.1)[0]
    got = scq_quantize_compiled(z.cuda(), c.cuda(), 0.1)[0].cpu()
    assert torch.allclose(got, ref, rtol=1e-10, atol=1e-13)

"""Unit tests of effcourse.scq.quantizers (chapter 04-scq): VQ (+ replacement), SimVQ and SCQ layers."""

from __future__ import annotations

import pytest
import torch

from effcourse.scq.codebook import codes_used, perplexity
from effcourse.scq.quantizers import (
    KINDS,
    SimVQ,
    SoftConvexQuantizer,
    VectorQuantizer,
    make_quantizer,
    vq_loss,
)
from effcourse.scq.simplex import simplex_violation


def test_vq_layer_straight_through_and_usage():
    torch.manual_seed(0)
    q = VectorQuantizer(16, 4, init="normal")
    z = torch.randn(2, 4, 3, 3, requires_grad=True)
    out = q(z)
    assert out.z_q.shape == z.shape and out.weights.shape == (18, 16)
    assert torch.allclose(out.z_q.permute(0, 2, 3, 1).reshape(-1, 4), q.codebook[out.weights.argmax(1)])
    (g,) = torch.autograd.grad(out.z_q.sum(), z)
    assert torch.equal(g, torch.ones_like(z))  # identity in the backward pass
    assert 1.0 <= float(perplexity(out.weights)) <= codes_used(out.weights) <= 16


def test_dead_code_replacement_revives_unused_codes():
    torch.manual_seed(0)
    q = VectorQuantizer(32, 2, init="normal", dead_code_every=1)
    q.codebook.data[1:] += 100.0  # all codes but one are far away: dead
    z = torch.randn(4, 2, 4, 4)
    before = codes_used(q(z).weights)  # this call replaces the dead codes by encoder outputs
    assert before == 1 and q.replaced == 31
    q.eval()
    assert codes_used(q(z).weights) > 10


def test_simvq_trains_only_the_linear_map_and_moves_every_code():
    torch.manual_seed(0)
    q = SimVQ(32, 4)
    assert [n for n, p in q.named_parameters()] == ["proj.weight", "proj.bias"]
    z = torch.randn(2, 4, 2, 2)
    before = q.codes().detach().clone()
    opt = torch.optim.SGD(q.parameters(), lr=0.1)
    out = q(z)
    out.loss.backward()
    opt.step()
    moved = (q.codes().detach() - before).norm(dim=1) > 0
    assert moved.all() and codes_used(out.weights) < 32


def test_scq_layer_sends_gradient_to_more_codes_than_vq():
    torch.manual_seed(0)
    z = torch.randn(4, 8, 2, 2)
    grads = {}
    for name, q in (("vq", VectorQuantizer(32, 8, init="normal")),
                    ("scq", SoftConvexQuantizer(32, 8, init="normal", lam=0.1))):
        out = q(z)
        (out.z_q.pow(2).sum() + out.loss).backward()
        grads[name] = int((q.codebook.grad.norm(dim=1) > 0).sum())
    assert grads["scq"] > grads["vq"]


def test_scq_layer_exact_and_scalable_share_an_interface():
    torch.manual_seed(0)
    z = torch.randn(1, 3, 2, 2, dtype=torch.float64)
    for solver in ("exact", "scalable"):
        q = SoftConvexQuantizer(6, 3, init="normal", solver=solver).double()
        out = q(z)
        assert out.z_q.shape == z.shape and simplex_violation(out.weights).max() < 1e-6
        assert float(out.quant_error) >= 0


def test_vq_loss_weights_codebook_and_commitment_terms():
    z_e = torch.tensor([[1.0, 0.0]], requires_grad=True)
    z_q = torch.tensor([[0.0, 0.0]], requires_grad=True)
    loss = vq_loss(z_e, z_q, 0.25)
    assert torch.isclose(loss, torch.tensor(0.5))  # mean over 2 entries of 1 = 0.5, weights sum to one
    ge, gq = torch.autograd.grad(loss, (z_e, z_q))
    # d/dz_e of 0.25 * mean((z_e - sg z_q)^2) and d/dz_q of 0.75 * mean((sg z_e - z_q)^2)
    assert torch.allclose(ge, torch.tensor([[0.25, 0.0]])) and torch.allclose(gq, torch.tensor([[-0.75, 0.0]]))


def test_make_quantizer_builds_every_kind():
    for kind in KINDS:
        q = make_quantizer(kind, 8, 2)
        out = q(torch.randn(1, 2, 2, 2))
        assert out.weights.shape == (4, 8)
    assert make_quantizer("vq_rep", 8, 2, dead_code_every=7).dead_code_every == 7
    assert make_quantizer("vq", 8, 2).dead_code_every == 0
    assert make_quantizer("scq_alg9", 8, 2).projection == "alternating"


def test_layer_errors():
    with pytest.raises(ValueError, match="beta"):
        VectorQuantizer(8, 2, beta=1.5)
    with pytest.raises(ValueError, match="solver"):
        SoftConvexQuantizer(8, 2, solver="admm")
    with pytest.raises(ValueError, match="lam"):
        SoftConvexQuantizer(8, 2, lam=-1.0)
    with pytest.raises(ValueError, match="channels"):
        VectorQuantizer(8, 2)(torch.zeros(1, 3, 2, 2))
    with pytest.raises(ValueError, match="4-d"):
        VectorQuantizer(8, 2)(torch.zeros(3, 2))
    with pytest.raises(ValueError, match="dead_code_every"):
        VectorQuantizer(8, 2, dead_code_every=-1)
    with pytest.raises(ValueError, match="kind"):
        make_quantizer("rq", 8, 2)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_layers_match_cpu():
    torch.manual_seed(0)
    z = torch.randn(4, 16, 4, 4, dtype=torch.float64)
    for kind in ("vq", "scq", "scq_alg9", "simvq"):
        torch.manual_seed(1)
        q_cpu = make_quantizer(kind, 32, 16).double()
        q_gpu = make_quantizer(kind, 32, 16, device="cuda").double()
        q_gpu.load_state_dict(q_cpu.state_dict())
        a, b = q_cpu(z), q_gpu(z.cuda())
        assert torch.allclose(a.z_q, b.z_q.cpu(), atol=1e-8) and torch.allclose(a.loss, b.loss.cpu(), atol=1e-8)

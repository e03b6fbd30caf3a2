"""AvaGrad, AvaGradW, Delayed Adam: the thesis's update (Alg. 7), both code paths, state, validation."""

import io
import math

import pytest
import torch

from effcourse.avagrad import AvaGrad, AvaGradW, DelayedAdam, EMAMomentumSGD


def reference_avagrad(grads_per_step, params0, lr, b1, b2, eps):
    """A direct transcription of Alg. 7 on flat float64 vectors (eps outside the sqrt)."""
    w = torch.cat([p.flatten() for p in params0]).double()
    m = torch.zeros_like(w)
    v = torch.zeros_like(w)
    for g in grads_per_step:
        g = torch.cat([x.flatten() for x in g]).double()
        m = b1 * m + (1 - b1) * g
        eta = 1 / (v.sqrt() + eps)
        w = w - lr * eta / (eta.pow(2).mean().sqrt()) * m
        v = b2 * v + (1 - b2) * g * g
    return w


def _quadratic_grads(params, t):
    return [p.detach() * (i + 1) + math.sin(t + i) for i, p in enumerate(params)]


@pytest.mark.parametrize("path", [dict(foreach=False), dict(foreach=True),
                                  pytest.param(dict(fused=True), marks=pytest.mark.slow, id="fused")])
def test_matches_algorithm_7_over_several_tensors(path):
    """Every code path (one tensor at a time, multi-tensor, the step compiled by torch.compile) is Alg. 7."""
    torch.manual_seed(0)
    params = [torch.randn(4, 3, dtype=torch.float64, requires_grad=True),
              torch.randn(5, dtype=torch.float64, requires_grad=True)]
    start = [p.detach().clone() for p in params]
    opt = AvaGrad(params, lr=0.05, betas=(0.8, 0.95), eps=1e-3, **path)
    used = []
    for t in range(20):
        g = _quadratic_grads(params, t)
        used.append([x.clone() for x in g])
        for p, x in zip(params, g):
            p.grad = x.clone()
        opt.step()
    ref = reference_avagrad(used, start, 0.05, 0.8, 0.95, 1e-3)
    got = torch.cat([p.detach().flatten() for p in params])
    assert torch.allclose(got, ref, atol=1e-12, rtol=0)


def test_normalization_is_global_across_parameter_groups():
    torch.manual_seed(1)
    a = torch.randn(3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(6, dtype=torch.float64, requires_grad=True)
    start = [a.detach().clone(), b.detach().clone()]
    opt = AvaGrad([{"params": [a]}, {"params": [b]}], lr=0.1, eps=1e-2)
    used = []
    for t in range(5):
        g = _quadratic_grads([a, b], t)
        used.append(g)
        a.grad, b.grad = g[0].clone(), g[1].clone()
        opt.step()
    ref = reference_avagrad(used, start, 0.1, 0.9, 0.999, 1e-2)
    assert torch.allclose(torch.cat([a.detach(), b.detach()]), ref, atol=1e-12)


@pytest.mark.parametrize("cls, variant", [(AvaGrad, "thesis"), (AvaGrad, "official"), (AvaGradW, "thesis"),
                                          (AvaGradW, "official"), (DelayedAdam, "thesis")])
def test_foreach_and_per_parameter_paths_agree(cls, variant):
    torch.manual_seed(2)
    nets = [torch.nn.Sequential(torch.nn.Linear(7, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2)) for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    kw = dict(lr=0.03, weight_decay=0.01)
    if cls is not DelayedAdam:
        kw["variant"] = variant
    opts = [cls(nets[0].parameters(), foreach=False, **kw), cls(nets[1].parameters(), foreach=True, **kw)]
    x, y = torch.randn(16, 7), torch.randn(16, 2)
    for _ in range(6):
        for net, opt in zip(nets, opts):
            opt.zero_grad()
            torch.nn.functional.mse_loss(net(x), y).backward()
            opt.step()
    for p, q in zip(nets[0].parameters(), nets[1].parameters()):
        assert torch.allclose(p, q, atol=1e-6)


def test_official_variant_takes_no_first_step_and_lags_its_normaliser():
    w = torch.ones(4, requires_grad=True)
    opt = AvaGrad([w], lr=0.1, eps=0.5, variant="official")
    w.grad = torch.tensor([1.0, 2.0, 3.0, 4.0])
    opt.step()
    assert torch.equal(w.detach(), torch.ones(4))  # statistics only at t = 1
    assert opt.state["__global__"]["gamma"] == pytest.approx(0.5)  # from v_0 = 0: 1 / RMS(1/eps) = eps
    thesis = AvaGrad([torch.ones(4, requires_grad=True)], lr=0.1, eps=0.5)
    p = thesis.param_groups[0]["params"][0]
    p.grad = torch.tensor([1.0, 2.0, 3.0, 4.0])
    thesis.step()
    assert torch.allclose(p.detach(), 1 - 0.1 * 0.1 * torch.tensor([1.0, 2.0, 3.0, 4.0]))


def test_decoupled_weight_decay_differs_from_l2():
    w1 = torch.ones(3, requires_grad=True)
    w2 = torch.ones(3, requires_grad=True)
    o1, o2 = AvaGrad([w1], lr=0.1, weight_decay=0.5), AvaGradW([w2], lr=0.1, weight_decay=0.5)
    for w, o in ((w1, o1), (w2, o2)):
        w.grad = torch.zeros(3)
        o.step()
    # AvaGradW shrinks by (1 - lr wd) regardless of the gradient; L2 goes through the adaptive step
    assert torch.allclose(w2.detach(), torch.full((3,), 0.95))
    assert torch.allclose(w1.detach(), torch.full((3,), 1 - 0.1 * 0.1 * 0.5))


def test_state_dict_round_trip_continues_identically():
    torch.manual_seed(3)
    net = torch.nn.Linear(4, 3)
    opt = AvaGrad(net.parameters(), lr=0.1, eps=1e-3, variant="official")
    x = torch.randn(8, 4)
    for _ in range(3):
        opt.zero_grad()
        net(x).pow(2).mean().backward()
        opt.step()
    net2 = torch.nn.Linear(4, 3)
    net2.load_state_dict(net.state_dict())
    opt2 = AvaGrad(net2.parameters(), lr=0.1, eps=1e-3, variant="official")
    buf = io.BytesIO()  # through bytes, as a checkpoint on disk would
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    opt2.load_state_dict(torch.load(buf))
    for n, o in ((net, opt), (net2, opt2)):
        o.zero_grad()
        n(x).pow(2).mean().backward()
        o.step()
    for p, q in zip(net.parameters(), net2.parameters()):
        assert torch.equal(p, q)
    with pytest.raises(ValueError, match="variant"):
        AvaGrad(net2.parameters()).load_state_dict(opt.state_dict())
    with pytest.raises(ValueError, match="__global__"):
        AvaGrad(net2.parameters()).load_state_dict(torch.optim.Adam(net.parameters()).state_dict())


@pytest.mark.parametrize("kw, match", [
    (dict(lr=-1.0), "lr"), (dict(lr=float("nan")), "lr"), (dict(eps=0.0), "eps"), (dict(eps=-1e-3), "eps"),
    (dict(betas=(1.0, 0.9)), r"betas\[0\]"), (dict(betas=(0.9, -0.1)), r"betas\[1\]"), (dict(betas=(0.9,)), "betas"),
    (dict(weight_decay=-0.1), "weight_decay"), (dict(variant="adam"), "variant"), (dict(foreach="yes"), "foreach")])
def test_invalid_hyperparameters_name_the_argument(kw, match):
    with pytest.raises(ValueError, match=match):
        AvaGrad([torch.zeros(2, requires_grad=True)], **kw)


def test_eta_does_not_depend_on_the_current_gradient():
    """Theorem 6.3's premise: eta_t is a function of g_1..g_{t-1}."""
    def last_update(last_g):
        w = torch.zeros(5, dtype=torch.float64, requires_grad=True)
        opt = DelayedAdam([w], lr=1.0, betas=(0.0, 0.9), eps=1e-3)
        for g in [torch.arange(5.0, dtype=torch.float64), torch.ones(5, dtype=torch.float64), last_g]:
            before = w.detach().clone()
            w.grad = g
            opt.step()
        return w.detach() - before

    g1, g2 = torch.full((5,), 2.0, dtype=torch.float64), torch.full((5,), -7.0, dtype=torch.float64)
    # with beta1 = 0 the update is -eta_t * g_t, so update / g_t = -eta_t must be the same for both
    assert torch.allclose(last_update(g1) / g1, last_update(g2) / g2)


def test_eps_to_infinity_limit_is_ema_sgd():
    torch.manual_seed(4)
    x, y = torch.randn(32, 6), torch.randn(32, 1)

    def final(opt_fn):
        torch.manual_seed(5)
        net = torch.nn.Linear(6, 1)
        opt = opt_fn(net.parameters())
        for _ in range(30):
            opt.zero_grad()
            torch.nn.functional.mse_loss(net(x), y).backward()
            opt.step()
        return torch.cat([p.detach().flatten() for p in net.parameters()])

    ref = final(lambda p: EMAMomentumSGD(p, lr=0.05))
    d = [float((final(lambda p, e=e: AvaGrad(p, lr=0.05, eps=e)) - ref).norm()) for e in (1e1, 1e3)]
    assert d[1] < 1e-3 and d[1] < d[0] / 30


def test_sparse_gradients_are_rejected():
    emb = torch.nn.Embedding(5, 2, sparse=True)
    emb(torch.tensor([1])).sum().backward()
    with pytest.raises(RuntimeError, match="sparse"):
        AvaGrad(emb.parameters()).step()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_foreach_path_matches_cpu():
    torch.manual_seed(0)
    cpu = [torch.randn(64, 32, requires_grad=True), torch.randn(32, requires_grad=True)]
    gpu = [p.detach().cuda().requires_grad_() for p in cpu]
    oc, og = AvaGrad(cpu, lr=0.1, eps=1e-4, foreach=False), AvaGrad(gpu, lr=0.1, eps=1e-4)
    assert og._use_foreach(gpu)
    for t in range(10):
        for ps, o in ((cpu, oc), (gpu, og)):
            for i, p in enumerate(ps):
                p.grad = (p.detach() * (i + 1) + math.cos(t)).clone()
            o.step()
    for a, b in zip(cpu, gpu):
        assert torch.allclose(a, b.cpu(), atol=1e-5)


@pytest.mark.parametrize("cls, decouple", [(AvaGrad, False), (AvaGradW, True)])
@pytest.mark.parametrize("foreach", [False, True])
def test_official_variant_follows_the_authors_code_step_by_step(cls, decouple, foreach):
    """``variant="official"`` against pytorch-optimizer's AvaGrad (a port of the authors' code): same trajectory."""
    import pytorch_optimizer as po

    torch.manual_seed(3)
    w0 = [torch.randn(6, 4), torch.randn(7)]
    ours = [w.clone().requires_grad_() for w in w0]
    theirs = [w.clone().requires_grad_() for w in w0]
    opt = cls(ours, lr=0.3, betas=(0.9, 0.99), eps=1e-2, weight_decay=1e-2, variant="official", foreach=foreach)
    ref = po.AvaGrad(theirs, lr=0.3, betas=(0.9, 0.99), eps=1e-2, weight_decay=1e-2, weight_decouple=decouple,
                     foreach=foreach)
    for t in range(25):
        for a, b, g in zip(ours, theirs, _quadratic_grads(ours, t)):
            a.grad, b.grad = g.clone(), g.clone()
        opt.step()
        ref.step()
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert not torch.equal(ours[0], w0[0])
    # the lagged normaliser stays on the device: no host synchronisation per step
    assert isinstance(opt.state["__global__"]["gamma"], torch.Tensor)


def test_functional_form_is_the_optimizer():
    from effcourse.avagrad.optim import avagrad

    torch.manual_seed(4)
    w0 = [torch.randn(5, 3, dtype=torch.float64), torch.randn(4, dtype=torch.float64)]
    a = [w.clone().requires_grad_() for w in w0]
    b = [w.clone() for w in w0]
    ms, vs = [torch.zeros_like(w) for w in w0], [torch.zeros_like(w) for w in w0]
    opt = AvaGrad(a, lr=0.05, eps=1e-3, weight_decay=1e-3)
    for t in range(10):
        g = _quadratic_grads(a, t)
        for p, x in zip(a, g):
            p.grad = x.clone()
        opt.step()
        avagrad(b, g, ms, vs, lr=0.05, beta1=0.9, beta2=0.999, eps=1e-3, weight_decay=1e-3)
    for x, y in zip(a, b):
        torch.testing.assert_close(x.detach(), y, rtol=0, atol=1e-12)


def test_fused_and_foreach_are_exclusive_and_fused_is_the_thesis_form():
    w = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="fused and foreach are exclusive"):
        AvaGrad([w], fused=True, foreach=True)
    with pytest.raises(ValueError, match="fused=True exists for variant='thesis' only"):
        AvaGrad([w], fused=True, variant="official")
    with pytest.raises(ValueError, match="fused must be None, True or False"):
        AvaGrad([w], fused="yes")

import pytest
import torch

from effcourse.data import digits
from effcourse.models import MLP, SmallCNN, WideResNet, count_parameters
from effcourse.train import batches, evaluate, fit, random_crop_flip


def test_batches_cover_every_index_once():
    idx = torch.cat(list(batches(10, 3, torch.Generator().manual_seed(0))))
    assert sorted(idx.tolist()) == list(range(10))
    with pytest.raises(ValueError, match="batch_size"):
        list(batches(10, 0))


def test_fit_learns_digits_and_is_repeatable():
    d = digits()

    def once():
        torch.manual_seed(0)
        m = MLP([d.num_features, 32, 10])
        h = fit(m, torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9), d, 3, 64,
                generator=torch.Generator().manual_seed(0))
        return h, m

    h1, m1 = once()
    h2, _ = once()
    assert h1.test_err == h2.test_err and h1.train_loss == h2.train_loss
    assert h1.train_loss[-1] < h1.train_loss[0] and h1.final_err < 0.15
    loss, err = evaluate(m1, d.x_test, d.y_test)
    assert err == pytest.approx(h1.final_err)


def test_fit_flags_divergence():
    d = digits()
    m = MLP([d.num_features, 16, 10])
    h = fit(m, torch.optim.SGD(m.parameters(), lr=1e6), d, 5, 64)
    assert h.diverged and h.final_err == 1.0


def test_models_shapes_and_counts():
    assert count_parameters(MLP([4, 3, 2])) == 4 * 3 + 3 + 3 * 2 + 2
    assert SmallCNN()(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    wrn = WideResNet(10, 1)
    assert wrn(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ValueError, match="depth"):
        WideResNet(12, 1)
    with pytest.raises(ValueError, match="sizes"):
        MLP([4])


def test_random_crop_flip_preserves_shape_and_content():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).view(2, 3, 4, 4)
    y = random_crop_flip(x, pad=0, generator=torch.Generator().manual_seed(0))
    for i in range(2):
        assert torch.equal(y[i], x[i]) or torch.equal(y[i], x[i].flip(-1))


def test_after_step_runs_after_every_update():
    d = digits()
    m = MLP([d.num_features, 8, 10])
    opt = torch.optim.SGD(m.parameters(), lr=0.5)
    calls = []

    def clip():
        calls.append(1)
        with torch.no_grad():
            for p in m.parameters():
                p.clamp_(-0.01, 0.01)

    fit(m, opt, d, 2, 512, after_step=clip)
    assert len(calls) == 2 * -(-d.x_train.shape[0] // 512)
    assert all(float(p.abs().max()) <= 0.01 for p in m.parameters())

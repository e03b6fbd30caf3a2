import pytest
import torch
import torch.nn.functional as F

from effcourse.core.data import digits, random_crop_flip
from effcourse.core.models import MLP, SmallCNN, WideResNet, count_parameters
from effcourse.core.train import batches, evaluate, fit


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

    def clip(step, total):
        calls.append((step, total))
        with torch.no_grad():
            for p in m.parameters():
                p.clamp_(-0.01, 0.01)

    fit(m, opt, d, 2, 512, after_step=clip)
    steps = 2 * -(-d.x_train.shape[0] // 512)
    assert calls == [(s, steps) for s in range(1, steps + 1)]
    assert all(float(p.detach().abs().max()) <= 0.01 for p in m.parameters())


def test_lr_factor_sets_every_group_of_every_optimizer_per_epoch_and_after_epoch_sees_it():
    d = digits()
    m = MLP([d.num_features, 8, 10])
    a = torch.optim.SGD(m[0].parameters(), lr=0.1)
    b = torch.optim.Adam(m[2].parameters(), lr=0.01)
    seen = []

    def record(epoch):
        seen.append((epoch, a.param_groups[0]["lr"], b.param_groups[0]["lr"]))

    fit(m, [a, b], d, 3, 256, lr_factor=lambda e: 0.5 ** e, after_epoch=record, eval_every=0)
    assert [e for e, *_ in seen] == [1, 2, 3]
    assert [round(x, 12) for _, x, _ in seen] == [0.1, 0.05, 0.025]
    assert [round(y, 12) for *_, y in seen] == [0.01, 0.005, 0.0025]


def test_several_optimizers_each_update_their_own_parameters():
    d = digits()
    m = MLP([d.num_features, 8, 10])
    before = [p.detach().clone() for p in m.parameters()]
    fit(m, [torch.optim.SGD(m[0].parameters(), lr=0.1), torch.optim.SGD(m[2].parameters(), lr=0.1)], d, 1, 256,
        eval_every=0)
    assert all(not torch.equal(p0, p) for p0, p in zip(before, m.parameters()))


def test_batch_loss_replaces_the_data_term_and_train_loss_excludes_the_regularizer():
    d = digits()
    torch.manual_seed(0)
    m = MLP([d.num_features, 8, 10])
    calls = []

    def twice(model, xb, yb):
        calls.append(xb.shape[0])
        return 0.5 * (F.cross_entropy(model(xb), yb) + F.cross_entropy(model(xb), yb))

    h = fit(m, torch.optim.SGD(m.parameters(), lr=0.0), d, 1, d.x_train.shape[0], batch_loss=twice,
            regularizer=lambda: torch.tensor(100.0), eval_every=0)
    assert calls == [d.x_train.shape[0]] and h.test_err == []
    assert abs(h.train_loss[0] - evaluate(m, d.x_train, d.y_train)[0]) < 1e-5


def test_fit_rejects_bad_arguments_by_name():
    d = digits()
    m = MLP([d.num_features, 8, 10])
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="eval_every"):
        fit(m, opt, d, 1, 64, eval_every=-1)
    with pytest.raises(TypeError, match="optimizer"):
        fit(m, [], d, 1, 64)


def test_max_steps_ends_mid_epoch_and_after_step_can_end_training():
    d = digits()
    steps_per_epoch = -(-d.x_train.shape[0] // 256)
    calls = []
    m = MLP([d.num_features, 8, 10])
    h = fit(m, torch.optim.SGD(m.parameters(), lr=0.1), d, 5, 256, max_steps=steps_per_epoch + 2,
            after_step=lambda step, total: calls.append((step, total)))
    assert calls == [(s, steps_per_epoch + 2) for s in range(1, steps_per_epoch + 3)]
    assert len(h.train_loss) == 2 and len(h.test_err) == 2  # the cut epoch is recorded and evaluated
    m = MLP([d.num_features, 8, 10])
    h = fit(m, torch.optim.SGD(m.parameters(), lr=0.1), d, 5, 256, eval_every=0, after_step=lambda step, _: step == 3)
    assert len(h.train_loss) == 1 and h.test_err == [] and not h.diverged
    with pytest.raises(ValueError, match="max_steps"):
        fit(m, torch.optim.SGD(m.parameters(), lr=0.1), d, 1, 256, max_steps=0)

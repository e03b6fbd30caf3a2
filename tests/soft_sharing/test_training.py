"""The thesis's training recipes through the library's one loop: the CIFAR recipe and the shortest-path curriculum."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from effcourse.core.data import Split
from effcourse.core.train import fit
from effcourse.soft_sharing.residual_cnn import SharedResidualCNN
from effcourse.soft_sharing.shortest_path import PathCNN, curriculum, f1_score
from effcourse.soft_sharing.similarity import layer_similarity, mean_offdiagonal, recurrence_regularizer
from effcourse.soft_sharing.training import train_classifier, train_curriculum


def test_train_classifier_smoke_and_regularizer():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 1, 8, 8, generator=g)
    y = (x.mean((1, 2, 3)) > 0).long()
    data = Split(x, y, x, y, 10)
    torch.manual_seed(0)
    m = SharedResidualCNN(4, 3, 1)
    hist = train_classifier(m, data, epochs=2, batch_size=32, lam=0.01, generator=g)
    assert len(hist.test_err) == 1 and len(hist.train_loss) == 2 and not hist.diverged
    with pytest.raises(ValueError, match="soft-shared"):
        train_classifier(SharedResidualCNN(4, 3, None), data, epochs=1, lam=0.01)
    with pytest.raises(ValueError, match="lam"):
        train_classifier(m, data, epochs=1, lam=-1.0)


def _phases():
    return curriculum([2, 3], 48, 16, size=8, generator=torch.Generator().manual_seed(5))


def _reference_curriculum(net, phases, lam, seed):
    """The chapter's former loop, written out: one fit per phase (evaluating after it), F1 after each phase."""
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    reg = (lambda: recurrence_regularizer(net.alpha(), lam)) if lam > 0 else None
    g = torch.Generator().manual_seed(seed)
    scores = []
    for ph in phases:
        fit(net, opt, ph.data, 2, 16, loss_fn=F.binary_cross_entropy_with_logits, generator=g, regularizer=reg,
            eval_every=10**9)
        net.eval()
        with torch.no_grad():
            scores.append(f1_score(net(ph.data.x_test) > 0, ph.data.y_test))
        net.train()
    return scores


@pytest.mark.parametrize("templates, lam", [(None, 0.0), (4, 0.0), (4, 0.05)])
def test_train_curriculum_is_bit_identical_to_the_written_out_loop(templates, lam):
    phases = _phases()
    torch.manual_seed(1)
    a = PathCNN(4, 4, templates)
    torch.manual_seed(1)
    b = PathCNN(4, 4, templates)
    got = train_curriculum(a, phases, 0.01, 2, 16, lam=lam, generator=torch.Generator().manual_seed(3))
    want = _reference_curriculum(b, phases, lam, 3)
    assert got == want and len(got) == 2 and all(0.0 <= s <= 1.0 for s in got)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_train_curriculum_regularizer_raises_similarity_and_checks_arguments():
    phases = _phases()
    offdiag = {}
    for lam in (0.0, 0.5):
        torch.manual_seed(0)
        net = PathCNN(4, 4, 4)
        train_curriculum(net, phases, 0.01, 2, 16, lam=lam, generator=torch.Generator().manual_seed(0))
        offdiag[lam] = mean_offdiagonal(layer_similarity(net.alpha().detach()))
    assert offdiag[0.5] > offdiag[0.0] + 0.1
    with pytest.raises(ValueError, match="soft-shared"):
        train_curriculum(PathCNN(4, 4, None), phases, lam=0.1)
    with pytest.raises(ValueError, match="phases"):
        train_curriculum(PathCNN(4, 4, None), [])

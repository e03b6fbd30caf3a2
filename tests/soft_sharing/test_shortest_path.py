"""The synthetic shortest-path task: BFS distances, sampling with a curriculum, labels, F1 and the model."""

from __future__ import annotations

import pytest
import torch

from effcourse.soft_sharing.shortest_path import PathCNN, bfs_distances, curriculum, f1_score, f1_thesis, sample_paths


def test_bfs_distances_open_grid_and_wall():
    free = torch.ones(1, 5, 5, dtype=torch.bool)
    src = torch.zeros(1, 5, 5, dtype=torch.bool)
    src[0, 0, 0] = True
    d8 = bfs_distances(src, free, 8)
    d4 = bfs_distances(src, free, 4)
    ii, jj = torch.meshgrid(torch.arange(5), torch.arange(5), indexing="ij")
    assert torch.equal(d8[0], torch.maximum(ii, jj).float())  # Chebyshev
    assert torch.equal(d4[0], (ii + jj).float())  # Manhattan
    free[0, :, 2] = False  # a full wall
    assert torch.isinf(bfs_distances(src, free, 8)[0, :, 3:]).all()
    with pytest.raises(ValueError, match="connectivity"):
        bfs_distances(src, free, 6)


@pytest.mark.parametrize("conn", [4, 8])
def test_samples_respect_distance_and_labels_are_shortest_paths(conn):
    g = torch.Generator().manual_seed(0)
    x, y = sample_paths(40, 10, 4, 0.2, conn, generator=g)
    assert x.shape == (40, 2, 10, 10) and y.shape == (40, 10, 10)
    q, obs = x[:, 0].bool(), x[:, 1].bool()
    assert (q.flatten(1).sum(1) == 2).all() and not (q & obs).any()
    assert not (y.bool() & obs).any() and (y.bool() | ~q).all()  # queries on the path, obstacles never
    for i in range(5):  # brute force: a cell is on a shortest path iff d(a,c) + d(c,b) == d(a,b)
        a, b = [idx for idx in q[i].nonzero()]
        sa = torch.zeros(1, 10, 10, dtype=torch.bool)
        sa[0, a[0], a[1]] = True
        sb = torch.zeros_like(sa)
        sb[0, b[0], b[1]] = True
        da, db = bfs_distances(sa, ~obs[i:i + 1], conn)[0], bfs_distances(sb, ~obs[i:i + 1], conn)[0]
        dab = da[b[0], b[1]]
        assert 1 <= dab <= 4
        assert torch.equal(y[i].bool(), da + db == dab)
        assert int(y[i].sum()) >= int(dab) + 1  # at least one path of dab moves


def test_curriculum_grows_paths():
    g = torch.Generator().manual_seed(1)
    phases = curriculum([2, 6], 60, 20, 12, generator=g)
    assert [p.max_distance for p in phases] == [2, 6]
    assert phases[1].data.y_train.mean() > phases[0].data.y_train.mean()


def test_f1_factor_two():
    t = torch.tensor([1, 1, 0, 0, 1])
    p = torch.tensor([1, 0, 1, 0, 1])
    assert f1_score(p, t) == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    assert f1_score(t, t) == 1.0 and f1_thesis(t, t) == 0.5
    assert f1_thesis(p, t) == pytest.approx(f1_score(p, t) / 2)


def test_path_cnn_shapes_and_sharing():
    m = PathCNN(8, 4, 4)
    assert m(torch.zeros(2, 2, 9, 9)).shape == (2, 9, 9) and m.alpha().shape == (4, 4)
    plain = PathCNN(8, 4, None)
    assert sum(p.numel() for p in m.parameters()) == sum(p.numel() for p in plain.parameters()) + 16


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_bfs_on_cuda_matches_cpu():
    g = torch.Generator().manual_seed(0)
    free = torch.rand(4, 9, 9, generator=g) > 0.2
    src = torch.zeros(4, 9, 9, dtype=torch.bool)
    src[:, 4, 4] = True
    free[:, 4, 4] = True
    assert torch.equal(bfs_distances(src.cuda(), free.cuda()).cpu(), bfs_distances(src, free))

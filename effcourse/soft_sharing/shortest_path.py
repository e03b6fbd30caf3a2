"""The synthetic shortest-path task of Savarese (2025), Sec. 3.3.1 and 3.4.3, with its curriculum and F1 metric.

A sample is a square grid with two query cells and random obstacles (two binary input channels: queries,
obstacles); its label marks every cell that lies on at least one shortest path between the queries.
Connectivity: the thesis's data section counts "diagonal movements" (8-connected moves) while its Fig. 3.8 caption
speaks of Manhattan distance (4-connected). Both are available; the default is 8, and the same connectivity is
used to sample the second query and to label the paths, so the two can never disagree.
The distance maps come from a batched breadth-first search: one dilation of the visited set per BFS step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..core.data import Split
from .templates import SConv2d, TemplateBank, orthogonal_coefficients_, stack_coefficients

__all__ = ["PathCNN", "Phase", "bfs_distances", "curriculum", "f1_score", "f1_thesis", "sample_paths"]


def _check_connectivity(connectivity: int) -> None:
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8; got {connectivity!r}")


def bfs_distances(source: torch.Tensor, free: torch.Tensor, connectivity: int = 8) -> torch.Tensor:
    """Grid distances (in moves) from the ``True`` cells of ``source`` through ``free`` cells; ``inf`` if unreachable.

    ``source`` and ``free`` are ``N x H x W`` booleans; all ``N`` grids advance one BFS step per dilation.
    """
    _check_connectivity(connectivity)
    if source.shape != free.shape or source.dim() != 3:
        raise ValueError(f"source and free must both be N x H x W; got {tuple(source.shape)} and "
                         f"{tuple(free.shape)}")
    n, h, w = source.shape
    kernel = torch.ones(1, 1, 3, 3, device=source.device)
    if connectivity == 4:
        kernel[0, 0, 0, 0] = kernel[0, 0, 0, 2] = kernel[0, 0, 2, 0] = kernel[0, 0, 2, 2] = 0
    dist = torch.full((n, h, w), float("inf"), device=source.device)
    visited = source & free
    dist[visited] = 0.0
    for step in range(1, h * w):  # a path visits each cell at most once
        grown = F.conv2d(visited.float().unsqueeze(1), kernel, padding=1).squeeze(1) > 0
        new = grown & free & ~visited
        if not bool(new.any()):
            break
        dist[new] = float(step)
        visited = visited | new
    return dist


def sample_paths(num: int, size: int = 16, max_distance: int = 2, obstacle_prob: float = 0.1,
                 connectivity: int = 8, generator: torch.Generator | None = None,
                 device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """``num`` grids: inputs ``num x 2 x size x size`` (queries, obstacles) and float labels ``num x size x size``.

    The first query is uniform over the grid; every other cell is an obstacle with probability ``obstacle_prob``;
    the second query is uniform over the cells at distance ``1..max_distance`` from the first. Grids where no such
    cell exists are redrawn. Both query cells are labelled positive (they lie on every shortest path).
    """
    for name, v in (("num", num), ("size", size), ("max_distance", max_distance)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int; got {v!r}")
    if size < 2:
        raise ValueError(f"size must be >= 2; got {size!r}")
    if not 0.0 <= obstacle_prob < 1.0:
        raise ValueError(f"obstacle_prob must be in [0, 1); got {obstacle_prob!r}")
    _check_connectivity(connectivity)
    g = generator
    cells = size * size
    obstacles = torch.empty(num, cells, dtype=torch.bool)
    a = torch.empty(num, dtype=torch.long)
    todo = torch.arange(num)
    while todo.numel():  # redraw only the grids whose first query has no admissible partner
        m = todo.numel()
        obs = torch.rand(m, cells, generator=g) < obstacle_prob
        aa = torch.randint(0, cells, (m,), generator=g)
        obs[torch.arange(m), aa] = False
        src = F.one_hot(aa, cells).bool().view(m, size, size)
        d = bfs_distances(src, ~obs.view(m, size, size), connectivity).view(m, cells)
        ok = ((d >= 1) & (d <= max_distance)).any(1)
        obstacles[todo[ok]], a[todo[ok]] = obs[ok], aa[ok]
        todo = todo[~ok]
    free = ~obstacles.view(num, size, size)
    src_a = F.one_hot(a, cells).bool().view(num, size, size)
    da = bfs_distances(src_a, free, connectivity).view(num, cells)
    cand = ((da >= 1) & (da <= max_distance)).float()
    b = torch.multinomial(cand, 1, generator=g).squeeze(1)
    src_b = F.one_hot(b, cells).bool().view(num, size, size)
    db = bfs_distances(src_b, free, connectivity).view(num, cells)
    dab = da.gather(1, b.unsqueeze(1))
    labels = (da + db == dab).float().view(num, size, size)  # inf + x never equals a finite distance
    x = torch.stack([(src_a | src_b).float(), obstacles.view(num, size, size).float()], dim=1)
    return x.to(device), labels.to(device)


@dataclass(frozen=True)
class Phase:
    """One curriculum phase: its maximum query distance and its data (labels are float masks)."""

    max_distance: int
    data: Split


def curriculum(max_distances: list[int], train_size: int, test_size: int, size: int = 16,
               obstacle_prob: float = 0.1, connectivity: int = 8, generator: torch.Generator | None = None,
               device: str | torch.device = "cpu") -> list[Phase]:
    """The phases of the curriculum (thesis: maximum distance 2, 4, 6, 8, 10), each with train and test grids."""
    if not max_distances:
        raise ValueError("max_distances must list at least one distance")
    out = []
    for d in max_distances:
        xtr, ytr = sample_paths(train_size, size, d, obstacle_prob, connectivity, generator, device)
        xte, yte = sample_paths(test_size, size, d, obstacle_prob, connectivity, generator, device)
        out.append(Phase(d, Split(xtr, ytr, xte, yte, 2)))
    return out


def f1_score(pred: torch.Tensor, target: torch.Tensor) -> float:
    """F1 of binary predictions: ``2 TP / (2 TP + FP + FN)`` (eq. 3.20 with its missing factor 2 restored)."""
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape; got {tuple(pred.shape)} and "
                         f"{tuple(target.shape)}")
    p, t = pred.bool(), target.bool()
    tp = (p & t).sum()
    denom = p.sum() + t.sum()
    return float(2 * tp / denom) if int(denom) else 1.0


def f1_thesis(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Eq. 3.20 exactly as printed: ``TP / (#positives + #predicted positives)``; its maximum is 0.5."""
    p, t = pred.bool(), target.bool()
    denom = p.sum() + t.sum()
    return float((p & t).sum() / denom) if int(denom) else 0.5


class PathCNN(nn.Module):
    """The thesis's shortest-path CNN: 1x1 conv 2->C, ``depth`` x [x + relu(bn(conv3x3(x)))], 1x1 conv C->1.

    ``templates=k`` soft-shares the ``depth`` 3x3 convs among ``k`` templates (the thesis's SCNN uses
    ``k = depth``); ``templates=None`` is the plain CNN. The output is one logit per cell (``N x H x W``).
    """

    def __init__(self, channels: int = 32, depth: int = 20, templates: int | None = None,
                 device: str | torch.device | None = None):
        super().__init__()
        for name, v in (("channels", channels), ("depth", depth)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int; got {v!r}")
        c = channels
        self.inp = nn.Conv2d(2, c, 1, device=device)
        self.bank = None if templates is None else TemplateBank(templates, (c, c, 3, 3), device=device)
        self.convs = nn.ModuleList(
            nn.Conv2d(c, c, 3, 1, 1, bias=False, device=device) if self.bank is None else SConv2d(self.bank, 1, 1)
            for _ in range(depth))
        self.bns = nn.ModuleList(nn.BatchNorm2d(c, device=device) for _ in range(depth))
        self.out = nn.Conv2d(c, 1, 1, device=device)
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if self.bank is not None:
            orthogonal_coefficients_(list(self.convs))

    def alpha(self) -> torch.Tensor:
        """The ``k x depth`` coefficient matrix (shared model only)."""
        if self.bank is None:
            raise ValueError("an unshared PathCNN has no coefficients")
        return stack_coefficients(list(self.convs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.inp(x)
        for conv, bn in zip(self.convs, self.bns):
            x = x + F.relu(bn(conv(x)))
        return self.out(x).squeeze(1)

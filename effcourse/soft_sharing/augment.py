"""Cutout (DeVries and Taylor, 2017), the extra augmentation of the thesis's Table 3.3.

Table 3.3 retrains the CIFAR-10 models of Table 3.1 "solely" with cutout added (the NAS literature's protocol):
after the usual random crop and flip, one square of ``size x size`` pixels (16 on CIFAR-10, DeVries and Taylor's
setting) is zeroed at a uniformly drawn centre, clipped at the border. :func:`cutout` is batched, draws every
random number from a CPU ``generator`` (so a sweep's checkpoint restores it) and works on any device.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..core.data import random_crop_flip

__all__ = ["CropFlipCutout", "cutout"]


def cutout(x: torch.Tensor, size: int = 16, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero one ``size x size`` square per image of the batch ``x`` (``N x C x H x W``), centred uniformly.

    As in DeVries and Taylor's code, the centre may lie anywhere in the image and the square is clipped at the
    border, so some squares cover fewer pixels. Zero is the data mean after CIFAR normalization.
    """
    if x.dim() != 4:
        raise ValueError(f"x must be a batch of images N x C x H x W; got shape {tuple(x.shape)}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(f"size must be a positive int; got {size!r}")
    n, _, h, w = x.shape
    cy = torch.randint(0, h, (n,), generator=generator).to(x.device)
    cx = torch.randint(0, w, (n,), generator=generator).to(x.device)
    rows = torch.arange(h, device=x.device).view(1, h)
    cols = torch.arange(w, device=x.device).view(1, w)
    # rows [cy - size // 2, cy - size // 2 + size) as in the reference implementation, clipped by the comparison
    in_rows = (rows >= (cy - size // 2).view(n, 1)) & (rows < (cy - size // 2 + size).view(n, 1))
    in_cols = (cols >= (cx - size // 2).view(n, 1)) & (cols < (cx - size // 2 + size).view(n, 1))
    keep = ~(in_rows.view(n, 1, h, 1) & in_cols.view(n, 1, 1, w))
    return x * keep.to(x.dtype)


@dataclass
class CropFlipCutout:
    """The training augmentation of Table 3.3: CIFAR's random crop and flip, then :func:`cutout` of ``size``.

    Crops and flips draw from the global torch stream (as the chapter's plain CIFAR augmentation does); the cutout
    squares from ``generator``, a CPU generator that a sweep's checkpoint saves and restores.
    """

    size: int = 16
    generator: torch.Generator | None = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return cutout(random_crop_flip(x), self.size, self.generator)

"""SPSA gradient estimators and the seed trick (Gautam 2024, Sec. 3.2 and Alg. 5).

Two families of two-point estimators of the gradient of :math:`f = \\frac1n\\sum_i f_i`:

* per-sample directions (3.2)-(3.4): every sample gets its own :math:`z_i`, so a batch needs ``b`` random vectors;
* one shared direction (3.5)-(3.6): the whole batch is perturbed along one :math:`z`; the estimate is a scalar
  *projected gradient* :math:`(f_I(\\theta+\\mu z) - f_I(\\theta-\\mu z)) / 2\\mu` times :math:`z`.

The shared-direction estimator needs no stored ``z`` at all: :func:`perturb_` regenerates it from an integer seed,
one piece of a parameter tensor at a time, on that tensor's own device and in its dtype (Alg. 5), so a step costs
the memory of inference plus a temporary of at most ~1/16 of the largest tensor (:func:`piece_elements`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence

import torch

__all__ = [
    "MIN_PIECE_ACCELERATOR",
    "MIN_PIECE_CPU",
    "PIECES",
    "DISTRIBUTIONS",
    "DirectionStreams",
    "check_distribution",
    "direction",
    "direction_chunks",
    "expected_cosine",
    "perturb_",
    "piece_elements",
    "projected_gradient",
    "shared_direction_estimate",
    "per_sample_estimate",
    "tensor_list",
]

DISTRIBUTIONS = ("gaussian", "rademacher")


def check_distribution(distribution: str) -> None:
    """A clear error unless ``distribution`` is one of :data:`DISTRIBUTIONS`."""
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {DISTRIBUTIONS}; got {distribution!r}")


def tensor_list(params: Iterable[torch.Tensor]) -> list[torch.Tensor]:
    """``params`` as a non-empty list (a generator such as ``model.parameters()`` can be walked only once)."""
    params = list(params)
    if not params:
        raise ValueError("params must hold at least one tensor")
    return params


class DirectionStreams:
    """The random stream of one direction ``z(seed)``: one generator per device, each seeded with ``seed``.

    Walking the same tensors in the same order from a fresh ``DirectionStreams(seed)`` regenerates the same ``z``
    (the seed trick of Alg. 5); :mod:`effcourse.mezo.optim` uses it to apply and to replay updates.
    """

    def __init__(self, seed: int):
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seed must be a non-negative int; got {seed!r}")
        self.seed = seed
        self._gens: dict[torch.device, torch.Generator] = {}

    def draw(self, like: torch.Tensor, distribution: str) -> torch.Tensor:
        """The next piece of ``z``, shaped, typed and placed like ``like``."""
        dev = like.device
        gen = self._gens.get(dev)
        if gen is None:
            gen = self._gens[dev] = torch.Generator(device=dev).manual_seed(self.seed)
        if distribution == "gaussian":
            return torch.randn(like.shape, generator=gen, device=dev, dtype=like.dtype)
        # Rademacher: classical SPSA's +-1 directions (B.9 item 11); same draw count as the Gaussian.
        z = torch.randint(0, 2, like.shape, generator=gen, device=dev, dtype=like.dtype)
        return z.mul_(2).sub_(1)


PIECES = 16  # a tensor's direction is drawn in at most this many pieces (the temporary: 1/16 of the tensor)
MIN_PIECE_CPU = 1 << 12  # smaller draws cost more in calls than they save in memory
MIN_PIECE_ACCELERATOR = 1 << 22  # on a GPU each draw is a kernel launch: 16 MB in fp32 keeps the launches few
_TAIL = 16  # torch's CPU normal sampler fills blocks of 16: a last piece this short would change the draw


def piece_elements(numel: int, device: torch.device | str = "cpu") -> int:
    """Elements of ``z`` drawn at once for a tensor of ``numel`` elements on ``device``.

    Relative to the tensor: a power of two of at least ``numel / PIECES``, so the temporary is at most
    ~1/16 of the largest parameter (Alg. 5 regenerates one whole tensor: 25 % of a four-layer MLP's weights),
    and never below the device's floor (:data:`MIN_PIECE_CPU`, :data:`MIN_PIECE_ACCELERATOR`).
    """
    if not isinstance(numel, int) or numel < 0:
        raise ValueError(f"numel must be a non-negative int; got {numel!r}")
    floor = MIN_PIECE_CPU if torch.device(device).type == "cpu" else MIN_PIECE_ACCELERATOR
    return max(floor, 1 << max(0, math.ceil(math.log2(max(numel, 1) / PIECES))))


def _pieces(flat: torch.Tensor) -> list[torch.Tensor]:
    n = flat.numel()
    size = piece_elements(n, flat.device)
    if size >= n:
        return [flat]
    bounds = list(range(0, n, size))
    if 0 < n - bounds[-1] < _TAIL:  # fold a short tail into the piece before it
        bounds.pop()
    return [flat[a:b] for a, b in zip(bounds, bounds[1:] + [n])]


def direction_chunks(tensors: Iterable[torch.Tensor], streams: DirectionStreams,
                     distribution: str) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(piece, z_piece)``: flat pieces of each tensor (:func:`piece_elements`) with the matching piece of
    its direction.

    Any caller that walks the same tensors in the same order with the same seed sees the same ``z``.  On a CPU the
    pieces do not change the draw at all: pieces that are multiples of 16 elements, with no tail shorter than 16,
    give bit for bit the values of one whole-tensor draw (``tests/mezo/test_spsa.py`` checks it), so the piece
    size is a memory setting, not part of the experiment.  On a GPU the stream depends on the pieces.
    """
    for t in tensors:
        if t.is_contiguous():
            for piece in _pieces(t.view(-1)):
                yield piece, streams.draw(piece, distribution)
        else:
            yield t, streams.draw(t, distribution)


@torch.no_grad()
def perturb_(params: Iterable[torch.Tensor], seed: int, scale: float, distribution: str = "gaussian") -> None:
    """In place ``theta_i += scale * z_i`` for every tensor, ``z`` regenerated from ``seed`` (Alg. 5).

    Alg. 5 writes ``s * mu`` for ``scale``; with ``s`` in {+1, -2, +1} a caller moves to ``theta + mu z``, then
    to ``theta - mu z``, then back.  At most one piece of ``z`` (:func:`piece_elements`) exists at a time.
    """
    check_distribution(distribution)
    for piece, z in direction_chunks(tensor_list(params), DirectionStreams(seed), distribution):
        piece.add_(z, alpha=float(scale))


@torch.no_grad()
def direction(params: Iterable[torch.Tensor], seed: int, distribution: str = "gaussian") -> list[torch.Tensor]:
    """The direction ``z`` that :func:`perturb_` with ``seed`` uses, materialised (for tests and the naive methods)."""
    check_distribution(distribution)
    out = [torch.zeros_like(p) for p in tensor_list(params)]
    for piece, z in direction_chunks(out, DirectionStreams(seed), distribution):
        piece.copy_(z)
    return out


@torch.no_grad()
def projected_gradient(closure: Callable[[], torch.Tensor], params: Sequence[torch.Tensor], seed: int, mu: float,
                       distribution: str = "gaussian") -> tuple[float, float, float]:
    """The scalar of (3.5): ``(f(theta + mu z) - f(theta - mu z)) / (2 mu)``, by in-place perturbation.

    Returns ``(pg, loss_plus, loss_minus)``.  The parameters are restored with the +1, -2, +1 sequence, which is
    exact up to rounding (a few ulp), as in the thesis's implementation.
    """
    if not mu > 0:
        raise ValueError(f"mu must be > 0; got {mu!r}")
    params = tensor_list(params)
    perturb_(params, seed, mu, distribution)
    lp = float(closure())
    perturb_(params, seed, -2.0 * mu, distribution)
    lm = float(closure())
    perturb_(params, seed, mu, distribution)
    return (lp - lm) / (2.0 * mu), lp, lm


# ------------------------------------------------------------------------------------------ vector estimators
def _directions(k: int, d: int, generator: torch.Generator | None, dtype: torch.dtype, device: torch.device,
                distribution: str) -> torch.Tensor:
    check_distribution(distribution)
    if distribution == "gaussian":
        return torch.randn(k, d, generator=generator, dtype=dtype, device=device)
    return torch.randint(0, 2, (k, d), generator=generator, device=device).to(dtype).mul_(2).sub_(1)


def shared_direction_estimate(losses: Callable[[torch.Tensor], torch.Tensor], theta: torch.Tensor, mu: float,
                              num: int = 1, generator: torch.Generator | None = None,
                              distribution: str = "gaussian") -> torch.Tensor:
    """``num`` independent draws of the shared-direction estimator (3.5) of ``mean_i f_i`` at ``theta``.

    ``losses(P)`` maps ``P`` (``m x d`` parameter vectors) to ``m x n`` per-sample losses; one ``z`` perturbs every
    sample.  Returns ``num x d`` estimates (batched: one call of ``losses`` on ``2 num`` points).
    """
    if theta.dim() != 1:
        raise ValueError(f"theta must be a vector; got shape {tuple(theta.shape)}")
    z = _directions(num, theta.numel(), generator, theta.dtype, theta.device, distribution)
    pts = torch.cat([theta + mu * z, theta - mu * z])
    f = losses(pts).mean(dim=1)
    pg = (f[:num] - f[num:]) / (2 * mu)
    return pg[:, None] * z


def per_sample_estimate(losses: Callable[[torch.Tensor], torch.Tensor], theta: torch.Tensor, mu: float,
                        num: int = 1, generator: torch.Generator | None = None,
                        distribution: str = "gaussian") -> torch.Tensor:
    """``num`` draws of the per-sample estimator (3.3)-(3.4): sample ``i`` gets its own direction ``z_i``.

    Costs ``n`` random vectors per draw (the memory/speed trade-off of Sec. 3.3).  Returns ``num x d``.
    """
    if theta.dim() != 1:
        raise ValueError(f"theta must be a vector; got shape {tuple(theta.shape)}")
    d = theta.numel()
    n = losses(theta[None]).shape[1]
    z = _directions(num * n, d, generator, theta.dtype, theta.device, distribution).view(num, n, d)
    pts = torch.cat([theta + mu * z, theta - mu * z]).view(2 * num * n, d)
    f = losses(pts).view(2, num, n, n)
    own = torch.diagonal(f, dim1=2, dim2=3)  # f_i evaluated at theta +- mu z_i
    pg = (own[0] - own[1]) / (2 * mu)  # num x n
    return torch.einsum("kn,knd->kd", pg, z) / n


def expected_cosine(d: int, q: int = 1) -> float:
    """The typical cosine between the gradient and the average of ``q`` Gaussian SPSA directions in ``d`` dims.

    For ``g_hat = (1/q) sum_j (z_j^T g) z_j``, ``E[g_hat^T g] = |g|^2`` and ``E|g_hat|^2 = (1 + (d+1)/q) |g|^2``,
    so the root-mean-square cosine is about ``sqrt(q / (q + d + 1))``, i.e. ``sqrt(q / (q + d))`` for large ``d``
    (for ``q = 1`` the mean of ``|cos|`` is ``sqrt(2/pi)`` times it).
    """
    if d < 1 or q < 1:
        raise ValueError(f"d and q must be >= 1; got d={d}, q={q}")
    return math.sqrt(q / (q + d + 1))

"""Data that works offline: bundled digits, generated MNIST-1D and synthetic tasks, and real-format loaders.

Nothing here downloads.  The thesis-scale data sets (MNIST / Fashion-MNIST in IDX format, CIFAR-10 as the
python pickle batches) are read from a local folder; :func:`data_root` says where to put them.
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "DATASETS",
    "DATA_ENV",
    "Split",
    "augmentation",
    "cifar10",
    "dataset",
    "data_root",
    "digits",
    "holdout",
    "idx_dataset",
    "mnist1d",
    "random_crop_flip",
    "read_cifar_batch",
    "read_idx",
    "standardize",
]

DATA_ENV = "EFFCOURSE_DATA"


@dataclass(frozen=True)
class Split:
    """Tensors of one data set, already on a device: ``x_train, y_train, x_test, y_test``."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int

    def to(self, device: str | torch.device) -> Split:
        return Split(self.x_train.to(device), self.y_train.to(device), self.x_test.to(device),
                     self.y_test.to(device), self.num_classes)

    @property
    def num_features(self) -> int:
        return int(self.x_train[0].numel())

    def __repr__(self) -> str:
        return (f"Split(train={tuple(self.x_train.shape)}, test={tuple(self.x_test.shape)}, "
                f"classes={self.num_classes}, device={self.x_train.device})")


def holdout(split: Split, fraction: float, seed: int = 0) -> Split:
    """A validation split carved from ``split``'s training part: the returned ``x_test`` is the held-out part.

    Use it to tune hyperparameters without touching the test set.
    """
    _check_fraction("fraction", fraction)
    n = split.x_train.shape[0]
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).to(split.x_train.device)
    k = int(round(n * fraction))
    val, tr = perm[:k], perm[k:]
    return Split(split.x_train[tr], split.y_train[tr], split.x_train[val], split.y_train[val], split.num_classes)


def _check_fraction(name: str, value: float) -> None:
    if not (0.0 < value < 1.0):
        raise ValueError(f"{name} must be in (0, 1); got {value!r}")


def standardize(x_train: np.ndarray, x_test: np.ndarray, drop_constant: bool = True):
    """Standardize with training statistics.

    Columns that are constant on the training split are dropped when ``drop_constant``: their weights get exactly
    zero gradient, and a test image that is non-zero there would be sent to ~1e4 by ``x / (std + tiny)``.
    Returns ``(x_train, x_test, kept_columns)``.
    """
    std = x_train.std(axis=0)
    keep = std > 0 if drop_constant else np.ones(x_train.shape[1], dtype=bool)
    mean = x_train[:, keep].mean(axis=0)
    scale = np.where(std[keep] > 0, std[keep], 1.0)
    return (x_train[:, keep] - mean) / scale, (x_test[:, keep] - mean) / scale, np.flatnonzero(keep)


def digits(test_fraction: float = 0.3, split_seed: int = 0, flat: bool = True, normalize: str = "standard",
           drop_constant: bool = True, device: str | torch.device = "cpu",
           dtype: torch.dtype = torch.float32) -> Split:
    """scikit-learn's bundled 8x8 digits (1,797 images, 10 classes) with a fixed stratified split.

    ``flat=True`` gives ``N x F`` rows (``normalize="standard"``: per-column standardization, train-constant columns
    dropped unless ``drop_constant=False``); ``flat=False`` gives ``N x 1 x 8 x 8`` images scaled to [0, 1]
    (``normalize="unit"``) or standardized with one global mean and std (``"standard"``).
    The split depends only on ``split_seed``, never on the run's seed, so every chapter sees the same test set.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    _check_fraction("test_fraction", test_fraction)
    if normalize not in ("standard", "unit"):
        raise ValueError(f"normalize must be 'standard' or 'unit'; got {normalize!r}")
    x, y = load_digits(return_X_y=True)
    x = x.astype(np.float64) / 16.0
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=test_fraction, random_state=split_seed, stratify=y)
    if flat:
        if normalize == "standard":
            xtr, xte, _ = standardize(xtr, xte, drop_constant=drop_constant)
    else:
        if normalize == "standard":
            mu, sd = xtr.mean(), xtr.std()
            xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
        xtr, xte = xtr.reshape(-1, 1, 8, 8), xte.reshape(-1, 1, 8, 8)

    def t(a, dt):
        return torch.as_tensor(np.ascontiguousarray(a), dtype=dt, device=device)

    return Split(t(xtr, dtype), t(ytr, torch.long), t(xte, dtype), t(yte, torch.long), 10)


def mnist1d(num_samples: int = 5000, test_fraction: float = 0.2, seed: int = 0,
            device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> Split:
    """MNIST-1D generated from the ``mnist1d`` package's built-in templates (40 features, 10 classes; no download)."""
    from mnist1d.data import get_dataset_args, make_dataset

    if not isinstance(num_samples, int) or num_samples < 20:
        raise ValueError(f"num_samples must be an int >= 20; got {num_samples!r}")
    _check_fraction("test_fraction", test_fraction)
    args = get_dataset_args()
    args.num_samples = num_samples
    args.train_split = 1.0 - test_fraction
    args.seed = seed
    d = make_dataset(args)
    xtr, xte, _ = standardize(np.asarray(d["x"], np.float64), np.asarray(d["x_test"], np.float64))

    def t(a, dt):
        return torch.as_tensor(np.ascontiguousarray(a), dtype=dt, device=device)

    return Split(t(xtr, dtype), t(np.asarray(d["y"]), torch.long), t(xte, dtype),
                 t(np.asarray(d["y_test"]), torch.long), 10)


# ---------------------------------------------------------------------------------------------- local data sets
def data_root(name: str, root: str | os.PathLike | None = None) -> Path:
    """The folder that holds data set ``name``: ``root`` if given, else ``$EFFCOURSE_DATA/<name>``."""
    if root is None:
        base = os.environ.get(DATA_ENV)
        if not base:
            raise FileNotFoundError(
                f"no local copy of {name!r}: pass root=... or set {DATA_ENV} to a folder that holds '{name}/' "
                f"(effcourse never downloads; fetch the files yourself, see the chapter's 'full scale' section)")
        root = Path(base) / name
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data folder for {name!r} not found: {root}")
    return root


_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (the MNIST format; ``.gz`` allowed): magic ``0x0000 TT NN``, ``NN`` big-endian sizes.

    An empty, truncated or foreign file raises ``ValueError`` naming the file and what is wrong with it.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (EOFError, OSError, zlib.error) as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise ValueError(f"{path}: unreadable gzip data ({err}); the file is truncated or not gzip") from err
    if not raw:
        raise ValueError(f"{path} is empty (expected an IDX file)")
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()})")
    ndim = raw[3]
    if ndim == 0 or len(raw) < 4 + 4 * ndim:
        raise ValueError(f"{path}: IDX header truncated or invalid ({ndim} dimensions, {len(raw)} bytes)")
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    dt = np.dtype(_IDX_DTYPES[raw[2]])
    body = len(raw) - 4 - 4 * ndim
    expected = int(np.prod(shape)) * dt.itemsize
    if body != expected:
        raise ValueError(f"{path}: header says {shape} ({expected} bytes of data), file holds {body} bytes"
                         + (" (truncated)" if body < expected else ""))
    return np.frombuffer(raw, dtype=dt, offset=4 + 4 * ndim).reshape(shape)


def _find(root: Path, stem: str) -> Path:
    for cand in (root / stem, root / f"{stem}.gz"):
        if cand.exists():
            return cand
    raise FileNotFoundError(f"{root} has neither {stem} nor {stem}.gz")


def _idx_pair(root: Path, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N x H x W, uint8) and labels (N, in 0..9) of one IDX split, checked against each other."""
    ip, lp = _find(root, f"{prefix}-images-idx3-ubyte"), _find(root, f"{prefix}-labels-idx1-ubyte")
    x, y = read_idx(ip), read_idx(lp)
    if x.ndim != 3 or x.dtype != np.uint8:
        raise ValueError(f"{ip}: expected uint8 images N x H x W; got {x.dtype} {x.shape}")
    if y.ndim != 1 or y.dtype != np.uint8:
        raise ValueError(f"{lp}: expected uint8 labels of shape (N,); got {y.dtype} {y.shape}")
    if len(x) != len(y):
        raise ValueError(f"{ip} holds {len(x)} images but {lp} holds {len(y)} labels")
    if y.size and int(y.max()) > 9:
        raise ValueError(f"{lp}: labels must be 0..9; found {int(y.max())}")
    return x, y


def idx_dataset(name: str = "mnist", root: str | os.PathLike | None = None, flat: bool = False,
                device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> Split:
    """MNIST or Fashion-MNIST from the four standard IDX files in a local folder, pixels scaled to [0, 1].

    Expects ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and
    ``t10k-labels-idx1-ubyte`` (each optionally ``.gz``) in ``root`` or ``$EFFCOURSE_DATA/<name>``.
    """
    if name not in ("mnist", "fashion-mnist"):
        raise ValueError(f"name must be 'mnist' or 'fashion-mnist'; got {name!r}")
    r = data_root(name, root)
    xtr, ytr = _idx_pair(r, "train")
    xte, yte = _idx_pair(r, "t10k")

    def imgs(a):
        a = torch.as_tensor(a.astype(np.float32) / 255.0, dtype=dtype, device=device)
        return a.reshape(a.shape[0], -1) if flat else a.unsqueeze(1)

    def labels(a):
        return torch.as_tensor(a.astype(np.int64), device=device)

    return Split(imgs(xtr), labels(ytr), imgs(xte), labels(yte), 10)


CIFAR10_MEAN = (125.3 / 255, 123.0 / 255, 113.9 / 255)
CIFAR10_STD = (63.0 / 255, 62.1 / 255, 66.7 / 255)


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles plain containers and NumPy arrays only: a pickle names callables that it runs on loading, and a
    file that claims to be a CIFAR-10 batch must not get to run anything else."""

    # (module, name) pairs a CIFAR-10 batch needs: NumPy's array and scalar reconstruction, under NumPy 1 and 2 names
    # (and _codecs.encode, with which protocol-2 pickles written by Python 3 spell bytes)
    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")} | {
        (f"numpy.{core}.{mod}", name) for core in ("core", "_core")
        for mod, name in (("multiarray", "_reconstruct"), ("multiarray", "scalar"), ("numeric", "_frombuffer"))}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a CIFAR-10 batch holds only lists, "
                                         "bytes and NumPy arrays")
        if module.startswith("numpy.core."):  # NumPy 2 keeps these under numpy._core (numpy.core warns)
            try:
                return super().find_class("numpy._core." + module[len("numpy.core."):], name)
            except (ImportError, AttributeError):
                pass
        return super().find_class(module, name)


def read_cifar_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch as ``(images N x 3 x 32 x 32 uint8, labels N int64)``, loaded safely.

    Only NumPy arrays and plain containers are unpickled (a pickle can otherwise run code); an empty, truncated or
    malformed file raises ``ValueError`` naming the file and the problem.
    """
    p = Path(path)
    if p.stat().st_size == 0:
        raise ValueError(f"{p} is empty (expected a CIFAR-10 python batch)")
    try:
        with open(p, "rb") as f:
            d = _CifarUnpickler(f, encoding="bytes").load()
    except pickle.UnpicklingError as err:
        raise ValueError(f"{p}: not a CIFAR-10 batch: {err}") from err
    except (EOFError, ValueError, TypeError, AttributeError, IndexError) as err:
        raise ValueError(f"{p}: truncated or corrupt pickle ({type(err).__name__}: {err})") from err
    if not isinstance(d, dict):
        raise ValueError(f"{p}: a CIFAR-10 batch is a dict with 'data' and 'labels'; got {type(d).__name__}")
    data = d.get(b"data", d.get("data"))
    labels = d.get(b"labels", d.get("labels"))
    if data is None or labels is None:
        raise ValueError(f"{p} is not a CIFAR-10 batch (no 'data'/'labels' keys)")
    data, labels = np.asarray(data), np.asarray(labels)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{p}: 'data' must be uint8 of shape (N, 3072); got {data.dtype} {data.shape}")
    if labels.shape != (data.shape[0],):
        raise ValueError(f"{p}: {data.shape[0]} images but labels of shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{p}: labels must be 0..9; found {labels.min()}..{labels.max()}")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def cifar10(root: str | os.PathLike | None = None, normalize: bool = True, device: str | torch.device = "cpu",
            dtype: torch.dtype = torch.float32) -> Split:
    """CIFAR-10 from the python pickle batches (``data_batch_1..5``, ``test_batch``) in a local folder.

    The folder is ``root``, or ``$EFFCOURSE_DATA/cifar10``; the ``cifar-10-batches-py`` folder of the official
    archive is accepted too.  Images come back as ``N x 3 x 32 x 32`` floats, normalized with the usual CIFAR-10
    channel statistics when ``normalize``.
    """
    r = data_root("cifar10", root)
    if (r / "cifar-10-batches-py").is_dir():
        r = r / "cifar-10-batches-py"

    def load(fname: str):
        p = r / fname
        if not p.exists():
            raise FileNotFoundError(f"{r} lacks {fname} (expected data_batch_1..5 and test_batch)")
        return read_cifar_batch(p)

    parts = [load(f"data_batch_{i}") for i in range(1, 6)]
    xtr, ytr = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    xte, yte = load("test_batch")

    def imgs(a):
        x = torch.as_tensor(a, device=device).to(dtype) / 255.0
        if normalize:
            mean = torch.tensor(CIFAR10_MEAN, dtype=dtype, device=device).view(1, 3, 1, 1)
            std = torch.tensor(CIFAR10_STD, dtype=dtype, device=device).view(1, 3, 1, 1)
            x = (x - mean) / std
        return x

    return Split(imgs(xtr), torch.as_tensor(ytr, device=device), imgs(xte), torch.as_tensor(yte, device=device), 10)


# ---------------------------------------------------------------------------------------------- one factory
DATASETS = ("digits", "mnist1d", "mnist", "fashion-mnist", "cifar10")


def dataset(name: str, *, flat: bool = False, normalize: str = "standard", device: str | torch.device = "cpu",
            dtype: torch.dtype = torch.float32) -> Split:
    """The data set a chapter's configuration names (``cfg.dataset``), whatever the scale.

    ``flat`` gives ``N x F`` rows (``normalize="standard"``: per-column standardization, train-constant columns
    dropped), else images ``N x C x H x W`` (``"standard"``: standardized, ``"unit"``: pixels in [0, 1]).  The
    bundled ``digits`` and generated ``mnist1d`` work offline; ``mnist``, ``fashion-mnist`` and ``cifar10`` read
    ``$EFFCOURSE_DATA`` (:func:`data_root`).
    """
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}; got {name!r}")
    if normalize not in ("standard", "unit"):
        raise ValueError(f"normalize must be 'standard' or 'unit'; got {normalize!r}")
    if name == "digits":
        return digits(flat=flat, normalize=normalize, device=device, dtype=dtype)
    if name == "mnist1d":
        if not flat:
            raise ValueError("dataset 'mnist1d' is one-dimensional: it needs flat=True")
        return mnist1d(device=device, dtype=dtype)
    if name == "cifar10":
        if flat:
            raise ValueError("dataset 'cifar10' comes as images: it needs flat=False")
        return cifar10(normalize=normalize == "standard", device=device, dtype=dtype)
    raw = idx_dataset(name, flat=flat, dtype=torch.float64 if flat else dtype)
    if not flat:
        if normalize == "standard":
            mu, sd = raw.x_train.mean(), raw.x_train.std()
            raw = Split((raw.x_train - mu) / sd, raw.y_train, (raw.x_test - mu) / sd, raw.y_test, raw.num_classes)
        return Split(raw.x_train.to(device, dtype), raw.y_train.to(device), raw.x_test.to(device, dtype),
                     raw.y_test.to(device), raw.num_classes)
    xtr, xte = raw.x_train.numpy(), raw.x_test.numpy()
    if normalize == "standard":
        xtr, xte, _ = standardize(xtr, xte)

    def t(a):
        return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)

    return Split(t(xtr), raw.y_train.to(device), t(xte), raw.y_test.to(device), raw.num_classes)


def augmentation(name: str):
    """The training augmentation of data set ``name``: CIFAR-10's crops and flips, none for the others."""
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}; got {name!r}")
    return random_crop_flip if name == "cifar10" else None


def random_crop_flip(x: torch.Tensor, pad: int = 4, generator: torch.Generator | None = None) -> torch.Tensor:
    """The CIFAR augmentation (random crop after zero padding, random horizontal flip), batched on ``x``'s device."""
    n, _, h, w = x.shape
    xp = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    rows = (dy.view(n, 1) + torch.arange(h, device=x.device).view(1, h))  # n x h
    cols = (dx.view(n, 1) + torch.arange(w, device=x.device).view(1, w))  # n x w
    flip = torch.rand(n, generator=generator).to(x.device) < 0.5
    cols = torch.where(flip.view(n, 1), cols.flip(1), cols)
    b = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    c = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
    return xp[b, c, rows.view(n, 1, h, 1), cols.view(n, 1, 1, w)]

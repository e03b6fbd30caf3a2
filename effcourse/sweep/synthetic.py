"""Small files in the real formats of the theses' data, for ``sweep run --dry-run`` and the tests.

Each data set lives where a real copy would, under ``$EFFCOURSE_DATA`` (:data:`LAYOUT`): CIFAR-10's python batches,
MNIST's and Fashion-MNIST's IDX files, GLUE SST-2's ``.tsv`` files and Hugging Face model folders saved from tiny
configurations.  The contents are random (labels too): a dry run exercises loaders, models, checkpoints and result
collection, not accuracy.  :func:`check` reads a folder the way the runs will and names a missing or truncated file.
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy as np

__all__ = ["KINDS", "LAYOUT", "check", "write"]

# data set -> its folder under $EFFCOURSE_DATA
LAYOUT = {
    "cifar10": "cifar10",
    "mnist": "mnist",
    "fashion-mnist": "fashion-mnist",
    "glue-sst2": "glue/SST-2",
    "hf-distilbert": "models/distilbert-base-cased",
    "hf-roberta": "models/roberta-large",
}
KINDS = tuple(LAYOUT)


def _check_kind(name: str) -> None:
    if name not in LAYOUT:
        raise ValueError(f"data set must be one of {KINDS}; got {name!r}")


def _idx(path: Path, a: np.ndarray) -> None:
    head = struct.pack(">HBB", 0, 0x08, a.ndim) + struct.pack(f">{a.ndim}I", *a.shape)
    with gzip.open(path, "wb") if path.suffix == ".gz" else open(path, "wb") as f:
        f.write(head + a.astype(np.uint8).tobytes())


def _cifar(folder: Path, n: int, rng: np.random.Generator) -> None:
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        d = {b"batch_label": name.encode(), b"labels": rng.integers(0, 10, n).tolist(),
             b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
             b"filenames": [f"{name}_{i}.png".encode() for i in range(n)]}
        with open(folder / name, "wb") as f:
            pickle.dump(d, f, protocol=2)


def _sst2(folder: Path, n: int, rng: np.random.Generator) -> None:
    words = "good bad great awful fine dull lovely boring superb weak film plot cast story".split()
    for fname in ("train.tsv", "dev.tsv"):
        rows = ["sentence\tlabel"] + [" ".join(rng.choice(words, 6)) + f"\t{int(rng.integers(0, 2))}"
                                      for _ in range(n)]
        (folder / fname).write_text("\n".join(rows) + "\n", encoding="utf-8")


def _hf(folder: Path, arch: str, seed: int) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    import transformers
    from transformers import BertTokenizer

    transformers.logging.set_verbosity_error()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [chr(c) for c in range(ord("a"), ord("z") + 1)] + \
        "good bad great awful fine dull lovely boring superb weak film plot cast story it was".split()
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = BertTokenizer(str(folder / "vocab.txt"))
    small = dict(vocab_size=len(vocab), hidden_size=32, num_attention_heads=2, max_position_embeddings=130)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if arch == "distilbert":
            cfg = transformers.DistilBertConfig(dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                                                vocab_size=len(vocab), max_position_embeddings=130)
            model = transformers.DistilBertForMaskedLM(cfg)
        else:
            cfg = transformers.RobertaConfig(num_hidden_layers=2, intermediate_size=64, pad_token_id=0,
                                             bos_token_id=2, eos_token_id=3, **small)
            model = transformers.RobertaForMaskedLM(cfg)
    model.save_pretrained(str(folder))
    tok.save_pretrained(str(folder))


def write(root: str | os.PathLike, names: list[str] | tuple[str, ...], n: int = 32, seed: int = 0) -> Path:
    """Write synthetic copies of the data sets ``names`` under ``root`` (laid out as :data:`LAYOUT`), ``n``
    examples per file; returns ``root`` (point ``$EFFCOURSE_DATA`` at it)."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int; got {n!r}")
    root = Path(root)
    rng = np.random.default_rng(seed)
    for name in names:
        _check_kind(name)
        folder = root / LAYOUT[name]
        folder.mkdir(parents=True, exist_ok=True)
        if name == "cifar10":
            _cifar(folder, n, rng)
        elif name in ("mnist", "fashion-mnist"):
            for split, m in (("train", n), ("t10k", max(n // 2, 1))):
                _idx(folder / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (m, 28, 28)))
                _idx(folder / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, m))
        elif name == "glue-sst2":
            _sst2(folder, n, rng)
        else:
            _hf(folder, name[3:], seed)
    return root


def check(name: str, root: str | os.PathLike | None = None) -> Path:
    """Read data set ``name`` under ``root`` (default ``$EFFCOURSE_DATA``) as the runs will, and return its folder;
    a missing folder or file, or a truncated or malformed one, raises ``FileNotFoundError``/``ValueError`` naming it."""
    _check_kind(name)
    from ..core.data import DATA_ENV, cifar10, idx_dataset

    base = root if root is not None else os.environ.get(DATA_ENV)
    if not base:
        raise FileNotFoundError(f"data set {name!r} is read from ${DATA_ENV}/{LAYOUT[name]}, and {DATA_ENV} is not "
                                f"set (pass --data DIR)")
    folder = Path(base) / LAYOUT[name]
    if not folder.is_dir():
        raise FileNotFoundError(f"data set {name!r}: folder {folder} not found")
    if name == "cifar10":
        cifar10(folder, normalize=False)
    elif name in ("mnist", "fashion-mnist"):
        idx_dataset(name, folder)
    elif name == "glue-sst2":
        from ..mezo.text import tsv_task

        for fname in ("train.tsv", "dev.tsv"):
            if not (folder / fname).exists():
                raise FileNotFoundError(f"data set {name!r}: {folder} lacks {fname}")
        tsv_task(str(folder / "train.tsv"), str(folder / "dev.tsv"), n_train=1, n_test=1)
    else:
        has_weights = any((folder / f).exists() for f in ("model.safetensors", "pytorch_model.bin"))
        if not (folder / "config.json").exists() or not has_weights:
            raise FileNotFoundError(f"data set {name!r}: {folder} must hold a Hugging Face model "
                                    "(config.json and model.safetensors or pytorch_model.bin)")
    return folder

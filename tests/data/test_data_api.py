"""The public surface of advforge.data: names, load, describe, the search path, ImageSet and
DatasetSplits."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from advforge import data
from advforge.data.splits import channel_stats, stratified_split
from advforge.errors import DatasetNotFoundError, InputError, UnknownNameError

ALL = [
    "cifar10",
    "cifar100",
    "fashion-mnist",
    "imagefolder",
    "mnist",
    "mnist5k",
    "svhn",
    "synthetic",
]


def test_names_and_registry():
    assert data.names() == ALL
    assert data.DATASETS.names() == ALL
    s = data.DATASETS.create("synthetic", n_train=10, n_test=2)
    assert isinstance(s, data.DatasetSplits) and len(s.train) == 10


def test_unknown_name_and_options():
    with pytest.raises(UnknownNameError, match=r"unknown dataset 'imagenet'; known: cifar10"):
        data.load("imagenet")
    with pytest.raises(InputError, match=r"'synthetic' does not take option\(s\) colour; options:"):
        data.load("synthetic", colour=True)
    assert data.load("Synthetic", n_train=10, n_test=2).name == "synthetic"


def test_alias_underscore(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="'fashion-mnist'"):
        data.load("fashion_mnist", tmp_path)


def test_describe_rows(tmp_path, monkeypatch):
    monkeypatch.setenv(data.ENV_VAR, f"{tmp_path / 'r1'}{os.pathsep}{tmp_path / 'r2'}")
    rows = {r["name"]: r for r in data.describe()}
    assert sorted(rows) == ALL
    for row in rows.values():
        assert set(row) == {"name", "description", "found", "location", "searched", "obtain"}
        assert row["description"]
    assert rows["synthetic"]["found"] is True and rows["synthetic"]["location"] == "generated"
    assert rows["cifar10"]["found"] is False
    assert rows["cifar10"]["searched"][:2] == [
        str(tmp_path / "r1" / "cifar10"),
        str(tmp_path / "r1" / "cifar10" / "cifar-10-batches-py"),
    ]
    assert str(tmp_path / "r2" / "cifar10") in rows["cifar10"]["searched"]
    assert "/usr/share/datasets/fashion-mnist" in rows["fashion-mnist"]["searched"]
    # Files placed under the second root are found there.
    (tmp_path / "r2" / "svhn").mkdir(parents=True)
    for f in ("train_32x32.mat", "test_32x32.mat"):
        (tmp_path / "r2" / "svhn" / f).write_bytes(b"")
    svhn = next(r for r in data.describe() if r["name"] == "svhn")
    assert svhn["found"] is True and svhn["location"] == str(tmp_path / "r2" / "svhn")


def test_not_found_without_any_directory(monkeypatch):
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    with pytest.raises(DatasetNotFoundError) as err:
        data.load("cifar100")
    msg = str(err.value)
    assert "'cifar100'" in msg and data.ENV_VAR in msg and "--data-dir" in msg
    assert "kriz/cifar.html" in msg and "\n" not in msg
    assert isinstance(err.value, FileNotFoundError)  # callers may catch the builtin too


# ---- ImageSet ------------------------------------------------------------------------------


def _set(n: int = 10) -> data.ImageSet:
    x = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, 2, 2) / n
    return data.ImageSet(x.contiguous(), torch.arange(n) % 3)


def test_imageset_validates():
    with pytest.raises(InputError, match="float32"):
        data.ImageSet(
            torch.zeros(2, 1, 2, 2, dtype=torch.float64), torch.zeros(2, dtype=torch.long)
        )
    with pytest.raises(InputError, match="int64"):
        data.ImageSet(torch.zeros(2, 1, 2, 2), torch.zeros(2, dtype=torch.int32))
    with pytest.raises(InputError, match="3 images but 2 labels"):
        data.ImageSet(torch.zeros(3, 1, 2, 2), torch.zeros(2, dtype=torch.long))


def test_subset_indices_mask_and_errors():
    s = _set()
    sub = s.subset([7, 2, 2])
    assert len(sub) == 3 and sub.y.tolist() == [1, 2, 2]
    assert sub.x[0, 0, 0, 0].item() == pytest.approx(0.7)
    assert s.subset(range(4)).y.tolist() == [0, 1, 2, 0]
    assert s.subset(np.array([9])).y.tolist() == [0]
    assert len(s.subset([])) == 0
    mask = s.y == 1
    assert s.subset(mask).y.tolist() == [1, 1, 1]
    sub.x.zero_()
    assert s.x[7].sum().item() > 0  # subset copies
    with pytest.raises(InputError, match="out of range"):
        s.subset([10])
    with pytest.raises(InputError, match="integers"):
        s.subset([0.5])
    with pytest.raises(InputError, match="mask"):
        s.subset(torch.ones(3, dtype=torch.bool))


def test_batches_cover_everything_in_order_or_shuffled():
    s = _set(10)
    batches = list(s.batches(4))
    assert [len(y) for _, y in batches] == [4, 4, 2]
    assert torch.equal(torch.cat([x for x, _ in batches]), s.x)
    assert [len(y) for _, y in s.batches(4, drop_last=True)] == [4, 4]

    def order(seed):
        g = torch.Generator().manual_seed(seed)
        return torch.cat([x[:, 0, 0, 0] for x, _ in s.batches(3, shuffle=True, generator=g)])

    assert torch.equal(order(0), order(0)) and not torch.equal(order(0), order(1))
    assert sorted(order(0).tolist()) == sorted(s.x[:, 0, 0, 0].tolist())  # a permutation
    for x, y in s.batches(3, shuffle=True, generator=torch.Generator().manual_seed(0)):
        assert torch.equal(y, (x[:, 0, 0, 0] * 10).round().long() % 3)  # pairs stay aligned
    for bad in (0, -1, 2.0, True):
        with pytest.raises(InputError, match="batch_size"):
            next(s.batches(bad))


# ---- DatasetSplits and helpers ------------------------------------------------------------


def test_splits_validate_consistency():
    s = _set(6)
    kw = dict(num_classes=3, class_names=["a", "b", "c"], default_eps=0.3, in_channels=1,
              image_size=(2, 2), mean=(0.5,), std=(0.3,))  # fmt: skip
    ok = data.DatasetSplits("toy", s, s, **kw)
    assert ok.to_dict()["n_train"] == 6 and ok.to_dict()["image_size"] == [2, 2]
    with pytest.raises(InputError, match="outside"):
        data.DatasetSplits("toy", s, s, **{**kw, "num_classes": 2, "class_names": ["a", "b"]})
    with pytest.raises(InputError, match="class names"):
        data.DatasetSplits("toy", s, s, **{**kw, "class_names": ["a"]})
    with pytest.raises(InputError, match="shape"):
        data.DatasetSplits(
            "toy", s, s, **{**kw, "in_channels": 3, "mean": (0,) * 3, "std": (1,) * 3}
        )


def test_channel_stats_matches_torch_and_guards_constant_channels():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(37, 3, 5, 4, generator=g)
    x[:, 2] = 0.25  # a constant channel
    mean, std = channel_stats(x, chunk=8)
    assert mean == pytest.approx(x.mean(dim=(0, 2, 3)).tolist(), abs=1e-6)
    assert std[:2] == pytest.approx(x[:, :2].std(dim=(0, 2, 3), unbiased=False).tolist(), abs=1e-6)
    assert std[2] == 1.0  # never zero: ImageClassifier divides by it


def test_stratified_split_properties():
    labels = np.repeat(np.arange(4), [10, 3, 7, 1])
    train, test = stratified_split(labels, 0.2, seed=5)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(21))
    assert np.bincount(labels[test], minlength=4).tolist() == [2, 1, 1, 0]
    again = stratified_split(labels, 0.2, seed=5)
    assert np.array_equal(train, again[0]) and np.array_equal(test, again[1])
    with pytest.raises(InputError, match="test_fraction"):
        stratified_split(labels, 1.0, seed=0)


def test_data_dir_that_is_a_file_is_reported(tmp_path):
    (tmp_path / "f.csv").write_text("x")
    with pytest.raises(DatasetNotFoundError, match=r"f.csv \(not a directory\)"):
        data.load("mnist5k", tmp_path / "f.csv")

"""SVHN .mat files written with scipy in the official layout (X: H, W, 3, N; y: N x 1 with
10 meaning the digit 0) read back exactly."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io
import torch

from advforge import data
from advforge.errors import DatasetNotFoundError


def write_mat(path, labels: list[int], seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).integers(0, 256, (32, 32, 3, len(labels)), dtype=np.uint8)
    scipy.io.savemat(path, {"X": x, "y": np.asarray(labels, dtype=np.uint8).reshape(-1, 1)})
    return x


def test_svhn_round_trip_maps_10_to_0(tmp_path):
    x_train = write_mat(tmp_path / "train_32x32.mat", [1, 10, 5, 10], seed=0)
    x_test = write_mat(tmp_path / "test_32x32.mat", [3, 10], seed=1)
    splits = data.load("svhn", tmp_path)
    assert splits.train.y.tolist() == [1, 0, 5, 0] and splits.test.y.tolist() == [3, 0]
    assert splits.train.x.shape == (4, 3, 32, 32) and splits.train.x.dtype == torch.float32
    # x[n, c, h, w] = X[h, w, c, n] / 255 exactly.
    expected = torch.from_numpy(x_train.transpose(3, 2, 0, 1).astype(np.float32)).div(255)
    assert torch.equal(splits.train.x, expected)
    assert splits.test.x[1, 2, 7, 30].item() == x_test[7, 30, 2, 1] / np.float32(255)
    assert splits.class_names == [str(d) for d in range(10)]
    assert splits.default_eps == pytest.approx(8 / 255)


def test_svhn_extra_is_appended_to_train(tmp_path):
    write_mat(tmp_path / "train_32x32.mat", [1, 2], seed=0)
    write_mat(tmp_path / "test_32x32.mat", [3], seed=1)
    with pytest.raises(DatasetNotFoundError, match="extra_32x32.mat"):
        data.load("svhn", tmp_path, extra=True)
    write_mat(tmp_path / "extra_32x32.mat", [4, 10, 6], seed=2)
    splits = data.load("svhn", tmp_path, extra=True)
    assert splits.train.y.tolist() == [1, 2, 4, 0, 6]


def test_svhn_corrupt_or_wrong_content_names_the_file(tmp_path):
    write_mat(tmp_path / "train_32x32.mat", [1, 2], seed=0)
    (tmp_path / "test_32x32.mat").write_bytes(b"MATLAB 5.0 MAT-file, garbage")
    with pytest.raises(data.DatasetFormatError, match="test_32x32.mat: cannot read") as err:
        data.load("svhn", tmp_path)
    assert "\n" not in str(err.value)
    scipy.io.savemat(tmp_path / "test_32x32.mat", {"X": np.zeros((32, 32, 1, 2), np.uint8)})
    with pytest.raises(data.DatasetFormatError, match="test_32x32.mat: 'X' must be"):
        data.load("svhn", tmp_path)


def test_missing_svhn_lists_what_it_needs(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        data.load("svhn", tmp_path / "absent")
    msg = str(err.value)
    assert "'svhn'" in msg and f"{tmp_path / 'absent'} (missing)" in msg
    assert "train_32x32.mat" in msg and "ufldl.stanford.edu" in msg

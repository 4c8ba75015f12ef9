"""SVHN (Street View House Numbers), "format 2" cropped digits (http://ufldl.stanford.edu/housenumbers/).

Files: ``train_32x32.mat``, ``test_32x32.mat`` and optionally ``extra_32x32.mat``, MATLAB files
read with ``scipy.io.loadmat`` (no pickle). Each holds ``X`` uint8 (32, 32, 3, N) and ``y``
(N, 1) with labels 1-10, where **10 means the digit 0**; labels are mapped to 0-9.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import scipy.io

from advforge.data.catalog import DatasetFormatError, DatasetInfo, find_dir, register_dataset
from advforge.data.splits import DatasetSplits, ImageSet, labels_to_tensor, uint8_to_images
from advforge.errors import DatasetNotFoundError

logger = logging.getLogger(__name__)

SVHN = DatasetInfo(
    name="svhn",
    description="SVHN cropped digits: 73,257 / 26,032 32x32 colour images, 10 classes (.mat)",
    obtain="download train_32x32.mat and test_32x32.mat from "
    "http://ufldl.stanford.edu/housenumbers/ into a directory",
    needs="train_32x32.mat, test_32x32.mat",
    is_complete=lambda d: (d / "train_32x32.mat").is_file() and (d / "test_32x32.mat").is_file(),
)


def read_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One SVHN .mat file -> (images uint8 (N, 3, 32, 32), labels int64 (N,) in 0-9)."""
    try:
        mat = scipy.io.loadmat(path)
    except Exception as err:  # scipy raises many types (ValueError, MatReadError, zlib...)
        raise DatasetFormatError(f"{path}: cannot read MATLAB file ({err})") from None
    x, y = mat.get("X"), mat.get("y")
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 4 or x.shape[2] != 3:
        raise DatasetFormatError(f"{path}: 'X' must be uint8 (H, W, 3, N)")
    if not isinstance(y, np.ndarray) or y.size != x.shape[3]:
        raise DatasetFormatError(f"{path}: 'y' must hold one label per image ({x.shape[3]})")
    y = y.reshape(-1).astype(np.int64)
    if y.size and (y.min() < 0 or y.max() > 10):
        raise DatasetFormatError(f"{path}: labels must lie in 1-10 (10 = digit 0)")
    # (H, W, C, N) -> (N, C, H, W); label 10 is the digit 0.
    return np.ascontiguousarray(x.transpose(3, 2, 0, 1)), y % 10


@register_dataset(SVHN)
def load_svhn(data_dir: str | Path | None = None, extra: bool = False) -> DatasetSplits:
    """SVHN from its .mat files.

    Args:
        data_dir: the directory holding the .mat files.
        extra: append the 531,131 "extra" images (``extra_32x32.mat``) to the train split.
    """
    d = find_dir(SVHN, data_dir)
    train_files = [d / "train_32x32.mat"]
    if extra:
        if not (d / "extra_32x32.mat").is_file():
            raise DatasetNotFoundError(
                f"dataset 'svhn' extra split not found: {d / 'extra_32x32.mat'} is missing; "
                "download it from http://ufldl.stanford.edu/housenumbers/ or drop extra=True"
            )
        train_files.append(d / "extra_32x32.mat")
    parts = [read_mat(f) for f in train_files]
    train = ImageSet(
        uint8_to_images(np.concatenate([p[0] for p in parts])),
        labels_to_tensor(np.concatenate([p[1] for p in parts])),
    )
    x_test, y_test = read_mat(d / "test_32x32.mat")
    test = ImageSet(uint8_to_images(x_test), labels_to_tensor(y_test))
    logger.info("svhn: %d train / %d test images from %s", len(train), len(test), d)
    return DatasetSplits.from_sets(
        "svhn", train, test, [str(k) for k in range(10)], default_eps=8 / 255, source=str(d)
    )

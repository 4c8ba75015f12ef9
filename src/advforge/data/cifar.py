"""CIFAR-10 and CIFAR-100 from the official "python version" archives
(https://www.cs.toronto.edu/~kriz/cifar.html).

CIFAR-10 (``cifar-10-batches-py/``): ``data_batch_1`` .. ``data_batch_5`` and ``test_batch``, each
a pickled dict with ``b"data"`` (uint8 (N, 3072): 1024 red, then green, then blue values of a
32x32 image, row-major) and ``b"labels"``; ``batches.meta`` holds ``b"label_names"``.
CIFAR-100 (``cifar-100-python/``): ``train`` and ``test`` with ``b"fine_labels"`` and
``b"coarse_labels"``; ``meta`` holds ``b"fine_label_names"`` / ``b"coarse_label_names"``.

Every file is read with the restricted unpickler of :mod:`advforge.data.safe_pickle`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from advforge.data.catalog import DatasetFormatError, DatasetInfo, find_dir, register_dataset
from advforge.data.safe_pickle import safe_load
from advforge.data.splits import DatasetSplits, ImageSet, labels_to_tensor, uint8_to_images
from advforge.errors import InputError

logger = logging.getLogger(__name__)

CIFAR_EPS = 8 / 255
CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip
CIFAR10_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
_DOWNLOAD = "download the {} python version from https://www.cs.toronto.edu/~kriz/cifar.html"


def _get(d: dict, key: str) -> Any:
    """``d[b"key"]`` as the official Python 2 files store it, or ``d["key"]`` if re-saved."""
    if key.encode() in d:
        return d[key.encode()]
    return d[key]


def read_batch(path: Path, label_key: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """One batch file -> (images uint8 (N, 3, 32, 32), labels int64 (N,))."""
    d = safe_load(path)
    if not isinstance(d, dict):
        raise DatasetFormatError(f"{path}: expected a pickled dict, got {type(d).__name__}")
    try:
        data, labels = _get(d, "data"), _get(d, label_key)
    except KeyError as err:
        raise DatasetFormatError(f"{path}: missing key {err} in the CIFAR batch") from None
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise DatasetFormatError(f"{path}: b'data' must be a uint8 (N, 3072) array")
    if data.shape[1] != 3 * 32 * 32:
        raise DatasetFormatError(f"{path}: b'data' rows hold {data.shape[1]} values, not 3072")
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != data.shape[0] or labels.dtype.kind not in "iu":
        raise DatasetFormatError(f"{path}: {label_key} must list one integer per image")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DatasetFormatError(f"{path}: {label_key} outside [0, {num_classes})")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)  # (N, 3, 32, 32)


def read_names(path: Path, key: str, num_classes: int, fallback: list[str]) -> list[str]:
    """Class names from a meta file, or ``fallback`` when the file is absent."""
    if not path.is_file():
        logger.warning("%s not found; using default class names", path)
        return fallback
    d = safe_load(path)
    try:
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in _get(d, key)]
    except (KeyError, TypeError, UnicodeDecodeError, AttributeError):
        raise DatasetFormatError(f"{path}: no readable {key!r} list") from None
    if len(names) != num_classes:
        raise DatasetFormatError(f"{path}: {len(names)} {key} for {num_classes} classes")
    return names


def _splits(
    name: str, parts: dict[str, list[Path]], label_key: str, names: list[str], src: Path
) -> DatasetSplits:
    sets = {}
    for split, files in parts.items():
        batches = [read_batch(f, label_key, len(names)) for f in files]
        x = np.concatenate([b[0] for b in batches])
        y = np.concatenate([b[1] for b in batches])
        sets[split] = ImageSet(uint8_to_images(x), labels_to_tensor(y))
    logger.info("%s: %d train / %d test from %s", name, len(sets["train"]), len(sets["test"]), src)
    return DatasetSplits.from_sets(
        name, sets["train"], sets["test"], names, default_eps=CIFAR_EPS, source=str(src)
    )


CIFAR10 = DatasetInfo(
    name="cifar10",
    description="CIFAR-10: 50k / 10k 32x32 colour images, 10 classes (python version)",
    obtain=_DOWNLOAD.format("CIFAR-10"),
    needs="data_batch_1..5, test_batch (batches.meta for names)",
    is_complete=lambda d: all((d / f).is_file() for f in (*CIFAR10_TRAIN, "test_batch")),
    subdirs=("cifar-10-batches-py",),
)
CIFAR100 = DatasetInfo(
    name="cifar100",
    description="CIFAR-100: 50k / 10k 32x32 colour images, 100 fine or 20 coarse classes",
    obtain=_DOWNLOAD.format("CIFAR-100"),
    needs="train, test (meta for names)",
    is_complete=lambda d: (d / "train").is_file() and (d / "test").is_file(),
    subdirs=("cifar-100-python",),
)


@register_dataset(CIFAR10)
def load_cifar10(data_dir: str | Path | None = None) -> DatasetSplits:
    """CIFAR-10 from the official python batches."""
    d = find_dir(CIFAR10, data_dir)
    names = read_names(d / "batches.meta", "label_names", 10, CIFAR10_CLASSES)
    parts = {"train": [d / f for f in CIFAR10_TRAIN], "test": [d / "test_batch"]}
    return _splits("cifar10", parts, "labels", names, d)


@register_dataset(CIFAR100)
def load_cifar100(data_dir: str | Path | None = None, label_type: str = "fine") -> DatasetSplits:
    """CIFAR-100 from the official python files.

    Args:
        data_dir: the directory holding ``train``, ``test`` and ``meta``.
        label_type: ``"fine"`` (100 classes, the usual benchmark) or ``"coarse"`` (20 superclasses).
    """
    if label_type not in ("fine", "coarse"):
        raise InputError(f"cifar100 label_type must be 'fine' or 'coarse', got {label_type!r}")
    d = find_dir(CIFAR100, data_dir)
    k = 100 if label_type == "fine" else 20
    fallback = [f"class_{i}" for i in range(k)]
    names = read_names(d / "meta", f"{label_type}_label_names", k, fallback)
    parts = {"train": [d / "train"], "test": [d / "test"]}
    return _splits("cifar100", parts, f"{label_type}_labels", names, d)

